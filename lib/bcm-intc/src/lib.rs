//! The Raspberry Pi 2/3 interrupt controllers, which stand where a GIC would: the BCM2836
//! per-core "local" controller (`brcm,bcm2836-l1-intc`: each core's architected-timer,
//! mailbox, PMU and GPU interrupts) and the BCM2835 ARMCTRL controller behind its GPU input
//! (`brcm,bcm2836-armctrl-ic`: the peripherals), numbered as [`dtinfo::bcm_irq`] does.
//!
//! Register facts: "BCM2836 ARM-local peripherals" (Quad-A7 control, rev 3.4: timer interrupt
//! control 0x40 + 4n, IRQ source 0x60 + 4n, GPU interrupt routing 0x0C) and "BCM2835 ARM
//! Peripherals" §7.5 (basic pending 0x00, pending 1/2 0x04/0x08, enable 1/2/basic
//! 0x10/0x14/0x18, disable 1/2/basic 0x1C/0x20/0x24, from the DT region's start 0x7E00_B200).
//!
//! Owns: which register and bit an interrupt is, and which interrupt a core is being
//! interrupted by. Must not: touch hardware itself — the kernel gives it a [`Regs`] over the
//! DT's MMIO, tests give it a fake.
#![no_std]
#![forbid(unsafe_code)]

use dtinfo::bcm_irq::{ARMCTRL_BASE, GPU, LOCAL_COUNT};

/// Which controller a register belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// The BCM2836 local controller.
    Local,
    /// The BCM2835 ARMCTRL controller.
    Armctrl,
}

/// 32-bit register access by offset from a controller's DT region.
pub trait Regs {
    /// Reads the register at `off`.
    fn read(&mut self, block: Block, off: usize) -> u32;
    /// Writes the register at `off`.
    fn write(&mut self, block: Block, off: usize, v: u32);
}

/// Local controller: GPU interrupt routing (bits 1:0: the core that takes GPU IRQs).
pub const LOCAL_GPU_ROUTING: usize = 0x0c;
/// Local controller: core n's timer interrupt control (bits 0..=3: IRQ enable for CNTPS,
/// CNTPNS, CNTHP, CNTV; bits 4..=7 the FIQ enables, left clear).
pub const fn local_timer_ctrl(core: usize) -> usize {
    0x40 + 4 * core
}
/// Local controller: core n's IRQ source (bit i: local interrupt i is pending).
pub const fn local_irq_source(core: usize) -> usize {
    0x60 + 4 * core
}
/// ARMCTRL: basic pending, pending 1, pending 2.
pub const ARM_PENDING: [usize; 3] = [0x00, 0x04, 0x08];
/// ARMCTRL: enable registers of banks 0 (basic), 1, 2 (write 1 to enable).
pub const ARM_ENABLE: [usize; 3] = [0x18, 0x10, 0x14];
/// ARMCTRL: disable registers of banks 0, 1, 2 (write 1 to disable).
pub const ARM_DISABLE: [usize; 3] = [0x24, 0x1c, 0x20];

/// Basic pending bits 10..=20 are direct copies of these GPU interrupts (bank 1: 7, 9, 10,
/// 18, 19; bank 2: 21..=25, 30), which then are not summarised in bits 8 and 9.
const SHORTCUTS: [(u32, u32); 11] = [
    (1, 7),
    (1, 9),
    (1, 10),
    (1, 18),
    (1, 19),
    (2, 21),
    (2, 22),
    (2, 23),
    (2, 24),
    (2, 25),
    (2, 30),
];

/// An interrupt number of ours, decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Irq {
    /// Local controller interrupt 0..=9.
    Local(u32),
    /// ARMCTRL (bank, bit).
    Armctrl(u32, u32),
}

impl Irq {
    /// Decodes an interrupt number; `None` for numbers neither controller has.
    pub fn decode(irq: u32) -> Option<Irq> {
        if irq < LOCAL_COUNT {
            return Some(Irq::Local(irq));
        }
        let n = irq.checked_sub(ARMCTRL_BASE)?;
        (n < 96).then_some(Irq::Armctrl(n / 32, n % 32))
    }

    /// The number of this interrupt.
    pub fn number(self) -> u32 {
        match self {
            Irq::Local(n) => n,
            Irq::Armctrl(bank, bit) => ARMCTRL_BASE + bank * 32 + bit,
        }
    }
}

/// Why an interrupt cannot be switched.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IntcError {
    /// Not an interrupt of these controllers.
    Unknown,
    /// A local interrupt the controller cannot switch per core here (mailboxes, PMU).
    Unsupported,
    /// An ARMCTRL interrupt on a platform whose DT has no ARMCTRL controller.
    NoArmctrl,
}

/// The two controllers.
pub struct Intc<R: Regs> {
    regs: R,
    has_armctrl: bool,
}

impl<R: Regs> Intc<R> {
    /// Takes the controllers to a known state: every ARMCTRL interrupt disabled, GPU interrupts
    /// routed to core 0, no timer interrupt enabled on any of `cores` cores.
    pub fn new(mut regs: R, has_armctrl: bool, cores: usize) -> Intc<R> {
        if has_armctrl {
            for off in ARM_DISABLE {
                regs.write(Block::Armctrl, off, u32::MAX);
            }
        }
        regs.write(Block::Local, LOCAL_GPU_ROUTING, 0);
        for core in 0..cores.min(4) {
            regs.write(Block::Local, local_timer_ctrl(core), 0);
        }
        Intc { regs, has_armctrl }
    }

    /// Enables or disables `irq`: a timer interrupt on core `core` only; an ARMCTRL interrupt
    /// for the whole chip (it reaches core 0 through the GPU input, which is always on).
    pub fn set_enabled(&mut self, core: usize, irq: u32, on: bool) -> Result<(), IntcError> {
        match Irq::decode(irq).ok_or(IntcError::Unknown)? {
            Irq::Local(n) if n <= 3 => {
                let off = local_timer_ctrl(core.min(3));
                let v = self.regs.read(Block::Local, off);
                let v = if on { v | 1 << n } else { v & !(1 << n) };
                self.regs.write(Block::Local, off, v);
                Ok(())
            }
            Irq::Local(_) => Err(IntcError::Unsupported),
            Irq::Armctrl(bank, bit) => {
                if !self.has_armctrl {
                    return Err(IntcError::NoArmctrl);
                }
                let reg = if on { ARM_ENABLE } else { ARM_DISABLE };
                self.regs
                    .write(Block::Armctrl, reg[bank as usize], 1 << bit);
                Ok(())
            }
        }
    }

    /// The interrupt core `core` is being interrupted by, lowest number first; `None` when
    /// nothing is pending (a spurious entry).
    pub fn pending(&mut self, core: usize) -> Option<u32> {
        let src = self.regs.read(Block::Local, local_irq_source(core.min(3)));
        let local = (0..LOCAL_COUNT).find(|i| src & (1 << i) != 0)?;
        if local != GPU || !self.has_armctrl {
            return Some(local);
        }
        let basic = self.regs.read(Block::Armctrl, ARM_PENDING[0]);
        if basic & 0xff != 0 {
            return Some(Irq::Armctrl(0, basic.trailing_zeros()).number());
        }
        if let Some(i) = (10..=20).find(|b| basic & (1 << b) != 0) {
            let (bank, bit) = SHORTCUTS[i - 10];
            return Some(Irq::Armctrl(bank, bit).number());
        }
        for bank in 1..=2u32 {
            if basic & (1 << (7 + bank)) != 0 {
                let p = self.regs.read(Block::Armctrl, ARM_PENDING[bank as usize]);
                if p != 0 {
                    return Some(Irq::Armctrl(bank, p.trailing_zeros()).number());
                }
            }
        }
        // The GPU line without a pending ARMCTRL interrupt: report the cascade itself.
        Some(GPU)
    }
}

#[cfg(test)]
mod tests;
