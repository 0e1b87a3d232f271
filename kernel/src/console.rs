//! The console: a lock-free emergency path, the `log` logger and `@event` lines.
//!
//! Before the PL011 driver binds, and always for panics and exceptions, text goes straight to
//! the UART's data register at the address `/chosen/stdout-path` gave ([`Emergency`]): no lock,
//! no allocation. Normal output ([`write_str`], the logger, [`emit`]) takes the console lock
//! with interrupts masked so lines from two CPUs or an interrupt handler never interleave.

use alloc::string::String;
use catena_event::EventWriter;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};
use dtinfo::early::{StdoutUart, UartKind};

static UART_BASE: AtomicUsize = AtomicUsize::new(0);
/// 0: PL011; 1: BCM2835 mini-UART (see [`UartKind`]).
static UART_KIND: AtomicUsize = AtomicUsize::new(0);
/// Serialises the emergency path's whole lines against the locked path.
static RAW_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// PL011 data register and flag register offsets, and FR.TXFF (PL011 TRM, 3.3).
const UARTDR: usize = 0x00;
const UARTFR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;
/// BCM2835 mini-UART: AUX_MU_IO_REG at the DT region's start, AUX_MU_LSR_REG 0x14 further,
/// LSR bit 5 "transmitter empty" (the FIFO can take a byte) (BCM2835 ARM Peripherals 2.2.2).
const AUX_MU_IO: usize = 0x00;
const AUX_MU_LSR: usize = 0x14;
const LSR_TX_EMPTY: u32 = 1 << 5;
/// AUX_MU_LSR_REG bit 0: "data ready" (the receive FIFO holds a byte).
const LSR_DATA_READY: u32 = 1 << 0;

/// Remembers the stdout UART for the emergency path.
///
/// # Safety
/// `uart`, if any, must be the DT's stdout UART, mapped as Device memory by every page table
/// the kernel will install (`mm` maps every DT device region) and reachable with the MMU off
/// until then. The emergency path writes it without the driver's pointer; the driver and the
/// hyp's console share it too (see `drivers/src/pl011.rs`).
pub unsafe fn early_init(uart: Option<StdoutUart>) {
    if let Some(u) = uart
        && let Ok(base) = usize::try_from(u.region.base)
    {
        UART_KIND.store(
            match u.kind {
                UartKind::Pl011 => 0,
                UartKind::Bcm2835Aux => 1,
            },
            Ordering::Relaxed,
        );
        UART_BASE.store(base, Ordering::Relaxed);
    }
}

/// The stdout UART's base, if known.
pub fn uart_base() -> Option<usize> {
    match UART_BASE.load(Ordering::Relaxed) {
        0 => None,
        b => Some(b),
    }
}

/// The stdout UART's kind (meaningful when [`uart_base`] is known).
pub fn uart_kind() -> UartKind {
    match UART_KIND.load(Ordering::Relaxed) {
        0 => UartKind::Pl011,
        _ => UartKind::Bcm2835Aux,
    }
}

/// One byte typed on the console, if one is waiting: through the PL011 driver when it is bound,
/// else (the BCM2835 mini-UART, which has no driver) from its registers directly.
pub fn read_byte() -> Option<u8> {
    let _irq = IrqGuard::new();
    if let Some(b) = catena_drivers::pl011::read_byte() {
        return Some(b);
    }
    let base = uart_base()?;
    if uart_kind() != UartKind::Bcm2835Aux {
        return None;
    }
    let _g = RAW_LOCK.lock();
    // SAFETY: `base` is the mini-UART `early_init`'s caller vouched for (mapped Device memory);
    // reading LSR has no side effect and reading IO takes the byte LSR said is waiting.
    unsafe {
        if core::ptr::read_volatile((base + AUX_MU_LSR) as *const u32) & LSR_DATA_READY == 0 {
            return None;
        }
        Some(core::ptr::read_volatile((base + AUX_MU_IO) as *const u32) as u8)
    }
}

/// Lock-free writer straight to the UART registers.
pub struct Emergency;

impl Emergency {
    fn put(base: usize, kind: UartKind, b: u8) {
        let (status, busy_mask, busy_when_set, data) = match kind {
            UartKind::Pl011 => (UARTFR, FR_TXFF, true, UARTDR),
            UartKind::Bcm2835Aux => (AUX_MU_LSR, LSR_TX_EMPTY, false, AUX_MU_IO),
        };
        // SAFETY: `base` is the UART `early_init`'s caller vouched for, of this kind; volatile
        // 32-bit accesses to its status and data registers have no effect beyond sending the
        // byte.
        unsafe {
            while (core::ptr::read_volatile((base + status) as *const u32) & busy_mask != 0)
                == busy_when_set
            {
                core::hint::spin_loop();
            }
            core::ptr::write_volatile((base + data) as *mut u32, u32::from(b));
        }
    }
}

impl Write for Emergency {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let Some(base) = uart_base() else {
            return Ok(());
        };
        let kind = uart_kind();
        for b in s.bytes() {
            if b == b'\n' {
                Self::put(base, kind, b'\r');
            }
            Self::put(base, kind, b);
        }
        Ok(())
    }
}

/// Masks IRQs for the guard's lifetime, restoring the previous mask on drop.
pub struct IrqGuard(arch::Daif);

impl IrqGuard {
    /// Masks IRQs.
    pub fn new() -> Self {
        IrqGuard(arch::irq_save())
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        arch::irq_restore(self.0);
    }
}

/// Writes text to the console (through the PL011 driver once it is bound).
pub fn write_str(s: &str) {
    let _irq = IrqGuard::new();
    if !catena_drivers::pl011::write_str(s) {
        let _raw = RAW_LOCK.lock();
        let _ = Emergency.write_str(s);
    }
}

/// Emits one `@event` line.
pub fn emit(
    kind: catena_event::Kind,
    f: impl FnOnce(EventWriter<'_, String>) -> EventWriter<'_, String>,
) {
    let t = crate::arch::time::now_us();
    let mut line = String::with_capacity(96);
    let _ = f(EventWriter::new(&mut line, kind)).time(t).finish();
    line.push('\n');
    write_str(&line);
    catena_drivers::ima::observe(&line);
}

/// Emits one `@event` line on the emergency path (no lock, no allocation).
pub fn emit_emergency(
    kind: catena_event::Kind,
    f: impl FnOnce(EventWriter<'_, Emergency>) -> EventWriter<'_, Emergency>,
) {
    let t = crate::arch::time::now_us();
    let mut w = Emergency;
    let _ = f(EventWriter::new(&mut w, kind)).time(t).finish();
    let _ = w.write_str("\n");
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = String::with_capacity(96);
        let _ = writeln!(line, "[{:5}] {}", record.level(), record.args());
        write_str(&line);
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the logger.
pub fn init_logger(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
