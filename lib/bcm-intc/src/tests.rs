extern crate std;

use super::*;
use std::collections::BTreeMap;
use std::vec::Vec;

/// The two register blocks as memory, with the ARMCTRL enable/disable registers behaving as
/// the hardware's set/clear pairs; every write is logged.
#[derive(Default)]
struct Fake {
    mem: BTreeMap<(bool, usize), u32>,
    enabled: [u32; 3],
    writes: Vec<(Block, usize, u32)>,
}

impl Regs for &mut Fake {
    fn read(&mut self, block: Block, off: usize) -> u32 {
        *self.mem.get(&(block == Block::Local, off)).unwrap_or(&0)
    }
    fn write(&mut self, block: Block, off: usize, v: u32) {
        self.writes.push((block, off, v));
        if block == Block::Armctrl {
            if let Some(b) = ARM_ENABLE.iter().position(|o| *o == off) {
                self.enabled[b] |= v;
                return;
            }
            if let Some(b) = ARM_DISABLE.iter().position(|o| *o == off) {
                self.enabled[b] &= !v;
                return;
            }
        }
        self.mem.insert((block == Block::Local, off), v);
    }
}

const RPI3B: &[u8] = include_bytes!("../../../testdata/raspi3b/bcm2837-rpi-3-b.dtb");

#[test]
fn the_pi_s_timer_and_uart_interrupts_land_on_their_registers() {
    let p = dtinfo::Platform::parse(RPI3B).unwrap();
    let intc = p.bcm2836.expect("the Pi has the BCM2836 controllers");
    let mut f = Fake {
        enabled: [u32::MAX; 3],
        ..Fake::default()
    };
    let mut c = Intc::new(&mut f, intc.armctrl.is_some(), p.cpus.len());
    // The EL1 virtual timer (the DT's third timer interrupt) on core 2: CNTV, bit 3 of core
    // 2's timer control only.
    let virt = p.timer.unwrap().virt;
    c.set_enabled(2, virt, true).unwrap();
    assert_eq!(f.mem[&(true, local_timer_ctrl(2))], 1 << 3);
    for core in [0, 1, 3] {
        assert_eq!(f.mem[&(true, local_timer_ctrl(core))], 0);
    }
    assert_eq!(f.enabled, [0; 3], "init disabled every ARMCTRL interrupt");
    // The mini-UART: GPU interrupt 29 = bank 1, bit 29.
    let aux = p.device_at("/soc/serial@7e215040").unwrap().irqs[0];
    let mut c = Intc::new(&mut f, true, 4);
    c.set_enabled(0, aux, true).unwrap();
    assert_eq!(f.enabled, [0, 1 << 29, 0]);
    let mut c = Intc::new(&mut f, true, 4);
    c.set_enabled(0, aux, true).unwrap();
    c.set_enabled(0, aux, false).unwrap();
    assert_eq!(f.enabled, [0; 3]);
}

#[test]
fn pending_interrupts_are_found_through_the_cascade() {
    let mut f = Fake::default();
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(1), None, "nothing pending: spurious");
    // Core 1's virtual timer.
    f.mem.insert((true, local_irq_source(1)), 1 << 3);
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(1), Some(3));
    assert_eq!(c.pending(0), None, "per core");
    // GPU cascade: basic pending bit 8 says "look in pending 1", which has bit 29.
    f.mem.insert((true, local_irq_source(0)), 1 << GPU);
    f.mem.insert((false, ARM_PENDING[0]), 1 << 8);
    f.mem.insert((false, ARM_PENDING[1]), 1 << 29);
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(0), Some(ARMCTRL_BASE + 32 + 29));
    // A shortcut bit (basic bit 12 = GPU interrupt 10) wins over the summary bits.
    f.mem.insert((false, ARM_PENDING[0]), (1 << 12) | (1 << 8));
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(0), Some(ARMCTRL_BASE + 32 + 10));
    // An ARM basic interrupt (bank 0, bit 0: the ARM timer) first of all.
    f.mem.insert((false, ARM_PENDING[0]), 1 | (1 << 9));
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(0), Some(ARMCTRL_BASE));
    // Bank 2 through bit 9.
    f.mem.insert((false, ARM_PENDING[0]), 1 << 9);
    f.mem.insert((false, ARM_PENDING[2]), 1 << 30);
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.pending(0), Some(ARMCTRL_BASE + 64 + 30));
    // Without an ARMCTRL controller the GPU line is reported as itself.
    let mut g = Fake::default();
    g.mem.insert((true, local_irq_source(0)), 1 << GPU);
    let mut c = Intc::new(&mut g, false, 4);
    assert_eq!(c.pending(0), Some(GPU));
}

#[test]
fn numbers_outside_both_controllers_are_refused() {
    let mut f = Fake::default();
    let mut c = Intc::new(&mut f, true, 4);
    assert_eq!(c.set_enabled(0, 10, true), Err(IntcError::Unknown));
    assert_eq!(
        c.set_enabled(0, ARMCTRL_BASE + 96, true),
        Err(IntcError::Unknown)
    );
    assert_eq!(c.set_enabled(0, 5, true), Err(IntcError::Unsupported));
    let mut g = Fake::default();
    let mut c = Intc::new(&mut g, false, 4);
    assert_eq!(
        c.set_enabled(0, ARMCTRL_BASE, true),
        Err(IntcError::NoArmctrl)
    );
    for n in [0, 9, ARMCTRL_BASE, ARMCTRL_BASE + 95] {
        assert_eq!(Irq::decode(n).map(Irq::number), Some(n));
    }
}
