//! Interrupt routing between the kernel's interrupt controller and drivers.

use spin::{Mutex, Once};

/// What drivers need from the interrupt controller.
pub trait IrqChip: Sync {
    /// Enables (or disables) an interrupt. SGIs and PPIs are enabled on the calling CPU.
    fn set_enabled(&self, intid: u32, enabled: bool) -> Result<(), &'static str>;
}

/// Handler run in interrupt context, with interrupts masked.
pub type Handler = fn(intid: u32);

const MAX_HANDLERS: usize = 16;

static CHIP: Once<&'static dyn IrqChip> = Once::new();
static HANDLERS: Mutex<[Option<(u32, Handler)>; MAX_HANDLERS]> = Mutex::new([None; MAX_HANDLERS]);

/// Installs the interrupt controller (once, by the kernel's irqchip initcall).
pub fn set_chip(chip: &'static dyn IrqChip) {
    CHIP.call_once(|| chip);
}

/// Whether an interrupt controller is installed.
pub fn has_chip() -> bool {
    CHIP.get().is_some()
}

/// Routes `intid` to `handler` and enables it.
pub fn request(intid: u32, handler: Handler) -> Result<(), &'static str> {
    let chip = CHIP.get().ok_or("no interrupt controller")?;
    {
        let mut table = HANDLERS.lock();
        if table.iter().flatten().any(|(i, _)| *i == intid) {
            return Err("interrupt already requested");
        }
        let slot = table
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or("interrupt handler table full")?;
        *slot = Some((intid, handler));
    }
    chip.set_enabled(intid, true)
}

/// Runs the handler for `intid`; false when none is registered (a spurious interrupt).
pub fn dispatch(intid: u32) -> bool {
    let handler = HANDLERS
        .lock()
        .iter()
        .flatten()
        .find(|(i, _)| *i == intid)
        .map(|(_, h)| *h);
    match handler {
        Some(h) => {
            h(intid);
            true
        }
        None => false,
    }
}
