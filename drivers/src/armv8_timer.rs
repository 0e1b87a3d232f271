//! Architected timer driver: a periodic tick on the EL1 virtual timer.
//!
//! Binds `arm,armv8-timer`; takes the virtual timer's interrupt (the third `interrupts` entry,
//! per the DT binding), routes it through [`crate::irq`], and re-arms CNTV_TVAL_EL0 on every
//! tick. [`ticks`] counts the ticks that really arrived.

use arm_sysregs::el0::accessors::{read_cntfrq_el0, write_cntv_ctl_el0, write_cntv_tval_el0};
use arm_sysregs::el0::registers::{CntvCtlEl0, CntvTvalEl0};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};

static TICKS: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU32 = AtomicU32::new(100);
static INTERVAL: AtomicU64 = AtomicU64::new(0);

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "armv8-timer",
    bus: "platform",
    // armv7-timer: the same architected timer, as 64-bit boards' DTs (the Raspberry Pi 3's)
    // still name it.
    ids: &[
        MatchId::Compatible("arm,armv8-timer"),
        MatchId::Compatible("arm,armv7-timer"),
    ],
    probe,
    bound: None,
};

/// Sets the tick rate (before the driver binds).
pub fn set_hz(hz: u32) {
    HZ.store(hz.clamp(1, 1000), Ordering::Relaxed);
}

/// Ticks received so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The configured tick rate.
pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}

fn cntfrq() -> u64 {
    read_cntfrq_el0().bits()
}

/// Programs this CPU's virtual timer to fire in `interval` ticks: CNTV_TVAL_EL0, then
/// CNTV_CTL_EL0.ENABLE with IMASK clear (Arm ARM D11.2.4), then an ISB.
fn arm(interval: u64) {
    write_cntv_tval_el0(CntvTvalEl0::from_bits_retain(interval));
    write_cntv_ctl_el0(CntvCtlEl0::ENABLE);
    arch::isb();
}

fn on_tick(_intid: u32) {
    TICKS.fetch_add(1, Ordering::Relaxed);
    arm(INTERVAL.load(Ordering::Relaxed));
}

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    // interrupts: secure phys, non-secure phys, virt, hyp (DT binding arm,arch_timer.yaml).
    let virt = *ctx
        .device()
        .irqs
        .get(2)
        .ok_or(ProbeError::Failed("no virtual timer interrupt"))?;
    if !crate::irq::has_chip() {
        return Err(ProbeError::Defer("no interrupt controller"));
    }
    let freq = cntfrq();
    if freq == 0 {
        return Err(ProbeError::Failed("CNTFRQ_EL0 is 0"));
    }
    let interval = freq / u64::from(hz());
    INTERVAL.store(interval, Ordering::Relaxed);
    crate::irq::request(virt, on_tick).map_err(ProbeError::Failed)?;
    arm(interval);
    log::info!(
        "armv8-timer: virtual timer INTID {virt}, {} Hz tick, counter {freq} Hz",
        hz()
    );
    Ok(())
}
