//! The hyp's reports: `@event` lines straight to the UART registers (the kernel's console
//! lock is host memory, which the hyp must not depend on).

use catena_event::EventWriter;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

static UART: AtomicU64 = AtomicU64::new(0);

/// Sets the UART the hyp reports on.
///
/// # Safety
/// `base` must be a PL011 mapped in the hyp's stage-1 as Device memory. The UART is **shared**
/// with the host's console driver (`drivers/src/pl011.rs`, whose SAFETY claim says so): both
/// sides only poll FR and write whole bytes to DR, single 32-bit volatile accesses, so the
/// worst a race does is interleave characters of two lines.
pub unsafe fn set_uart(base: u64) {
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
    // SAFETY: `base` is the PL011 `set_uart`'s caller vouched for (shared with the host, see
    // there); polling FR.TXFF (bit 5, offset 0x18) then writing DR (offset 0) sends one byte.
    unsafe {
        while core::ptr::read_volatile((base + 0x18) as *const u32) & (1 << 5) != 0 {
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
