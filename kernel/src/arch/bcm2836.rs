//! The Raspberry Pi's interrupt controllers (BCM2836 local + BCM2835 ARMCTRL) where a GIC
//! would be: MMIO for `lib/bcm-intc`, which owns the register logic (host-tested on the Pi's
//! DT).

use crate::console::IrqGuard;
use bcm_intc::{Block, Intc, Regs};
use dtinfo::Bcm2836Intc;
use spin::{Mutex, Once};

/// The two register blocks, by their DT addresses (identity mapped).
struct Mmio {
    local: usize,
    armctrl: usize,
}

impl Regs for Mmio {
    fn read(&mut self, block: Block, off: usize) -> u32 {
        let base = match block {
            Block::Local => self.local,
            Block::Armctrl => self.armctrl,
        };
        // SAFETY: `base` is one of the controllers `init`'s DT regions name (mapped as device
        // memory by `mm::init_final`), `off` one of lib/bcm-intc's register offsets, inside
        // the region (0x100 and 0x200 bytes, checked in `init`).
        unsafe { core::ptr::read_volatile((base + off) as *const u32) }
    }
    fn write(&mut self, block: Block, off: usize, v: u32) {
        let base = match block {
            Block::Local => self.local,
            Block::Armctrl => self.armctrl,
        };
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile((base + off) as *mut u32, v) }
    }
}

static INTC: Once<Mutex<Intc<Mmio>>> = Once::new();

/// Takes the controllers the DT describes for `cpus` CPUs.
pub fn init(desc: Bcm2836Intc, cpus: usize) -> Result<(), &'static str> {
    if desc.local.size < 0x100 || desc.local.base == 0 {
        return Err("BCM2836 local controller region too small");
    }
    let armctrl = match desc.armctrl {
        Some(r) if r.size >= 0x28 && r.base != 0 => r.base as usize,
        Some(_) => return Err("BCM2835 ARMCTRL region too small"),
        None => 0,
    };
    let mmio = Mmio {
        local: desc.local.base as usize,
        armctrl,
    };
    INTC.call_once(|| Mutex::new(Intc::new(mmio, armctrl != 0, cpus)));
    catena_drivers::irq::set_chip(&CHIP);
    Ok(())
}

struct Chip;
static CHIP: Chip = Chip;

impl catena_drivers::irq::IrqChip for Chip {
    fn set_enabled(&self, irq: u32, enabled: bool) -> Result<(), &'static str> {
        let _irq = IrqGuard::new();
        let mut intc = INTC.get().ok_or("no BCM2836 controller")?.lock();
        intc.set_enabled(crate::smp::this_cpu(), irq, enabled)
            .map_err(|e| match e {
                bcm_intc::IntcError::Unknown => "no such BCM2836/2835 interrupt",
                bcm_intc::IntcError::Unsupported => "a local interrupt this driver does not switch",
                bcm_intc::IntcError::NoArmctrl => "no ARMCTRL controller in the DT",
            })
    }
}

/// Handles one pending interrupt (called from the IRQ vector, IRQs masked). Returns false if
/// these controllers are not in use or nothing was pending.
pub fn handle_irq() -> bool {
    let Some(intc) = INTC.get() else {
        return false;
    };
    // Found under the lock, dispatched without it; the sources are level-triggered, so the
    // handler's own device access (re-arming the timer) is the acknowledgement.
    let Some(irq) = intc.lock().pending(crate::smp::this_cpu()) else {
        return false;
    };
    if !catena_drivers::irq::dispatch(irq) {
        log::warn!("spurious interrupt {irq}; masked");
        let _ = intc.lock().set_enabled(crate::smp::this_cpu(), irq, false);
    }
    true
}
