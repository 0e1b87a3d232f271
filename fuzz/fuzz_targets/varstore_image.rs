//! The variable store opened on a flash image anyone could have damaged: never a panic,
//! never a NOR rule broken, never a value that was not written, and whatever it recovered
//! it can still write and read back.
//!
//! The input damages a valid image (three variables, some history) rather than replacing
//! it: random bytes would almost never get past the bank header's SHA-256.
#![no_main]
use libfuzzer_sys::fuzz_target;
use varstore::sim::SimFlash;
use varstore::{Store, Var};

const SIZE: u32 = 4096;
const BLOCK: u32 = 1024;

fn var(name: u8, data: &[u8]) -> Var {
    Var {
        guid: [7; 16],
        name: vec![name, 0, 0, 0],
        attrs: 7,
        time: [0; 16],
        data: data.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut s, _) = Store::open(SimFlash::new(SIZE, BLOCK)).expect("blank opens");
    let written = [
        var(b'A', b"first"),
        var(b'B', b"bravo"),
        var(b'A', b"second"),
        var(b'C', &[0x5a; 60]),
    ];
    for v in &written {
        s.set(v.clone()).expect("fits");
    }
    let mut f = s.into_flash().reboot();
    // Each three input bytes: an offset and the bits to flip there.
    for c in data.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([c[0], c[1]])) % SIZE as usize;
        f.mem[at] ^= c[2];
    }
    let Ok((mut s, _)) = Store::open(f) else {
        return;
    };
    for v in s.vars() {
        assert!(written.contains(v), "a value nobody wrote: {v:?}");
    }
    let after = var(b'Z', b"after");
    if s.set(after.clone()).is_ok() {
        let f = s.into_flash();
        assert_eq!(f.violations, 0);
        let (s, _) = Store::open(f.reboot()).expect("reopen");
        assert_eq!(s.get(&after.guid, &after.name), Some(&after));
    }
});
