//! `tpm-tis`: the TPM's FIFO interface reached directly (`tcg,tpm-tis-mmio`), where no secure
//! firmware owns it — the `el2` machine with a TPM, boards whose TPM sits on MMIO. When the
//! firmware's TPM service owns the TIS it marks the node secure-only, so this driver never
//! sees it and the hyp keeps it out of the host's stage-2.

use super::register;
use crate::kapi;
use alloc::boxed::Box;
use alloc::string::String;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use tpm_tis::{Io, Timeouts, Tis};

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "tpm-tis",
    bus: "platform",
    ids: &[MatchId::Compatible("tcg,tpm-tis-mmio")],
    probe,
    bound: None,
};

/// The five locality pages.
const SIZE: u32 = 0x5000;

/// The TIS registers through the kernel's Device mapping of the DT region.
struct Mmio {
    base: usize,
}

impl Mmio {
    fn addr(&self, off: u32, align: usize) -> Option<usize> {
        (off < SIZE && (off as usize).is_multiple_of(align)).then(|| self.base + off as usize)
    }
}

impl Io for Mmio {
    fn read8(&mut self, off: u32) -> u8 {
        // SAFETY: inside the DT's TIS region (checked by `addr`), which the kernel maps as
        // Device memory before drivers probe; the device model binds it to this driver only.
        self.addr(off, 1).map_or(0xff, |a| unsafe {
            core::ptr::read_volatile(a as *const u8)
        })
    }
    fn write8(&mut self, off: u32, v: u8) {
        if let Some(a) = self.addr(off, 1) {
            // SAFETY: as for `read8`.
            unsafe { core::ptr::write_volatile(a as *mut u8, v) }
        }
    }
    fn read32(&mut self, off: u32) -> u32 {
        // SAFETY: as for `read8`, at a 4-byte aligned register.
        self.addr(off, 4).map_or(u32::MAX, |a| unsafe {
            core::ptr::read_volatile(a as *const u32)
        })
    }
    fn write32(&mut self, off: u32, v: u32) {
        if let Some(a) = self.addr(off, 4) {
            // SAFETY: as for `read32`.
            unsafe { core::ptr::write_volatile(a as *mut u32, v) }
        }
    }
    fn now_us(&mut self) -> u64 {
        kapi::now_us()
    }
}

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let r = *ctx
        .device()
        .regions
        .first()
        .ok_or(ProbeError::Failed("no reg"))?;
    if r.size < u64::from(SIZE) {
        return Err(ProbeError::Failed("reg smaller than five locality pages"));
    }
    let base = usize::try_from(r.base).map_err(|_| ProbeError::Failed("reg beyond reach"))?;
    let mut tis = Tis::new(Mmio { base }, Timeouts::PTP);
    let path = String::from(ctx.path());
    if let Err(e) = tis.ids() {
        kapi::emit(catena_event::Kind::Tpm, |w| {
            w.str("state", "error")
                .str("transport", "tis")
                .str("dev", &path)
                .str("reason", e.name())
        });
        return Err(ProbeError::Failed("tpm-tis-absent"));
    }
    register(Box::new(tis), "tis", "mmio", &path).map_err(|_| ProbeError::Failed("tpm-tis"))
}
