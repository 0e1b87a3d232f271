//! System power: QEMU virt's secure `gpio-poweroff` / `gpio-restart` lines (a secure PL061),
//! found through the DT. With no such line, the CPUs stop.

use dtinfo::Platform;
use spin::Once;

#[derive(Copy, Clone)]
struct Line {
    base: usize,
    pin: u32,
}

static OFF: Once<Line> = Once::new();
static RESTART: Once<Line> = Once::new();

/// PL061 registers (PL061 TRM 3.3): GPIODATA is addressed through bits [9:2] as a mask;
/// GPIODIR at 0x400.
const GPIODIR: usize = 0x400;

fn line(p: &Platform, compat: &str) -> Option<Line> {
    let (phandle, pin) = p.secure_compatible(compat)?.gpio?;
    let ctrl = p.by_phandle(phandle)?;
    if !ctrl.secure_enabled || !ctrl.compatible.iter().any(|c| c == "arm,pl061") || pin > 7 {
        return None;
    }
    let base = usize::try_from(ctrl.regions.first()?.base).ok()?;
    Some(Line { base, pin })
}

/// Finds the power lines in the DT.
pub fn init(p: &Platform) {
    if let Some(l) = line(p, "gpio-poweroff") {
        OFF.call_once(|| l);
    }
    if let Some(l) = line(p, "gpio-restart") {
        RESTART.call_once(|| l);
    }
}

fn raise(l: Line) {
    let bit = 1u32 << l.pin;
    // SAFETY: `l.base` is the secure PL061 the DT names for this line; setting the pin as an
    // output and driving it high is exactly how QEMU's gpio-pwr device is asked to act.
    unsafe {
        let dir = (l.base + GPIODIR) as *mut u32;
        core::ptr::write_volatile(dir, core::ptr::read_volatile(dir) | bit);
        core::ptr::write_volatile((l.base + ((bit as usize) << 2)) as *mut u32, bit);
    }
}

fn halt() -> ! {
    loop {
        arch::wfi();
    }
}

/// Powers the system off (PSCI SYSTEM_OFF).
pub fn off() -> ! {
    if let Some(l) = OFF.get() {
        raise(*l);
    }
    halt()
}

/// Resets the system (PSCI SYSTEM_RESET).
pub fn reset() -> ! {
    crate::clear_boot_ready();
    if let Some(l) = RESTART.get() {
        raise(*l);
    }
    halt()
}
