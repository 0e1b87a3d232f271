//! `fw-cfg`: QEMU's fw_cfg (docs/specs/fw_cfg.rst, MMIO interface: data at +0, selector at
//! +8, big-endian) as the kernel reads it — named files only, through `lib/fwcfg`, which
//! checks the directory and bounds every read. The UEFI enrolment files come this way.

use alloc::vec::Vec;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use fwcfg::{File, FwCfgIo};
use spin::Mutex;

/// The driver.
pub const DRIVER: Driver = Driver {
    name: "fw-cfg",
    bus: "platform",
    ids: &[MatchId::Compatible("qemu,fw-cfg-mmio")],
    probe,
    bound: None,
};

/// The data and selector registers through the kernel's Device mapping of the DT region.
struct Mmio {
    base: usize,
}

impl FwCfgIo for Mmio {
    fn select(&mut self, key: u16) {
        // SAFETY: the selector register of the DT's fw_cfg region (at least 16 bytes, checked
        // at probe), mapped as Device memory before drivers probe; used under `DEVICE`'s lock.
        unsafe { core::ptr::write_volatile((self.base + 8) as *mut u16, key.to_be()) };
    }

    fn read(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            // SAFETY: the data register, as for `select`; each byte read returns the next byte
            // of the selected item.
            *b = unsafe { core::ptr::read_volatile(self.base as *const u8) };
        }
    }
}

static DEVICE: Mutex<Option<Mmio>> = Mutex::new(None);

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let r = *ctx
        .device()
        .regions
        .first()
        .ok_or(ProbeError::Failed("no reg"))?;
    if r.size < 16 {
        return Err(ProbeError::Failed(
            "fw_cfg region smaller than its registers",
        ));
    }
    let mut m = Mmio {
        base: r.base as usize,
    };
    let mut sig = [0u8; 4];
    m.select(fwcfg::sel::SIGNATURE);
    m.read(&mut sig);
    if &sig != b"QEMU" {
        return Err(ProbeError::Failed("fw_cfg signature is not QEMU"));
    }
    *DEVICE.lock() = Some(m);
    Ok(())
}

/// The files whose names start with `prefix`, each read whole if at most `max` bytes (larger
/// ones are returned as errors); empty without fw_cfg.
pub fn files(prefix: &str, max: u32) -> Vec<(File, Result<Vec<u8>, alloc::string::String>)> {
    let mut d = DEVICE.lock();
    let Some(m) = d.as_mut() else {
        return Vec::new();
    };
    fwcfg::files(m, prefix)
        .into_iter()
        .map(|f| {
            let r = fwcfg::read_file(m, &f, max);
            (f, r)
        })
        .collect()
}
