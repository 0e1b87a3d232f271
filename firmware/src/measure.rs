//! Measured boot: what the firmware measures before it hands off, extended into the TPM
//! through the TIS directly and recorded in a TCG crypto-agile event log (`lib/tcglog`) that
//! goes to normal-world memory, named on the TPM's DT node as Linux reads it
//! (`linux,sml-base`/`linux,sml-size`). The PCR map is in docs/measured-boot.md.

use crate::platform::EVENT_LOG;
use alloc::vec::Vec;
use spin::Mutex;
use tcglog::{Hasher, Writer, ev};

struct Measuring {
    log: Writer,
    tpm: tpm_core::Tpm<crate::tpm::SharedTis>,
    /// The first extend that failed (the log still records every event; a verifier will see
    /// the PCRs disagree).
    failed: Option<&'static str>,
    events: u32,
}

static M: Mutex<Option<Measuring>> = Mutex::new(None);

/// Starts the log for the TPM's active banks (every one `lib/tcglog` can compute); false
/// without a TPM or with a bank it cannot.
pub fn init() -> bool {
    let Some(mut tpm) = crate::tpm::core() else {
        return false;
    };
    let Ok(banks) = tpm.banks() else {
        return false;
    };
    let Some(log) = Writer::new(banks.algs()) else {
        crate::fwlog!("measured boot: a PCR bank this firmware cannot hash");
        return false;
    };
    *M.lock() = Some(Measuring {
        log,
        tpm,
        failed: None,
        events: 0,
    });
    true
}

/// Whether measured boot is on (a TPM answered and its banks are ones the log can hash).
pub fn active() -> bool {
    M.lock().is_some()
}

/// Measures `measured` into `pcr` (every bank) with event `typ` and `data`, logs it.
pub fn event(pcr: u8, typ: u32, measured: &[u8], data: &[u8]) {
    let mut g = M.lock();
    let Some(m) = g.as_mut() else {
        return;
    };
    let digests = m.log.append(u32::from(pcr), typ, measured, data);
    m.extend(pcr, &digests);
}

/// A hasher for the log's banks, for a payload measured a piece at a time (one too large to
/// copy into this firmware's heap: a kernel Image, an initramfs); `None` when measured boot
/// is off, so nothing need be read.
pub fn hasher() -> Option<Hasher> {
    M.lock().as_ref().and_then(|m| Hasher::new(m.log.banks()))
}

/// Logs and extends an event whose digests a [`hasher`] computed.
pub fn event_hashed(pcr: u8, typ: u32, h: Hasher, data: &[u8]) {
    let mut g = M.lock();
    let Some(m) = g.as_mut() else {
        return;
    };
    let digests = h.finish();
    m.log.append_digests(u32::from(pcr), typ, &digests, data);
    m.extend(pcr, &digests);
}

impl Measuring {
    fn extend(&mut self, pcr: u8, digests: &[(u16, Vec<u8>)]) {
        let refs: Vec<(u16, &[u8])> = digests.iter().map(|(a, d)| (*a, d.as_slice())).collect();
        if let Err(e) = self.tpm.pcr_extend(pcr, &refs) {
            crate::fwlog!("measured boot: extending PCR {pcr}: {e}");
            self.failed.get_or_insert("pcr-extend");
        }
        self.events += 1;
    }
}

/// `UEFI_VARIABLE_DATA` (PFP §10.2.6): VariableName (the vendor GUID), the name's length in
/// characters, the data's length, the UTF-16 name without its NUL, the data.
pub fn variable(guid: &[u8; 16], name: &[u8], data: &[u8]) -> Vec<u8> {
    let chars = name.strip_suffix(&[0, 0]).unwrap_or(name);
    let mut v = Vec::with_capacity(32 + chars.len() + data.len());
    v.extend_from_slice(guid);
    v.extend_from_slice(&((chars.len() / 2) as u64).to_le_bytes());
    v.extend_from_slice(&(data.len() as u64).to_le_bytes());
    v.extend_from_slice(chars);
    v.extend_from_slice(data);
    v
}

/// What finishing did.
pub struct Finished {
    /// Events logged (after the header).
    pub events: u32,
    /// Bytes of log.
    pub bytes: usize,
    /// The first extend that failed.
    pub failed: Option<&'static str>,
}

/// The separators (PCR 0–7, EV_SEPARATOR with 0x00000000), then the log copied to its
/// normal-world region (the rest zeroed). `None` when nothing was measured or the log does
/// not fit.
pub fn finish() -> Option<Finished> {
    for pcr in 0..8 {
        event(pcr, ev::SEPARATOR, &[0; 4], &[0; 4]);
    }
    let g = M.lock();
    let m = g.as_ref()?;
    let b = m.log.bytes();
    if b.len() as u64 > EVENT_LOG.1 {
        crate::fwlog!(
            "measured boot: the log ({} bytes) outgrew its region",
            b.len()
        );
        return None;
    }
    let mut region = alloc::vec![0u8; EVENT_LOG.1 as usize];
    region[..b.len()].copy_from_slice(b);
    // SAFETY: EVENT_LOG is normal-world RAM this firmware reserves in the DT for the log;
    // the normal world has not started, so nothing else touches it.
    unsafe { arch::write_shared(EVENT_LOG.0 as usize, &region) };
    Some(Finished {
        events: m.events,
        bytes: b.len(),
        failed: m.failed,
    })
}
