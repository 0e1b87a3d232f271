//! The FF-A conduit and mailbox for `ffa_core::client::Client` (the typed client, host-tested
//! against the SPMC): the kernel's SMCCC conduit, and a one-page RX/TX pair of the kernel's
//! identity-mapped pages ([`kapi::pages`]). The FF-A core driver opens the one session every
//! FF-A driver uses.

use crate::kapi::{self, Page, pa, pages};
use alloc::boxed::Box;
use ffa_core::client::{Client, Conduit, Mailbox, OpenError};

/// An SMCCC call on the platform's conduit (as Linux's arm_ffa uses
/// `arm_smccc_1_1_get_conduit()`): x0 = function ID, x1..x17; all of x0–x17 back.
pub fn call(mut x: [u64; 18]) -> [u64; 18] {
    kapi::smccc(&mut x);
    x
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
    fn call(&mut self, x: &mut [u64; 18]) {
        kapi::smccc(x)
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
