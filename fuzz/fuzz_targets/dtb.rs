//! Any bytes as a DTB: validation, NOP stripping, the typed platform and the no-alloc early
//! reader never panic; a blob `strip_nops` accepts is one `validate` accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = dtinfo::Platform::parse(data) {
        for c in &p.cpus {
            let _ = p.spin_release_addr(c);
        }
    }
    let _ = dtinfo::early::for_each_region(data, &mut |_, _| {});
    let _ = dtinfo::early::stdout_uart(data);
    let mut copy = data.to_vec();
    match dtinfo::strip_nops(&mut copy) {
        Ok(_) => {
            assert!(dtinfo::validate(&copy).is_ok(), "stripped but still invalid");
            let _ = dtinfo::Platform::parse(&copy);
        }
        Err(_) => assert_eq!(copy, data, "a refused blob was written"),
    }
});
