//! The kernel's FF-A conduit and mailbox for `ffa_core::client::Client` (the typed client,
//! host-tested against the SPMC): SMC or HVC as the DT's PSCI node says, and a one-page RX/TX
//! pair of kernel heap pages, identity mapped, so their virtual address is the physical
//! address the other side is given. The FF-A core driver (`ffa_bus.rs`) opens the one session
//! every FF-A driver uses.

use alloc::boxed::Box;
use dtinfo::PsciMethod;
use ffa_core::client::{Client, Conduit, Mailbox, OpenError};

/// One 4 KiB page, aligned.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

/// Pages from the heap.
pub fn pages(n: usize) -> Box<[Page]> {
    (0..n).map(|_| Page([0; 4096])).collect()
}

/// The physical (= virtual) address of a page run.
pub fn pa(p: &[Page]) -> u64 {
    p.as_ptr() as u64
}

/// An SMCCC call on the conduit the DT gives PSCI (as Linux's arm_ffa uses
/// `arm_smccc_1_1_get_conduit()`): x0 = function ID, x1..x17; all of x0–x17 back. No conduit:
/// SMCCC NOT_SUPPORTED.
pub fn call(x: [u64; 18]) -> [u64; 18] {
    let mut args = [0u64; 17];
    args.copy_from_slice(&x[1..]);
    match crate::psci::method() {
        Some(PsciMethod::Smc) => smccc::smc64(x[0] as u32, args),
        Some(PsciMethod::Hvc) => smccc::hvc64(x[0] as u32, args),
        None => {
            let mut r = [0u64; 18];
            r[0] = u64::MAX;
            r
        }
    }
}

/// SMCCC_VERSION on the conduit, if PSCI says it is implemented (DEN0028 §7.2).
pub fn smccc_version() -> Option<u32> {
    const PSCI_FEATURES: u64 = 0x8400_000a;
    const SMCCC_VERSION: u64 = 0x8000_0000;
    if call(regs(&[PSCI_FEATURES, SMCCC_VERSION]))[0] as u32 as i32 != 0 {
        return None;
    }
    Some(call(regs(&[SMCCC_VERSION]))[0] as u32)
}

fn regs(v: &[u64]) -> [u64; 18] {
    let mut x = [0u64; 18];
    x[..v.len()].copy_from_slice(v);
    x
}

/// The SMCCC conduit the DT gives PSCI.
pub struct Smccc;

impl Conduit for Smccc {
    fn call(&mut self, x: [u64; 18]) -> [u64; 18] {
        call(x)
    }
}

/// The session's RX/TX pair: one heap page each, alive as long as the session.
pub struct Pair {
    tx: Box<[Page]>,
    rx: Box<[Page]>,
}

impl Mailbox for Pair {
    fn tx(&self) -> u64 {
        pa(&self.tx)
    }
    fn rx(&self) -> u64 {
        pa(&self.rx)
    }
    fn write_tx(&mut self, data: &[u8]) {
        let n = data.len().min(4096);
        self.tx[0].0[..n].copy_from_slice(&data[..n]);
    }
    fn read_rx(&self, buf: &mut [u8]) {
        let n = buf.len().min(4096);
        buf[..n].copy_from_slice(&self.rx[0].0[..n]);
    }
}

/// The kernel's FF-A session.
pub type Ffa = Client<Smccc, Pair>;

/// Opens the session: FFA_VERSION, FFA_ID_GET, FFA_FEATURES, FFA_RXTX_MAP of a fresh pair.
pub fn open() -> Result<Ffa, OpenError> {
    Client::open(
        Smccc,
        Pair {
            tx: pages(1),
            rx: pages(1),
        },
    )
}
