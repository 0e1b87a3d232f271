//! Any sequence of FF-A calls (and TX-buffer contents) against the SPMC never panics, and RAM
//! outside the normal-world range is never touched (the fake RAM would panic).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spmc::test_partition::TestPartition;
use spmc::{Config, NsMemory, Spmc};

const RAM: u64 = 0x4000_0000;
const SIZE: usize = 0x4_0000;

type Ram = spmc::sim::SimRam;

/// A small alphabet of function IDs so the fuzzer reaches deep states quickly.
const FIDS: [u32; 16] = [
    0x8400_0063,
    0x8400_0064,
    0x8400_0065,
    0xC400_0066,
    0x8400_0066,
    0x8400_0067,
    0x8400_0068,
    0x8400_0069,
    0xC400_006F,
    0x8400_006F,
    0xC400_0073,
    0xC400_0072,
    0x8400_0077,
    0xC400_008B,
    0xC400_008D,
    0x8400_0085,
];

fuzz_target!(|data: &[u8]| {
    let ram = Ram::new(RAM, SIZE);
    let cfg = Config {
        ns_ram: vec![(RAM, SIZE as u64)],
        secure: vec![(RAM + 0x3_0000, 0x1000)],
        exec_ctx: 2,
    };
    let mut s = Spmc::new(cfg, ram.clone());
    s.add_partition(Box::new(TestPartition)).unwrap();
    for chunk in data.chunks(48) {
        let pick = |i: usize| chunk.get(i).copied().unwrap_or(0);
        // Descriptor-ish bytes into one of the first pages (TX is often mapped at one of them).
        if pick(0) & 0x80 != 0 {
            let at = RAM + u64::from(pick(1) % 8) * 0x1000;
            ram.clone().write(at, &chunk[chunk.len().min(20)..]);
        }
        let mut x = [0u64; 18];
        x[0] = u64::from(FIDS[usize::from(pick(2)) % FIDS.len()]);
        for (r, reg) in x.iter_mut().enumerate().skip(1) {
            let b = pick(r + 2);
            *reg = match b % 4 {
                0 => u64::from(b),
                1 => RAM + u64::from(b % 80) * 0x1000,
                2 => 0x1_0002,
                _ => 0x8001,
            };
        }
        let _ = s.handle(&x);
    }
});
