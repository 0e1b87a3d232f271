//! Measured-boot event logs from outside (the firmware's, as the kernel and the verifier read
//! them): the parse and every bank's replay never panic, and what parses has a digest of the
//! header's size for every bank in every event.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(log) = tcglog::parse(data) else {
        return;
    };
    for e in &log.events {
        assert_eq!(e.digests.len(), log.banks.len());
        for ((a, d), (b, sz)) in e.digests.iter().zip(&log.banks) {
            assert_eq!(a, b);
            assert_eq!(d.len(), usize::from(*sz));
        }
    }
    for (a, _) in &log.banks {
        let _ = log.replay(*a);
    }
});
