//! PL011 UART driver: the console.
//!
//! Binds `arm,pl011` devices; checks the PrimeCell identification registers (a region that does
//! not identify as a PL011 is a quiet miss), and the device the kernel marked as `/chosen`'s
//! stdout becomes the console behind [`write_str`]. The kernel's lock-free emergency path keeps
//! writing to the same registers directly for panics and exceptions.

use arm_pl011_uart::{PL011Registers, Uart};
use core::fmt::Write;
use core::ptr::NonNull;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use safe_mmio::UniqueMmioPointer;
use spin::Mutex;

/// The console UART, once bound. Its lock is the console lock.
static CONSOLE: Mutex<Option<Uart<'static>>> = Mutex::new(None);

/// Device property the kernel sets on the `/chosen` stdout device.
pub const STDOUT_PROP: &str = "stdout";

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "pl011",
    bus: "platform",
    ids: &[MatchId::Compatible("arm,pl011")],
    probe,
    bound: None,
};

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let dev = ctx.device();
    let region = *dev.regions.first().ok_or(ProbeError::Failed("no reg"))?;
    if (region.size as usize) < size_of::<PL011Registers>() {
        return Err(ProbeError::Failed(
            "reg smaller than the PL011 register block",
        ));
    }
    let base = usize::try_from(region.base)
        .map_err(|_| ProbeError::Failed("reg beyond the address space"))?;
    let regs = NonNull::new(base as *mut PL011Registers).ok_or(ProbeError::Failed("reg at 0"))?;
    // SAFETY: `regs` is the MMIO block the DT gives for this device; the kernel maps every DT
    // device region as Device memory before drivers probe, and the device model binds a device
    // to one driver only, so this is the only `UniqueMmioPointer` to it in the kernel. Not the
    // only writer: the kernel's emergency print path (used only when the kernel is failing)
    // and the hyp's console (`hyp/src/console.rs`, its reports) poll FR and write DR of the
    // same UART without it; each access is one 32-bit volatile register access, so a race
    // interleaves characters and breaks nothing else.
    let uart = Uart::new(unsafe { UniqueMmioPointer::new(regs) });
    if !uart.read_identification().is_valid() {
        return Err(ProbeError::NoDevice);
    }
    if dev.prop(STDOUT_PROP) == Some(1) {
        *CONSOLE.lock() = Some(uart);
        log::info!("pl011 at {base:#x} is the console");
    } else {
        log::info!("pl011 at {base:#x} bound (not the console)");
    }
    Ok(())
}

/// One byte the console UART received, if any (a byte with a framing, parity, break or
/// overrun error is dropped). The caller masks interrupts, as for [`write_str`].
pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().as_mut()?.read_word().ok().flatten()
}

/// Writes to the console UART. Returns false when no console is bound yet.
/// The caller masks interrupts so that an interrupt handler cannot deadlock on the lock.
pub fn write_str(s: &str) -> bool {
    let mut console = CONSOLE.lock();
    match console.as_mut() {
        Some(uart) => {
            for line in s.split_inclusive('\n') {
                let (body, nl) = match line.strip_suffix('\n') {
                    Some(b) => (b, true),
                    None => (line, false),
                };
                let _ = uart.write_str(body);
                if nl {
                    let _ = uart.write_str("\r\n");
                }
            }
            true
        }
        None => false,
    }
}
