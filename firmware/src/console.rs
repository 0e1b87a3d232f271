//! The secure UART: a locked writer for normal output and a lock-free one for failures.

use crate::platform::SECURE_UART;
use alloc::string::String;
use catena_event::EventWriter;
use core::fmt::{self, Write};

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// PL011 DR and FR offsets, FR.TXFF (PL011 TRM 3.3).
const UARTDR: usize = 0x00;
const UARTFR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Lock-free writer to the secure UART.
pub struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

fn put(b: u8) {
    // SAFETY: SECURE_UART is the QEMU virt secure PL011, accessible only from the secure world;
    // with the EL3 MMU off every access is Device-nGnRnE. FR and DR are read/written as 32-bit
    // registers and writing DR only sends the byte.
    unsafe {
        while core::ptr::read_volatile((SECURE_UART + UARTFR) as *const u32) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        core::ptr::write_volatile((SECURE_UART + UARTDR) as *mut u32, u32::from(b));
    }
}

/// Writes a whole string under the console lock.
pub fn write_str(s: &str) {
    let _g = LOCK.lock();
    let _ = Raw.write_str(s);
}

/// `println!` for the firmware log.
#[macro_export]
macro_rules! fwlog {
    ($($arg:tt)*) => {{
        let mut line = alloc::string::String::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        line.push('\n');
        $crate::console::write_str(&line);
    }};
}

/// Emits `@event fw ev=<ev> ...`.
pub fn event(
    ev: catena_event::FwEvent,
    f: impl FnOnce(EventWriter<'_, String>) -> EventWriter<'_, String>,
) {
    let t = crate::el3::now_us();
    let mut line = String::with_capacity(96);
    let _ = f(EventWriter::firmware(&mut line, ev)).time(t).finish();
    line.push('\n');
    write_str(&line);
}
