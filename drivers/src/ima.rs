//! The kernel's measurement list, IMA's way (`lib/tcglog` `ima`): `boot_aggregate` first
//! (PCRs 0–9 as the firmware left them), then the chain's milestones in the order they
//! happened — hyp installed and finalised, FF-A ready, TPM bound, variables ready, certificates
//! loaded — and every key `load_uefi_certs` adds (`ima-buf`, as IMA measures keys), each
//! extended into PCR 10 of every active bank. It starts at `late_sync`, once the TPM is bound
//! (IMA_INIT_LATE_SYNC, as in Linux); what happens before is queued, and measured then in
//! order. A verifier can so require "finalised before FF-A ready".

use crate::kapi;
use crate::tpm::with_tpm;
use alloc::string::String;
use alloc::vec::Vec;
use catena_event::Kind;
use spin::Mutex;
use tcglog::ima::{self, Entry};

struct Ima {
    active: bool,
    /// With a TPM: the banks to extend; without, the list is kept but nothing is extended
    /// (Linux's TPM-bypass).
    banks: Option<Vec<u16>>,
    entries: Vec<Entry>,
    queue: Vec<Entry>,
}

static IMA: Mutex<Ima> = Mutex::new(Ima {
    active: false,
    banks: None,
    entries: Vec::new(),
    queue: Vec::new(),
});

/// The events that are chain milestones (their text without the time is measured).
const MILESTONES: [&str; 5] = [
    "@event ffa state=ready",
    "@event ffa state=early-init",
    "@event tpm state=ready",
    "@event efivar state=ready",
    "@event certs result=ok",
];

/// Sees every event line the kernel prints; records the chain's milestones. Once the list is
/// active, a milestone extends PCR 10 through the TPM driver (and so through FF-A): none of
/// these events may be printed while the TPM's or the FF-A session's lock is held — each is
/// printed after its driver let go (all of them but `certs` come before the list starts).
pub fn observe(line: &str) {
    if !MILESTONES.iter().any(|m| line.starts_with(m)) {
        return;
    }
    let text = line.trim_end();
    let text = text.rsplit_once(" t=").map_or(text, |(head, _)| head);
    let text = text.strip_prefix("@event ").unwrap_or(text);
    add(Entry::buf("catena-chain", text.as_bytes()));
}

/// A milestone the kernel itself knows (the hyp's own events go to the UART from EL2).
pub fn milestone(text: &str) {
    add(Entry::buf("catena-chain", text.as_bytes()));
}

/// A program about to run (its path and bytes): an `ima-ng` entry, as IMA's bprm check
/// measures executables, before the first instruction of it runs.
pub fn program(path: &str, bytes: &[u8]) {
    add(Entry::ng(path, bytes));
}

/// A key added to `keyring` (its DER certificate), as IMA measures keys.
pub fn key(keyring: &str, der: &[u8]) {
    add(Entry::buf(keyring, der));
}

/// The list in IMA's binary format (what `evidence name=ima` exports).
pub fn encoded() -> Vec<u8> {
    ima::encode(&IMA.lock().entries)
}

fn add(e: Entry) {
    let mut g = IMA.lock();
    if g.active {
        let banks = g.banks.clone();
        extend(&banks, &e);
        g.entries.push(e);
    } else {
        g.queue.push(e);
    }
}

fn extend(banks: &Option<Vec<u16>>, e: &Entry) {
    let Some(banks) = banks else {
        return;
    };
    let digests: Vec<(u16, Vec<u8>)> = banks
        .iter()
        .filter_map(|a| e.digest(*a).map(|d| (*a, d)))
        .collect();
    let refs: Vec<(u16, &[u8])> = digests.iter().map(|(a, d)| (*a, d.as_slice())).collect();
    let r = with_tpm(|c| c.pcr_extend(ima::PCR as u8, &refs));
    if let Some(Err(err)) = r {
        log::error!("ima: extending PCR 10: {err}");
    }
}

/// Starts the list: boot_aggregate from the TPM's PCRs 0–9 (zero without a TPM), then the
/// queue, in order.
pub fn init(level: &str) {
    let state = with_tpm(|c| {
        let banks: Vec<u16> = c
            .banks()
            .map(|b| {
                b.algs()
                    .iter()
                    .copied()
                    .filter(|a| tcglog::alg::size(*a).is_some())
                    .collect()
            })
            .unwrap_or_default();
        let pcrs: Vec<Vec<u8>> = (0u8..10)
            .map(|p| {
                c.pcr_read(tpm_core::ALG_SHA256, p)
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_else(|_| alloc::vec![0xff; 32])
            })
            .collect();
        (banks, ima::boot_aggregate(&pcrs))
    });
    let (banks, aggregate) = match state {
        Some((b, a)) => (Some(b), a),
        None => (None, alloc::vec![0; 32]),
    };
    let mut g = IMA.lock();
    let first = Entry::ng_digest("boot_aggregate", &aggregate);
    extend(&banks, &first);
    g.entries.push(first);
    let queued = core::mem::take(&mut g.queue);
    for e in queued {
        extend(&banks, &e);
        g.entries.push(e);
    }
    g.banks = banks;
    g.active = true;
    let (n, tpm) = (g.entries.len(), g.banks.is_some());
    drop(g);
    kapi::emit(Kind::Ima, |w| {
        w.str("state", "ready")
            .str("level", level)
            .u64("entries", n as u64)
            .str("tpm", if tpm { "yes" } else { "bypass" })
    });
}

/// The measured text of a `catena-chain` ima-buf entry (its buf field), if it is one.
fn chain_text(e: &Entry) -> Option<&str> {
    match e.fields()?.as_slice() {
        [_, b"catena-chain\0", text, ..] => core::str::from_utf8(text).ok(),
        _ => None,
    }
}

/// The list so far in binary_runtime_measurements form.
pub fn list() -> Vec<u8> {
    ima::encode(&IMA.lock().entries)
}

/// Replays the list against the TPM's PCR 10 (SHA-256) and exports it (`evidence name=ima`).
pub fn report() {
    let (entries, tpm) = {
        let g = IMA.lock();
        if !g.active {
            return;
        }
        (g.entries.clone(), g.banks.is_some())
    };
    let bin = ima::encode(&entries);
    crate::attest::export("ima", &bin);
    let replayed = ima::replay(&entries, tcglog::alg::SHA256);
    let read = with_tpm(|c| c.pcr_read(tpm_core::ALG_SHA256, ima::PCR as u8).ok()).flatten();
    let result = match (tpm, replayed, read) {
        (false, _, _) => "bypass",
        (true, Some(r), Some(d)) if r == d.as_bytes() => "match",
        _ => "mismatch",
    };
    // The milestones in the order measured: "hyp:installed,hyp:finalised,ffa:ready,...".
    let chain: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let text = chain_text(e)?;
            let mut w = text.split(' ');
            let kind = w.next()?;
            let state = w.next()?.split_once('=')?.1;
            Some(alloc::format!("{kind}:{state}"))
        })
        .collect();
    kapi::emit(Kind::Ima, |w| {
        w.u64("entries", entries.len() as u64)
            .u64("bytes", bin.len() as u64)
            .str("chain", &chain.join(","))
            .str("pcr10", result)
    });
}
