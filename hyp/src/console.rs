//! The hyp's reports: `@event` lines straight to the UART registers (the kernel's console
//! lock is host memory, which the hyp must not depend on).

use catena_event::EventWriter;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static UART: AtomicU64 = AtomicU64::new(0);
/// Whether the UART is a BCM2835 mini-UART (else a PL011).
static AUX: AtomicBool = AtomicBool::new(false);

/// Sets the UART the hyp reports on.
///
/// # Safety
/// `base` must be a PL011 (or, with `bcm2835_aux`, a BCM2835 mini-UART's AUX_MU_IO_REG) mapped
/// in the hyp's stage-1 as Device memory. The UART is **shared** with the host's console
/// (`kernel/src/console.rs`, `drivers/src/pl011.rs`, whose SAFETY claims say so): both sides
/// only poll a status register and write whole bytes to the data register, single 32-bit
/// volatile accesses, so the worst a race does is interleave characters of two lines.
pub unsafe fn set_uart(base: u64, bcm2835_aux: bool) {
    AUX.store(bcm2835_aux, Ordering::Relaxed);
    UART.store(base, Ordering::Relaxed);
}

/// Lock-free writer to the UART.
pub struct Raw(usize);

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(self.0, b'\r');
            }
            put(self.0, b);
        }
        Ok(())
    }
}

fn put(base: usize, b: u8) {
    // PL011: wait while FR.TXFF (0x18 bit 5) is set; mini-UART: wait until AUX_MU_LSR_REG
    // (0x14 further) bit 5 "transmitter empty" is set. Then the data register at +0.
    // (status offset, the value bit 5 has when a byte may be written)
    let (status, ready_bit) = if AUX.load(Ordering::Relaxed) {
        (0x14, 1 << 5)
    } else {
        (0x18, 0)
    };
    // SAFETY: `base` is the UART `set_uart`'s caller vouched for, of this kind (shared with
    // the host, see there); polling its status register then writing its data register sends
    // one byte.
    unsafe {
        while core::ptr::read_volatile((base + status) as *const u32) & (1 << 5) != ready_bit {
            core::hint::spin_loop();
        }
        core::ptr::write_volatile(base as *mut u32, u32::from(b));
    }
}

/// Microseconds since reset, from the physical counter (the same clock as the kernel's and
/// the firmware's event times).
fn now_us() -> u64 {
    use arm_sysregs::el0::accessors::{read_cntfrq_el0, read_cntpct_el0};
    arch::isb();
    catena_event::ticks_to_us(read_cntpct_el0().bits(), read_cntfrq_el0().bits())
}

/// Emits one `@event` line.
pub fn event(
    kind: catena_event::Kind,
    f: impl FnOnce(EventWriter<'_, Raw>) -> EventWriter<'_, Raw>,
) {
    let base = UART.load(Ordering::Relaxed) as usize;
    if base == 0 {
        return;
    }
    let t = now_us();
    let mut w = Raw(base);
    let _ = f(EventWriter::new(&mut w, kind)).time(t).finish();
    let _ = w.write_str("\n");
}
