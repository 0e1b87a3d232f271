//! The TPM: one core (`lib/tpm-core`) behind whichever transport bound, and the consumers'
//! entry point ([`with_tpm`]).
//!
//! | driver        | bus      | binds to                                      |
//! |---------------|----------|-----------------------------------------------|
//! | `tpm-crb`     | platform | `catena,tpm-crb-ffa` (the CRB pages the firmware reserves) |
//! | `tpm-crb-ffa` | ffa      | the DEN0138 UUID; defers until `tpm-crb` saw the CRB |
//! | `tpm-tis`     | platform | `tcg,tpm-tis-mmio` left to the normal world (no secure firmware) |
//!
//! The TPM exists only once the FF-A core has probed (after the hyp is finalised): a consumer
//! that runs before that finds none — Linux's "ima: No TPM chip found, activating
//! TPM-bypass!" before IMA moved to late_initcall_sync.

pub mod crb_ffa;
pub mod tis;

use crate::kapi;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use catena_event::Kind;
use spin::Mutex;
use tpm_core::{Tpm, Transport};

/// Whichever transport bound, owned by the core.
pub struct DynTransport(Box<dyn Transport + Send>);

impl Transport for DynTransport {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        self.0.transmit(cmd, rsp)
    }
}

/// The bound TPM's core.
pub type Chip = Tpm<DynTransport>;

static CHIP: Mutex<Option<Chip>> = Mutex::new(None);

/// Runs `f` with the TPM, if one is bound.
pub fn with_tpm<R>(f: impl FnOnce(&mut Chip) -> R) -> Option<R> {
    CHIP.lock().as_mut().map(f)
}

/// Brings a transport up (`via`: how it reaches the TPM — `req2`/`req` for CRB over FF-A,
/// `mmio` for the TIS) as the TPM: Startup (TPM_RC_INITIALIZE = the firmware already did),
/// SelfTest, identity and banks; reports `tpm state=ready` or `state=error`.
pub(crate) fn register(
    t: Box<dyn Transport + Send>,
    transport: &'static str,
    via: &str,
    dev: &str,
) -> Result<(), String> {
    let mut tpm = Tpm::new(DynTransport(t));
    let up = (|| {
        let already = tpm.startup().map_err(|e| format!("startup: {e}"))?;
        tpm.self_test().map_err(|e| format!("selftest: {e}"))?;
        let id = tpm.identity().map_err(|e| format!("identity: {e}"))?;
        let banks = tpm.banks().map_err(|e| format!("banks: {e}"))?;
        Ok::<_, String>((already, id, banks))
    })();
    match up {
        Ok((already, id, banks)) => {
            let manufacturer: String = id
                .manufacturer
                .iter()
                .filter(|b| b.is_ascii_graphic())
                .map(|&b| b as char)
                .collect();
            let names: alloc::vec::Vec<&str> = banks
                .algs()
                .iter()
                .map(|&a| tpm_core::alg_name(a))
                .collect();
            kapi::emit(Kind::Tpm, |w| {
                w.str("state", "ready")
                    .str("transport", transport)
                    .str("via", via)
                    .str("dev", dev)
                    .str("manufacturer", &manufacturer)
                    .str("fw", &format!("{:x}.{:x}", id.firmware.0, id.firmware.1))
                    .str("banks", &names.join(","))
                    .str("startup", if already { "already" } else { "clear" })
            });
            *CHIP.lock() = Some(tpm);
            Ok(())
        }
        Err(reason) => {
            log::error!("tpm: {dev}: {reason}");
            kapi::emit(Kind::Tpm, |w| {
                w.str("state", "error")
                    .str("transport", transport)
                    .str("dev", dev)
                    .str("reason", &reason)
            });
            Err(reason)
        }
    }
}

pub(crate) use attest::wire::hex;

/// Device properties carrying the DT's `linux,sml-base` / `linux,sml-size`.
pub const SML_BASE: &str = "linux,sml-base";
/// See [`SML_BASE`].
pub const SML_SIZE: &str = "linux,sml-size";

/// The firmware's event log (base, size), from the TPM node.
pub(crate) static EVENT_LOG: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// Largest log read.
const LOG_MAX: u64 = 1 << 20;

/// The firmware's event log as handed over (its bytes, to the zero padding), if there is one.
pub fn event_log() -> Option<alloc::vec::Vec<u8>> {
    let (base, size) = (*EVENT_LOG.lock())?;
    if size > LOG_MAX {
        return None;
    }
    let mut b = alloc::vec![0u8; size as usize];
    arch::clean_to_poc(base, size);
    // SAFETY: the region the firmware reserved for the log and named on the TPM node: normal
    // RAM the kernel maps but does not allocate (reserved, mappable); it was just cleaned.
    unsafe {
        arch::invalidate(base, size);
        arch::read_shared(base as usize, &mut b);
    }
    Some(b)
}

/// The firmware's log as exported: its events, without the zero padding after them.
pub fn event_log_exported() -> Option<alloc::vec::Vec<u8>> {
    let bytes = event_log()?;
    let log = tcglog::parse(&bytes).ok()?;
    let end = log_end(&bytes, &log);
    Some(bytes[..end].to_vec())
}

/// The measured-boot check: the firmware's log parsed (every size checked), replayed in
/// SHA-256, and compared with the TPM's PCRs 0–9; reported as `eventlog state=ok ...
/// replay=match` or which PCR differs. Also exports the log (`evidence` events) for the
/// host's tools.
pub fn eventlog_check() {
    let Some(bytes) = event_log() else {
        kapi::emit(Kind::Eventlog, |w| w.str("state", "absent"));
        return;
    };
    let log = match tcglog::parse(&bytes) {
        Ok(l) => l,
        Err(tcglog::Malformed(why)) => {
            kapi::emit(Kind::Eventlog, |w| {
                w.str("state", "malformed").str("reason", why)
            });
            return;
        }
    };
    let end = log_end(&bytes, &log);
    crate::attest::export("eventlog", &bytes[..end]);
    let banks: alloc::vec::Vec<&str> = log
        .banks
        .iter()
        .map(|(a, _)| tcglog::alg::name(*a))
        .collect();
    let Some(replayed) = log.replay(tcglog::alg::SHA256) else {
        kapi::emit(Kind::Eventlog, |w| w.str("state", "no-sha256-bank"));
        return;
    };
    // The TPM's PCRs 0-9 as read (reported, so the host can check its own replay of the
    // exported log against them), and the first that differs from this replay.
    let mismatch = with_tpm(|c| {
        let mut first = None;
        for p in 0u8..10 {
            let read = c.pcr_read(tpm_core::ALG_SHA256, p);
            if let Ok(d) = &read {
                kapi::emit(Kind::TpmPcr, |w| {
                    w.u64("index", u64::from(p))
                        .str("bank", "sha256")
                        .str("value", &hex(d.as_bytes()))
                });
            }
            let same = read.is_ok_and(|d| d.as_bytes() == replayed[usize::from(p)].as_slice());
            if !same && first.is_none() {
                first = Some(p);
            }
        }
        first
    });
    kapi::emit(Kind::Eventlog, |w| {
        let w = w
            .str("state", "ok")
            .u64("events", log.events.len() as u64)
            .u64("bytes", end as u64)
            .str("banks", &banks.join(","));
        match mismatch {
            None => w.str("replay", "no-tpm"),
            Some(None) => w.str("replay", "match").str("pcrs", "0-9"),
            Some(Some(p)) => w.str("replay", "mismatch").u64("pcr", u64::from(p)),
        }
    });
}

/// Where the log's events end in `bytes` (the zero padding after).
fn log_end(bytes: &[u8], log: &tcglog::Log<'_>) -> usize {
    log.events
        .last()
        .map(|e| e.data.as_ptr() as usize + e.data.len() - bytes.as_ptr() as usize)
        .unwrap_or(bytes.len())
}

/// The debug PCR (PC Client PFP: PCR 16 is for debug, resettable, not part of the boot chain).
pub const SELFTEST_PCR: u8 = 16;

/// The TPM consumer of issue 10: extend the debug PCR with SHA-256("catena tpm_selftest") and
/// read it back; the value must be SHA-256(old || digest), computed here. `level` is where it
/// ran. Without a TPM it reports `result=no-tpm` and returns `Ok` (the consumer goes on
/// without, as IMA's TPM-bypass did).
pub fn selftest(level: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let r = with_tpm(|c| {
        let digest: [u8; 32] = Sha256::digest(b"catena tpm_selftest").into();
        let alg = tpm_core::ALG_SHA256;
        let old = c
            .pcr_read(alg, SELFTEST_PCR)
            .map_err(|e| format!("pcr-read: {e}"))?;
        c.pcr_extend_sha256(SELFTEST_PCR, &digest)
            .map_err(|e| format!("pcr-extend: {e}"))?;
        let new = c
            .pcr_read(alg, SELFTEST_PCR)
            .map_err(|e| format!("pcr-read: {e}"))?;
        let mut h = Sha256::new();
        h.update(old.as_bytes());
        h.update(digest);
        let want = h.finalize();
        let ok = new.as_bytes() == &want[..];
        kapi::emit(Kind::TpmPcr, |w| {
            w.u64("index", u64::from(SELFTEST_PCR))
                .str("bank", "sha256")
                .str("value", &hex(new.as_bytes()))
                .str("check", if ok { "ok" } else { "mismatch" })
        });
        if ok {
            Ok(())
        } else {
            Err(String::from("pcr read-back is not SHA-256(old || digest)"))
        }
    });
    let result = match &r {
        None => "no-tpm",
        Some(Ok(())) => "ok",
        Some(Err(_)) => "fail",
    };
    if r.is_none() {
        log::warn!("tpm_selftest at {level}: no TPM found, going on without (TPM-bypass)");
    }
    kapi::emit(Kind::TpmConsumer, |w| {
        w.str("name", "tpm_selftest")
            .str("level", level)
            .str("result", result)
    });
    r.unwrap_or(Ok(()))
}
