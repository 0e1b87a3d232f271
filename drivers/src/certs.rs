//! `load_uefi_certs`: db, dbx and the MOK lists into the keyrings (`lib/uefi-certs`, Linux's
//! order and handlers), read through the efivar driver — which exists only once the FF-A core
//! has probed, after the hyp is finalised. At `late` (before the deferred-probe flush) it finds
//! no variable service, as Linux's did under pKVM until Arm's 2026 RFC moved it to
//! `late_initcall_sync`.

use crate::efivar::with_efivar;
use crate::kapi;
use alloc::string::String;
use catena_event::Kind;
use spin::Mutex;
use uefi_certs::{Event, Key, Keyrings, Source, hex};
use uefi_vars::GLOBAL_VARIABLE;

/// The keyrings, once loaded.
static RINGS: Mutex<Option<Keyrings>> = Mutex::new(None);

/// Runs `f` with the keyrings, if they were loaded.
pub fn with_keyrings<R>(f: impl FnOnce(&Keyrings) -> R) -> Option<R> {
    RINGS.lock().as_ref().map(f)
}

/// The variables through the efivar client, read as Linux reads them (size probe first).
struct Efivars<'a>(&'a mut crate::efivar::Efivar);

impl Source for Efivars<'_> {
    fn get(&mut self, guid: &[u8; 16], name: &str) -> Result<Option<alloc::vec::Vec<u8>>, String> {
        self.0
            .get_probed(guid, name)
            .map(|v| v.map(|(_, d)| d))
            .map_err(|e| String::from(e.name()))
    }
}

fn key_event(keyring: &str, k: &Key, revoked: Option<&str>) {
    kapi::emit(Kind::Key, |w| {
        let w = w
            .str("keyring", keyring)
            .str("subject", &k.subject)
            .str("issuer", &k.issuer)
            .str("serial", &k.serial)
            .str("fpr", &hex(&k.fpr))
            .str("source", k.source);
        match revoked {
            Some(r) => w.str("result", "revoked").str("reason", r),
            None => w.str("result", "added"),
        }
    });
}

/// Loads the keyrings at `level`; reports every key, each keyring's size and the result.
/// Returns whether the variable service was there.
pub fn load(level: &str) -> bool {
    let r = with_efivar(|c| {
        // Secure Boot as the firmware reports it: 1 only with a PK enrolled.
        let secure_boot = matches!(c.get(&GLOBAL_VARIABLE, "SecureBoot"), Ok((_, d)) if d == [1]);
        let mut rings = Keyrings::default();
        let events = uefi_certs::load(&mut Efivars(c), secure_boot, false, &mut rings);
        (rings, events, secure_boot)
    });
    let Some((rings, events, secure_boot)) = r else {
        log::warn!("load_uefi_certs at {level}: no EFI variable service yet; keyrings left empty");
        kapi::emit(Kind::Certs, |w| {
            w.str("result", "no-efivar").str("level", level)
        });
        return false;
    };
    for e in &events {
        match e {
            Event::Added(ring, k) => {
                key_event(ring, k, None);
                crate::ima::key(ring, &k.der);
            }
            Event::Revoked(ring, k, why) => key_event(ring, k, Some(why.name())),
            Event::Unparsable(var, why) => {
                log::warn!("Couldn't parse {var} signatures: {why}");
                kapi::emit(Kind::Certs, |w| {
                    w.str("var", var)
                        .str("result", "unparsable")
                        .str("reason", why)
                });
            }
            Event::BadCertificate(var) => kapi::emit(Kind::Certs, |w| {
                w.str("var", var).str("result", "bad-certificate")
            }),
            Event::ReadError(var, why) => kapi::emit(Kind::Certs, |w| {
                w.str("var", var)
                    .str("result", "read-error")
                    .str("reason", why)
            }),
            Event::IgnoreDb => kapi::emit(Kind::Certs, |w| {
                w.str("var", "db")
                    .str("result", "ignored")
                    .str("reason", "MokIgnoreDB")
            }),
            Event::NoSecureBoot => kapi::emit(Kind::Certs, |w| {
                w.str("var", "MokListRT")
                    .str("result", "skipped")
                    .str("reason", "no-secure-boot")
            }),
        }
    }
    for (name, n) in [
        (".platform", rings.platform.len()),
        (".machine", rings.machine.len()),
        (".blacklist", rings.blacklist.len()),
    ] {
        kapi::emit(Kind::Keyring, |w| w.str("name", name).u64("keys", n as u64));
    }
    kapi::emit(Kind::Certs, |w| {
        w.str("result", "ok")
            .str("level", level)
            .u64("secure_boot", u64::from(secure_boot))
    });
    *RINGS.lock() = Some(rings);
    true
}
