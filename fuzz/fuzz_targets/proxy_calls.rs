//! Any sequence of host FF-A calls against the hyp's proxy (in front of the real SPMC) never
//! panics, and page ownership stays consistent with what the proxy reports.
#![no_main]
use ffa_proxy::{Platform, Proxy};
use libfuzzer_sys::fuzz_target;
use pageown::Ownership;
use spmc::test_partition::TestPartition;
use spmc::{Config, NsMemory, Spmc};

const RAM: u64 = 0x4000_0000;
const SIZE: usize = 0x4_0000;
const HYP: (u64, u64) = (RAM + 0x3_0000, 0x2000);

type Ram = spmc::sim::SimRam;

struct El3(Spmc<Ram>, Ram);
impl Platform for El3 {
    fn smc(&mut self, x: [u64; 18]) -> [u64; 18] {
        let mut out = x;
        self.0.handle(&x).write_to(&mut out);
        out
    }
    fn read(&self, pa: u64, buf: &mut [u8]) {
        self.1.read(pa, buf)
    }
    fn write(&mut self, pa: u64, data: &[u8]) {
        self.1.write(pa, data)
    }
}

const FIDS: [u32; 12] = [
    0x8400_0063,
    0x8400_0064,
    0x8400_0065,
    0xC400_0066,
    0x8400_0067,
    0x8400_0068,
    0xC400_006F,
    0xC400_0073,
    0xC400_0072,
    0x8400_0077,
    0xC400_008D,
    0x8400_0069,
];

fuzz_target!(|data: &[u8]| {
    let ram = Ram::new(RAM, SIZE);
    let cfg = Config {
        ns_ram: vec![(RAM, SIZE as u64)],
        secure: vec![],
        exec_ctx: 1,
    };
    let mut s = Spmc::new(cfg, ram.clone());
    s.add_partition(Box::new(TestPartition)).unwrap();
    let own = Ownership::new(&[(RAM, SIZE as u64)], &[HYP]);
    let mut p = Proxy::init(El3(s, ram.clone()), own, HYP.0, HYP.0 + 0x1000);
    for chunk in data.chunks(40) {
        let pick = |i: usize| chunk.get(i).copied().unwrap_or(0);
        // Sometimes write descriptor-ish bytes into a host page that may be the TX buffer.
        if pick(0) & 0x80 != 0 {
            let at = u64::from(pick(1) % 8) * 0x1000;
            let bytes: Vec<u8> = chunk.iter().skip(2).copied().collect();
            ram.clone().write(RAM + at, &bytes);
        }
        let mut x = [0u64; 18];
        x[0] = u64::from(FIDS[usize::from(pick(2)) % FIDS.len()]);
        for (r, reg) in x.iter_mut().enumerate().skip(1) {
            let b = pick(r + 2);
            *reg = match b % 3 {
                0 => u64::from(b),
                1 => RAM + u64::from(b % 64) * 0x1000,
                _ => 0x1_0002,
            };
        }
        let _ = p.handle(&x);
        // Hyp memory is never given away.
        for pg in 0..2 {
            assert_eq!(p.ownership().state(HYP.0 + pg * 0x1000), None);
        }
        let _ = p.take_access_changes();
    }
});
