//! db, dbx and MOK list values anyone could have written (signature lists, X.509 inside)
//! through the certificate loader: never a panic, and no key in .platform that the blacklist
//! revokes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uefi_certs::{Keyrings, Source, load};

/// The input, split in two at its first byte's position: db, then dbx (and MokListRT = db).
struct Split<'a>(&'a [u8], &'a [u8]);

impl Source for Split<'_> {
    fn get(&mut self, _: &[u8; 16], name: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(match name {
            "db" | "MokListRT" => Some(self.0.to_vec()),
            "dbx" | "MokListXRT" => Some(self.1.to_vec()),
            _ => None,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (db, dbx) = data.split_at(cut.min(data.len()));
    let mut rings = Keyrings::default();
    let _ = load(&mut Split(db, dbx), true, true, &mut rings);
    for k in rings.platform.iter().chain(rings.machine.iter()) {
        assert!(rings.blacklist.revokes(k).is_none(), "a revoked key stayed");
    }
});
