//! The BCM2835 power-management watchdog (`brcm,bcm2835-pm-wdt`): the Raspberry Pi's only way
//! to end a run without PSCI. Power-off is the Pi firmware's convention, as Linux's
//! `bcm2835_wdt` follows it: record "halt" (partition 63) in PM_RSTS, then let the watchdog
//! reset the SoC at once. Under QEMU (`raspi3b` with `-no-reboot`) the reset ends QEMU.
//!
//! Registers (offsets in the DT's first region, "pm"): PM_RSTC 0x1c, PM_RSTS 0x20, PM_WDOG
//! 0x24; every write carries the password 0x5a in bits 31:24.

use core::sync::atomic::{AtomicUsize, Ordering};
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};

const PM_RSTC: usize = 0x1c;
const PM_RSTS: usize = 0x20;
const PM_WDOG: usize = 0x24;
const PM_PASSWORD: u32 = 0x5a00_0000;
/// RSTC: clear the reset configuration (WRCFG, bits 5:4), then ask for a full reset.
const PM_RSTC_WRCFG_CLR: u32 = 0xffff_ffcf;
const PM_RSTC_WRCFG_FULL_RESET: u32 = 0x0000_0020;
/// RSTS: the boot partition, one bit in each of bits 0, 2, ..., 10; 63 (all six) = "halt".
const PM_RSTS_PARTITION_HALT: u32 = 0x0000_0555;
/// Watchdog ticks (16 per ms) before the reset: as soon as possible.
const WDOG_TICKS: u32 = 10;

static BASE: AtomicUsize = AtomicUsize::new(0);

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "bcm2835-pm-wdt",
    bus: "platform",
    ids: &[MatchId::Compatible("brcm,bcm2835-pm-wdt")],
    probe,
    bound: None,
};

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let region = *ctx
        .device()
        .regions
        .first()
        .ok_or(ProbeError::Failed("no reg"))?;
    if region.size < (PM_WDOG + 4) as u64 {
        return Err(ProbeError::Failed("reg smaller than the PM registers used"));
    }
    let base = usize::try_from(region.base)
        .ok()
        .filter(|b| *b != 0)
        .ok_or(ProbeError::Failed("reg beyond the address space"))?;
    BASE.store(base, Ordering::Release);
    crate::power::register("bcm2835-pm-wdt", power_off);
    log::info!("bcm2835-pm-wdt at {base:#x}: power-off by a halt-partition watchdog reset");
    Ok(())
}

fn read(off: usize) -> u32 {
    let base = BASE.load(Ordering::Acquire);
    // SAFETY: `base` is the PM block the DT names for this device (bound to this driver only,
    // mapped as device memory before drivers probe); `off` is one of its registers, inside
    // the region (checked at probe).
    unsafe { core::ptr::read_volatile((base + off) as *const u32) }
}

fn write(off: usize, v: u32) {
    let base = BASE.load(Ordering::Acquire);
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((base + off) as *mut u32, v) }
}

fn power_off() {
    if BASE.load(Ordering::Acquire) == 0 {
        return;
    }
    write(
        PM_RSTS,
        read(PM_RSTS) | PM_PASSWORD | PM_RSTS_PARTITION_HALT,
    );
    write(PM_WDOG, PM_PASSWORD | WDOG_TICKS);
    write(
        PM_RSTC,
        (read(PM_RSTC) & PM_RSTC_WRCFG_CLR) | PM_PASSWORD | PM_RSTC_WRCFG_FULL_RESET,
    );
    // The reset comes within WDOG_TICKS/16 ms; bounded wait, then give up (the caller halts).
    let start = crate::kapi::now_us();
    while crate::kapi::now_us().saturating_sub(start) < 100_000 {
        core::hint::spin_loop();
    }
}
