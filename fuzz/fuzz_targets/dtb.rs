//! Any bytes as a DTB: validation, the typed platform and the no-alloc early reader never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dtinfo::Platform::parse(data);
    let _ = dtinfo::early::for_each_region(data, &mut |_, _| {});
    let _ = dtinfo::early::stdout_region(data);
});
