//! Any bytes as FF-A memory transaction, relinquish and partition-info descriptors, in every
//! version's layout; a parsed transaction re-encodes and parses back the same.
#![no_main]
use ffa_abi::mem::{self, Composite};
use ffa_abi::{V1_0, V1_1, V1_2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for v in [V1_0, V1_1, V1_2] {
        for c in [Composite::Required, Composite::Absent] {
            if let Ok(t) = mem::parse(v, data, c) {
                let again =
                    mem::parse(v, &mem::build(v, &t), c).expect("a built descriptor parses");
                assert_eq!(again, t);
            }
        }
    }
    let _ = mem::parse_relinquish(data);
    if let Some((&n, rest)) = data.split_first() {
        let _ = ffa_abi::partinfo::decode(rest, usize::from(n), usize::from(n % 64));
    }
});
