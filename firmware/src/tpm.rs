//! The TPM service partition's hardware side: the TIS (swtpm behind QEMU's `tpm-tis-device`)
//! and the CRB pages in normal-world RAM; the protocol and every check are in `lib/tpm-tis`
//! and `lib/tpm-service` (host-tested).

use crate::platform::TPM_CRB;
use dtinfo::Platform;
use tpm_core::Tpm as TpmCore;
use tpm_service::partition::TpmPartition;
use tpm_service::{Crb, OutsideCrb, Tpm, TpmError};
use tpm_tis::{Io, Timeouts, Tis};

/// The TIS registers (five 4 KiB locality pages), reached with the MMU off (Device memory).
pub struct TisMmio {
    base: usize,
}

/// Bytes the five locality pages span.
const TIS_SIZE: u32 = 0x5000;

impl TisMmio {
    /// # Safety
    /// `base` must be the DT's `tcg,tpm-tis-mmio` region, at least [`TIS_SIZE`] bytes of MMIO
    /// that only this value accesses (the hyp keeps it out of the host's stage-2).
    unsafe fn new(base: usize) -> TisMmio {
        TisMmio { base }
    }

    fn addr(&self, off: u32) -> Option<usize> {
        (off < TIS_SIZE).then(|| self.base + off as usize)
    }
}

impl Io for TisMmio {
    fn read8(&mut self, off: u32) -> u8 {
        // SAFETY: an offset inside the TIS region `new` was given (checked by `addr`).
        self.addr(off).map_or(0xff, |a| unsafe {
            core::ptr::read_volatile(a as *const u8)
        })
    }

    fn write8(&mut self, off: u32, v: u8) {
        if let Some(a) = self.addr(off) {
            // SAFETY: as for `read8`.
            unsafe { core::ptr::write_volatile(a as *mut u8, v) }
        }
    }

    fn read32(&mut self, off: u32) -> u32 {
        match self.addr(off) {
            // SAFETY: as for `read8`; every 32-bit TIS register is 4-byte aligned.
            Some(a) if a % 4 == 0 => unsafe { core::ptr::read_volatile(a as *const u32) },
            _ => u32::MAX,
        }
    }

    fn write32(&mut self, off: u32, v: u32) {
        if let Some(a) = self.addr(off).filter(|a| a % 4 == 0) {
            // SAFETY: as for `read32`.
            unsafe { core::ptr::write_volatile(a as *mut u32, v) }
        }
    }

    fn now_us(&mut self) -> u64 {
        crate::el3::now_us()
    }

    fn waiting(&mut self, on: bool) {
        // The instruction counter leaves the wait for swtpm out (tools/qemu-plugin).
        if on {
            arch::count_pause();
        } else {
            arch::count_resume();
        }
    }
}

/// The TIS, shared by the TPM service partition and the firmware's own measurements (which
/// run at boot, before the normal world can call the partition).
static TIS: spin::Once<spin::Mutex<Tis<TisMmio>>> = spin::Once::new();

/// The TPM as the service sees it: commands over the shared TIS.
pub struct TisTpm(());

impl Tpm for TisTpm {
    fn execute(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError> {
        let tis = TIS.get().ok_or(TpmError::Failed)?;
        tis.lock().execute(loc, cmd, rsp).map_err(|e| {
            crate::fwlog!("tpm: TIS {} at locality {loc}", e.name());
            TpmError::Failed
        })
    }
}

/// The shared TIS as the TPM core's transport (locality 0), for the measurements.
pub struct SharedTis(());

impl tpm_core::Transport for SharedTis {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        let tis = TIS.get().ok_or("no TIS")?;
        tis.lock().execute(0, cmd, rsp).map_err(|e| e.name())
    }
}

/// The TPM core over the shared TIS, if the boot found one.
pub fn core() -> Option<TpmCore<SharedTis>> {
    TIS.get().map(|_| TpmCore::new(SharedTis(())))
}

/// The CRB pages: normal-world RAM the firmware reserves in the DT ([`TPM_CRB`]).
pub struct CrbPages(());

impl CrbPages {
    fn at(off: u64, len: usize) -> Result<usize, OutsideCrb> {
        let end = off.checked_add(len as u64).ok_or(OutsideCrb)?;
        if end > TPM_CRB.1 {
            return Err(OutsideCrb);
        }
        Ok((TPM_CRB.0 + off) as usize)
    }
}

impl Crb for CrbPages {
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideCrb> {
        let a = Self::at(off, buf.len())?;
        // SAFETY: `at` kept the range inside TPM_CRB, normal-world RAM that the DT reserves
        // from the kernel's allocator; volatile reads, since the normal world may write it
        // concurrently.
        unsafe { arch::read_shared(a, buf) };
        Ok(())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideCrb> {
        let a = Self::at(off, data.len())?;
        // SAFETY: as for `read`.
        unsafe { arch::write_shared(a, data) };
        Ok(())
    }
}

/// What the boot did with the TPM.
pub enum Startup {
    /// Started (TPM_RC_SUCCESS) or already started (TPM_RC_INITIALIZE).
    Done { already: bool },
    /// The TPM answered with another code.
    Rc(u32),
    /// The TIS or the response failed (the reason).
    Failed(&'static str),
}

/// The partition, if the DT has a TIS; TPM2_Startup (through `lib/tpm-core`) is sent first,
/// since QEMU resets swtpm at every start and a PC-client TPM answers nothing before it.
/// Also the TIS's DID_VID (0 when it does not answer).
pub fn partition(p: &Platform) -> Option<(TpmPartition<CrbPages, TisTpm>, Startup, u64)> {
    let tis = p.compatible("tcg,tpm-tis-mmio")?;
    let r = tis
        .regions
        .first()
        .filter(|r| r.size >= u64::from(TIS_SIZE))?;
    // SAFETY: the DT's TIS region, at least TIS_SIZE bytes; this value is its only user.
    let mut tis = Tis::new(unsafe { TisMmio::new(r.base as usize) }, Timeouts::PTP);
    let (startup, id, tis) = match tis.ids() {
        Err(e) => (Startup::Failed(e.name()), 0, tis),
        Ok(i) => {
            let mut tpm = TpmCore::new(tis);
            let startup = match tpm.startup() {
                Ok(already) => Startup::Done { already },
                Err(tpm_core::Error::Rc(rc) | tpm_core::Error::Legacy(rc)) => Startup::Rc(rc),
                Err(tpm_core::Error::Transport(r) | tpm_core::Error::Malformed(r)) => {
                    Startup::Failed(r)
                }
                Err(tpm_core::Error::Argument(r)) => Startup::Failed(r),
            };
            let id = u64::from(i.did) << 16 | u64::from(i.vid);
            (startup, id, tpm.into_transport())
        }
    };
    TIS.call_once(|| spin::Mutex::new(tis));
    let part = TpmPartition::new(TPM_CRB.0, CrbPages(()), TisTpm(()))?;
    Some((part, startup, id))
}

/// `catena.tpm_bench_fw=N` on the kernel command line (`cargo xtask bench tpm`'s direct side):
/// N.
pub fn bench_calls(cmdline: &str) -> Option<u32> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("catena.tpm_bench_fw="))
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=100_000).contains(n))
}

/// [`tpm_service::BENCH_DIRECT_SMC`], answered here: PCR 16 is the debug PCR, which the normal
/// world can extend through the TPM service anyway.
pub use tpm_service::BENCH_DIRECT_SMC;

static PAIRS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static PAIR_CORE: spin::Once<spin::Mutex<TpmCore<SharedTis>>> = spin::Once::new();

/// Turns [`BENCH_DIRECT_SMC`] on when the command line asks for `catena.tpm_bench_pairs=`.
pub fn enable_pairs(cmdline: &str) {
    let on = cmdline
        .split_ascii_whitespace()
        .any(|w| w.starts_with("catena.tpm_bench_pairs="));
    PAIRS.store(
        on && TIS.get().is_some(),
        core::sync::atomic::Ordering::Relaxed,
    );
}

/// [`BENCH_DIRECT_SMC`]: the extend's counter ticks, `None` when not enabled or it failed.
/// The TIS's lock serialises it with the TPM partition.
pub fn bench_one_direct() -> Option<u64> {
    if !PAIRS.load(core::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let core = PAIR_CORE.call_once(|| spin::Mutex::new(TpmCore::new(SharedTis(()))));
    let mut tpm = core.lock();
    let s = crate::el3::counter();
    let r = tpm.pcr_extend_sha256(16, &[0x5a; 32]);
    let t = crate::el3::counter().wrapping_sub(s);
    r.ok().map(|_| t)
}

/// The benchmark's direct side: N PCR extends through the TIS from here, between the
/// instruction counter's markers; how many succeeded. Runs on the boot CPU before the normal
/// world exists, so the TPM partition (the TIS's owner) cannot run meanwhile.
pub fn bench_direct(p: &Platform, n: u32) -> u32 {
    let Some(r) = p
        .secure_compatible("tcg,tpm-tis-mmio")
        .or_else(|| p.compatible("tcg,tpm-tis-mmio"))
        .and_then(|t| t.regions.first())
        .filter(|r| r.size >= u64::from(TIS_SIZE))
    else {
        return 0;
    };
    // SAFETY: the DT's TIS region; its owner, the TPM partition, runs only on FF-A calls from
    // the normal world, which has not been entered yet: this is the only user meanwhile.
    let tis = unsafe { TisMmio::new(r.base as usize) };
    let mut tpm = TpmCore::new(Tis::new(tis, Timeouts::PTP));
    let mut ok = 0;
    arch::count_start();
    for _ in 0..n {
        if tpm.pcr_extend_sha256(16, &[0x5a; 32]).is_ok() {
            ok += 1;
        }
    }
    arch::count_end();
    ok
}
