//! The UEFI variable partition's hardware side: the secure flash (flash0, Intel CFI NOR) the
//! store lives in, and the normal-world buffer MM communicate messages arrive in. The store's
//! format, the CFI command sequences and the variable rules are in `lib/varstore`,
//! `lib/cfi-flash` and `lib/uefi-vars` (host-tested).

use crate::platform::{MM_BUFFER, SECURE_FLASH, VARSTORE};
use cfi_flash::{Cfi, Io, Window};
use dtinfo::Platform;
use uefi_vars::partition::{Buffer, OutsideBuffer, VarPartition};
use uefi_vars::{Limits, Vars};
use varstore::{Flash, FlashError, Recovery, Store};

/// flash0's registers and array, reached with the MMU off (Device memory).
pub struct FlashMmio {
    base: usize,
    size: u32,
}

impl FlashMmio {
    /// # Safety
    /// `base..base + size` must be the secure CFI flash, used by nothing else while this value
    /// lives — in particular no code runs from it (the firmware runs from secure RAM).
    unsafe fn new(base: usize, size: u32) -> FlashMmio {
        FlashMmio { base, size }
    }

    fn addr(&self, off: u32) -> Option<usize> {
        (off.is_multiple_of(4) && off.checked_add(4).is_some_and(|e| e <= self.size))
            .then(|| self.base + off as usize)
    }
}

impl Io for FlashMmio {
    fn read32(&mut self, off: u32) -> u32 {
        // SAFETY: an aligned word inside the flash `new` was given (checked by `addr`); flash0
        // starts at address 0, so the access is `arch::read32_at`'s `ldr`, not a Rust pointer.
        self.addr(off)
            .map_or(u32::MAX, |a| unsafe { arch::read32_at(a) })
    }

    fn write32(&mut self, off: u32, v: u32) {
        if let Some(a) = self.addr(off) {
            // SAFETY: as for `read32`; a write is a command or data cycle of the CFI device.
            unsafe { arch::write32_at(a, v) }
        }
    }
}

/// Test-only (`opt/catena/varstore-cut` = N): the power goes before the Nth flash step — a
/// bus word programmed, or a block erased — so `varstore-powercut` can stop a write anywhere.
pub struct Cut<F> {
    inner: F,
    steps: u64,
    at: Option<u64>,
}

impl<F: Flash> Cut<F> {
    fn step(&mut self) {
        self.steps += 1;
        if self.at == Some(self.steps) {
            crate::console::event(catena_event::FwEvent::VarstoreCut, |e| {
                e.u64("step", self.steps)
            });
            crate::power::off();
        }
    }
}

impl<F: Flash> Flash for Cut<F> {
    fn size(&self) -> u32 {
        self.inner.size()
    }

    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }

    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.inner.read(off, buf)
    }

    fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError> {
        if self.at.is_none() {
            return self.inner.program(off, data);
        }
        // One bus word at a time, each a step.
        let mut i = 0usize;
        while i < data.len() {
            let a = off + i as u32;
            let n = (4 - (a % 4) as usize).min(data.len() - i);
            self.step();
            self.inner.program(a, &data[i..i + n])?;
            i += n;
        }
        Ok(())
    }

    fn erase(&mut self, off: u32) -> Result<(), FlashError> {
        self.step();
        self.inner.erase(off)
    }
}

/// The MM communicate buffer in normal-world RAM (reserved in the DT).
pub struct MmBuffer {
    pa: u64,
    size: u64,
}

impl MmBuffer {
    fn at(&self, off: u64, len: usize) -> Result<usize, OutsideBuffer> {
        let end = off.checked_add(len as u64).ok_or(OutsideBuffer)?;
        if end > self.size {
            return Err(OutsideBuffer);
        }
        Ok((self.pa + off) as usize)
    }
}

impl Buffer for MmBuffer {
    fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideBuffer> {
        let a = self.at(off, buf.len())?;
        // SAFETY: inside the reserved buffer (checked by `at`), normal-world RAM the firmware
        // reserved for this; volatile, since the normal world may write it at any time (the
        // partition reads each byte once).
        unsafe { arch::read_shared(a, buf) };
        Ok(())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideBuffer> {
        let a = self.at(off, data.len())?;
        // SAFETY: as for `read`.
        unsafe { arch::write_shared(a, data) };
        Ok(())
    }
}

/// The flash the store sees.
pub type StoreFlash = Cut<Window<FlashMmio>>;
/// The partition as the SPMC holds it.
pub type Partition = VarPartition<MmBuffer, StoreFlash>;

/// Variable sizes: 128 KiB of name and data per variable (a db with a hundred certificates
/// fits), 64 KiB of volatile variables.
const LIMITS: Limits = Limits {
    max_var_size: 128 * 1024,
    volatile_bytes: 64 * 1024,
};

/// The partition over the secure flash the DT describes, and what opening the store found.
pub fn partition(p: &Platform, cut: Option<u64>) -> Result<(Partition, Recovery), &'static str> {
    // QEMU virt's secure flash: `secflash@0`, secure-only, the size this port expects.
    let flash = p
        .devices
        .iter()
        .find(|d| d.secure_enabled && !d.enabled && d.compatible.iter().any(|c| c == "cfi-flash"))
        .ok_or("no secure cfi-flash in the DT")?;
    let r = flash.regions.first().ok_or("secure flash without reg")?;
    if (r.base, r.size) != SECURE_FLASH {
        return Err("the secure flash is not where this port expects it");
    }
    // SAFETY: the DT's secure-only flash at the address this port fixes; the firmware runs
    // from secure RAM (linker.ld), and only the variable store uses the flash after boot.
    let io = unsafe { FlashMmio::new(r.base as usize, r.size as u32) };
    let cfi = Cfi::probe(io, r.size as u32).map_err(|_| "the secure flash is not a CFI part")?;
    let window = Window::new(cfi, VARSTORE.0, VARSTORE.1).ok_or("store region not in blocks")?;
    let flash = Cut {
        inner: window,
        steps: 0,
        at: cut,
    };
    let (store, recovery) = Store::open(flash).map_err(|_| "the store could not be opened")?;
    let buffer = MmBuffer {
        pa: MM_BUFFER.0,
        size: MM_BUFFER.1,
    };
    Ok((
        VarPartition::new(Vars::new(store, LIMITS), buffer),
        recovery,
    ))
}

/// `catena.efivar_bench_fw=N` on the kernel command line (`cargo xtask bench efivar`'s direct
/// side): N.
pub fn bench_calls(cmdline: &str) -> Option<u32> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("catena.efivar_bench_fw="))
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=100_000).contains(n))
}

/// The benchmark's direct side: N rounds of SetVariable then GetVariable of the same
/// 64-byte variable the kernel's side uses, called on the service directly (no message, no
/// FF-A), between the instruction counter's markers; how many rounds succeeded.
pub fn bench_direct(part: &mut Partition, n: u32) -> u32 {
    use uefi_vars::attr::*;
    let name = uefi_vars::client::utf16z("CatenaBench");
    let attrs = NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS;
    let vars = part.vars_mut();
    let mut ok = 0;
    arch::count_start();
    for i in 0..n {
        let value = [i as u8; 64];
        if vars
            .set(&uefi_vars::CATENA_TEST_VENDOR, &name, attrs, &value)
            .is_ok()
            && vars
                .get(&uefi_vars::CATENA_TEST_VENDOR, &name)
                .is_ok_and(|v| v.data == value)
        {
            ok += 1;
        }
    }
    arch::count_end();
    ok
}
