//! The quote a verifier asks for: the attestation key (a primary key of the TPM's endorsement
//! hierarchy, `lib/tpm-core`), and TPM2_Quote over PCRs 0–11 (SHA-256) with the verifier's
//! nonce, exported as `evidence` events (`ak-pub`: TPM2B_PUBLIC, `quote-msg`: TPMS_ATTEST,
//! `quote-sig`: TPMT_SIGNATURE — the files `tpm2_checkquote` reads).
//!
//! The nonce comes from fw_cfg `opt/catena/nonce` (hex, 8 to 64 bytes): `cargo xtask` writes
//! a fresh one per run (`attest` uses the verifier's). Runs right after the measurement list
//! is exported, so the quoted PCR 10 is the exported list's.

use crate::kapi;
use crate::tpm::{hex, with_tpm};
use alloc::string::String;
use alloc::vec::Vec;
use catena_event::Kind;

/// The fw_cfg file with the verifier's nonce.
pub const NONCE_FILE: &str = "opt/catena/nonce";
/// PCRs 0..=11 of the SHA-256 bank: the firmware's (0–9), the measurement list's (10), and 11.
pub const QUOTED_PCRS: u32 = 0x0fff;

/// Parses the nonce file: hex digits (a trailing newline or NUL allowed), 8 to 64 bytes.
pub fn parse_nonce(text: &[u8]) -> Result<Vec<u8>, &'static str> {
    let t = core::str::from_utf8(text).map_err(|_| "not text")?;
    let t = t.trim_end_matches(['\n', '\0']).trim();
    if t.len() % 2 != 0 || !(16..=128).contains(&t.len()) {
        return Err("not 8 to 64 bytes of hex");
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).map_err(|_| "not hex"))
        .collect()
}

fn export(name: &str, bytes: &[u8]) {
    let parts = bytes.len().div_ceil(384).max(1);
    for (i, chunk) in bytes.chunks(384).enumerate() {
        kapi::emit(Kind::Evidence, |w| {
            w.str("name", name)
                .u64("part", i as u64)
                .u64("of", parts as u64)
                .str("hex", &hex(chunk))
        });
    }
}

/// Makes and exports the quote, or says why not (`attest state=no-nonce|no-tpm|error`).
pub fn quote() {
    let files = crate::fwcfg::files(NONCE_FILE, 256);
    let Some((_, text)) = files.iter().find(|(f, _)| f.name == NONCE_FILE) else {
        kapi::emit(Kind::Attest, |w| w.str("state", "no-nonce"));
        return;
    };
    let nonce = match text
        .as_ref()
        .map_err(String::as_str)
        .and_then(|t| parse_nonce(t))
    {
        Ok(n) => n,
        Err(why) => {
            kapi::emit(Kind::Attest, |w| {
                w.str("state", "bad-nonce").str("reason", why)
            });
            return;
        }
    };
    let made = with_tpm(|tpm| {
        let ak = tpm.create_ak()?;
        let q = tpm.quote(ak.handle, &nonce, QUOTED_PCRS);
        // The AK is made again from the same seed next time: no need to keep a handle.
        let flushed = tpm.flush(ak.handle);
        let q = q?;
        flushed?;
        // PCRs 10 and 11 as quoted (0-9 were reported with the event log's replay): the
        // values `tpm2_checkquote` recomputes the quote's digest from.
        let mut late = Vec::new();
        for p in [10u8, 11] {
            late.push((p, tpm.pcr_read(tpm_core::ALG_SHA256, p)?));
        }
        Ok::<_, tpm_core::Error>((ak, q, late))
    });
    match made {
        None => kapi::emit(Kind::Attest, |w| w.str("state", "no-tpm")),
        Some(Err(e)) => kapi::emit(Kind::Attest, |w| {
            w.str("state", "error")
                .str("reason", &alloc::format!("{e}"))
        }),
        Some(Ok((ak, q, late))) => {
            for (p, d) in late {
                kapi::emit(Kind::TpmPcr, |w| {
                    w.u64("index", u64::from(p))
                        .str("bank", "sha256")
                        .str("value", &hex(d.as_bytes()))
                });
            }
            export("ak-pub", &ak.public);
            export("quote-msg", &q.attest);
            export("quote-sig", &q.signature);
            kapi::emit(Kind::Attest, |w| {
                w.str("state", "quoted")
                    .str("pcrs", "sha256:0-11")
                    .str("nonce", &hex(&nonce))
            });
        }
    }
}
