//! QEMU's fw_cfg (docs/specs/fw_cfg.rst): the kernel and command line given with `-kernel`
//! and `-append`. MMIO interface: data at +0 (string-preserving, up to 8 bytes per read),
//! selector at +8 (16-bit big-endian).

use alloc::string::String;
use dtinfo::Platform;
pub use fwcfg::Loaded;

/// QEMU's fw_cfg MMIO interface (docs/specs/fw_cfg.rst: data at +0, selector at +8).
struct FwCfg {
    base: usize,
}

impl FwCfg {
    /// # Safety
    /// `base` must be the fw_cfg MMIO block (at least 16 bytes: data and selector), reachable
    /// with the EL3 MMU off (Device-nGnRnE), and used by nothing else while this value lives:
    /// selecting an item and reading it are one sequence of register accesses.
    unsafe fn new(base: usize) -> FwCfg {
        FwCfg { base }
    }
}

impl fwcfg::FwCfgIo for FwCfg {
    fn select(&mut self, key: u16) {
        // SAFETY: the selector register of the fw_cfg block `new`'s caller vouched for.
        unsafe { core::ptr::write_volatile((self.base + 8) as *mut u16, key.to_be()) };
    }

    fn read(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: the fw_cfg data register; an 8-byte read returns the next 8 bytes of the
            // item in order.
            let v = unsafe { core::ptr::read_volatile(self.base as *const u64) };
            c.copy_from_slice(&v.to_ne_bytes());
        }
        for b in chunks.into_remainder() {
            // SAFETY: as above, one byte.
            *b = unsafe { core::ptr::read_volatile(self.base as *const u8) };
        }
    }
}

/// Normal-world DRAM, written with the MMU off.
struct NsDram(());

impl fwcfg::Ram for NsDram {
    fn write(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: `fwcfg::load_kernel` writes only inside [lowest, ram_end), which
        // `load_kernel` below takes from the DT's DRAM range after the DT slot, and
        // `fwcfg::load_bl33` only inside [BL33_BASE, ram_end) of the DRAM range `load_bl33`
        // below found, and `fwcfg::load_initrd` only inside [after the kernel, ram_end) of the
        // same range; the normal world is not running, so the firmware is its only user.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len());
        }
    }
}

/// The DT's fw_cfg block (`qemu,fw-cfg-mmio` with a `reg`), if there is one.
fn device(p: &Platform) -> Option<FwCfg> {
    let base = p.compatible("qemu,fw-cfg-mmio")?.regions.first()?.base as usize;
    // SAFETY: the DT's `qemu,fw-cfg-mmio` region (QEMU places it in the normal-world device
    // space, reachable from EL3 with the MMU off); every caller runs on the boot CPU before
    // any other CPU is released, one `FwCfg` at a time.
    Some(unsafe { FwCfg::new(base) })
}

/// The DRAM range of the DT that holds `addr`.
fn dram_holding(p: &Platform, addr: u64, what: &'static str) -> Result<dtinfo::Range, String> {
    p.memory
        .iter()
        .copied()
        .find(|r| r.base <= addr && addr < r.end())
        .ok_or_else(|| String::from(what))
}

/// Loads the `-kernel` Image, if fw_cfg carries one, after the DTB slot in the first DRAM
/// range, honouring its header (the decisions: `lib/fwcfg`, host-tested).
pub fn load_kernel(p: &Platform) -> Result<Option<Loaded>, String> {
    if p.compatible("qemu,fw-cfg-mmio").is_none() {
        return Ok(None);
    }
    let mut fw = device(p).ok_or("fw_cfg without reg")?;
    let ram = dram_holding(p, crate::platform::DTB_ADDR, "no DRAM range holds the DTB")?;
    // After the DT slot, the TPM's CRB pages and the MM buffer that follow it.
    let (mm, crb, log) = (
        crate::platform::MM_BUFFER,
        crate::platform::TPM_CRB,
        crate::platform::EVENT_LOG,
    );
    let lowest = (crb.0 + crb.1).max(mm.0 + mm.1).max(log.0 + log.1);
    fwcfg::load_kernel(&mut fw, &mut NsDram(()), lowest, ram.end())
}

/// Loads the `-initrd` file, if fw_cfg carries one, on the first 2 MiB boundary at or after
/// `lowest` (the end of the kernel's image, .bss included) in the DRAM range that holds the
/// DT slot (the checks: `lib/fwcfg`, host-tested).
pub fn load_initrd(p: &Platform, lowest: u64) -> Result<Option<fwcfg::LoadedInitrd>, String> {
    let Some(mut fw) = device(p) else {
        return Ok(None);
    };
    let ram = dram_holding(p, crate::platform::DTB_ADDR, "no DRAM range holds the DTB")?;
    fwcfg::load_initrd(&mut fw, &mut NsDram(()), lowest, ram.end())
}

/// Loads a raw BL33 (`opt/catena/bl33`, U-Boot), if fw_cfg carries one, at
/// [`BL33_BASE`](crate::platform::BL33_BASE) in the DRAM range that holds it (the checks:
/// `lib/fwcfg`, host-tested).
pub fn load_bl33(p: &Platform) -> Result<Option<fwcfg::LoadedBl33>, String> {
    let Some(mut fw) = device(p) else {
        return Ok(None);
    };
    let at = crate::platform::BL33_BASE;
    let ram = dram_holding(p, at, "no DRAM range holds the BL33 load address")?;
    fwcfg::load_bl33(&mut fw, &mut NsDram(()), at, ram.end())
}

/// The test-only power-cut step for the variable store (`opt/catena/varstore-cut`), if QEMU
/// was given one; a file that is not a number is reported and ignored.
pub fn varstore_cut(p: &Platform) -> Option<u64> {
    let mut fw = device(p)?;
    match fwcfg::number_file(&mut fw, fwcfg::VARSTORE_CUT_FILE) {
        Ok(n) => n,
        Err(e) => {
            crate::fwlog!("{e}");
            None
        }
    }
}

/// The kernel command line (`-append`), read early (the variable benchmark's direct side
/// needs it before the payload is loaded); empty without fw_cfg.
pub fn cmdline(p: &Platform) -> String {
    let Some(mut fw) = device(p) else {
        return String::new();
    };
    fwcfg::cmdline(&mut fw)
}
