//! The quote a verifier asks for: the attestation key (a primary key of the TPM's endorsement
//! hierarchy, `lib/tpm-core`), and TPM2_Quote over PCRs 0–11 (SHA-256) with the verifier's
//! nonce, exported as `evidence` events (`ak-pub`: TPM2B_PUBLIC, `quote-msg`: TPMS_ATTEST,
//! `quote-sig`: TPMT_SIGNATURE — the files `tpm2_checkquote` reads).
//!
//! The nonce comes from fw_cfg `opt/catena/nonce` (hex, 8 to 64 bytes): `cargo xtask` writes
//! a fresh one per run (`attest` uses the verifier's). Runs right after the measurement list
//! is exported, so the quoted PCR 10 is the exported list's.
//!
//! The AK's binding to the TPM (Keylime's registration): the EK's public area and certificate
//! are exported too (`ek-pub`, `ek-cert`); when fw_cfg carries a credential the verifier made
//! against that EK for the AK's name (`opt/catena/credential`), TPM2_ActivateCredential
//! recovers its secret (`credential-secret`), which only a TPM holding both keys can.

use crate::kapi;
use crate::tpm::{hex, with_tpm};
use alloc::string::String;
use alloc::vec::Vec;
use catena_event::Kind;

/// The fw_cfg file with the verifier's nonce.
pub const NONCE_FILE: &str = "opt/catena/nonce";
/// The fw_cfg file with a credential the verifier made (`tpm2_makecredential -o` format).
pub const CREDENTIAL_FILE: &str = "opt/catena/credential";
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

/// Exports evidence as `evidence name=... part=i of=n hex=...` events, 384 bytes each (what
/// `cargo xtask` reassembles into files).
pub(crate) fn export(name: &str, bytes: &[u8]) {
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

/// Makes and exports the quote, or says why not (`attest state=no-nonce|no-tpm|error`); the
/// same as a line of text.
pub fn quote() -> String {
    let files = crate::fwcfg::files(NONCE_FILE, 256);
    let Some((_, text)) = files.iter().find(|(f, _)| f.name == NONCE_FILE) else {
        kapi::emit(Kind::Attest, |w| w.str("state", "no-nonce"));
        return String::from("no nonce from a verifier (fw_cfg opt/catena/nonce): nothing quoted");
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
            return alloc::format!("the verifier's nonce is unusable: {why}");
        }
    };
    // A credential the verifier made for this TPM's EK and AK (registration), if given.
    let credential = crate::fwcfg::files(CREDENTIAL_FILE, 4096)
        .into_iter()
        .find(|(f, _)| f.name == CREDENTIAL_FILE)
        .map(|(_, r)| {
            r.map_err(|_| "unreadable")
                .and_then(|b| tpm_core::Credential::parse(&b).map_err(|_| "malformed"))
        });
    let made = with_tpm(|tpm| {
        let ak = tpm.create_ak()?;
        let activated = credential.as_ref().map(|c| match c {
            Ok(c) => tpm
                .activate_credential(ak.handle, tpm_core::EK_RSA_HANDLE, c)
                .map_err(|e| alloc::format!("{e}")),
            Err(why) => Err(String::from(*why)),
        });
        // The EK and its certificate, where the TPM's manufacturer put them (absent on a TPM
        // nobody manufactured: reported, not fatal).
        let ek = tpm.read_public(tpm_core::EK_RSA_HANDLE).ok();
        let ek_cert = tpm.nv_read_all(tpm_core::EK_RSA_CERT_INDEX, 4096).ok();
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
        Ok::<_, tpm_core::Error>((ak, q, late, ek, ek_cert, activated))
    });
    match made {
        None => {
            kapi::emit(Kind::Attest, |w| w.str("state", "no-tpm"));
            String::from("no TPM bound: nothing quoted")
        }
        Some(Err(e)) => {
            let why = alloc::format!("{e}");
            kapi::emit(Kind::Attest, |w| {
                w.str("state", "error").str("reason", &why)
            });
            alloc::format!("the quote failed: {why}")
        }
        Some(Ok((ak, q, late, ek, ek_cert, activated))) => {
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
            if let Some(ek) = &ek {
                export("ek-pub", ek);
            }
            if let Some(c) = &ek_cert {
                export("ek-cert", c);
            }
            let credential = match &activated {
                None => "none",
                Some(Ok(secret)) => {
                    export("credential-secret", secret);
                    "activated"
                }
                Some(Err(_)) => "refused",
            };
            kapi::emit(Kind::Attest, |w| {
                let w = w
                    .str("state", "quoted")
                    .str("pcrs", "sha256:0-11")
                    .str("nonce", &hex(&nonce))
                    .str(
                        "ek",
                        if ek.is_some() && ek_cert.is_some() {
                            "yes"
                        } else {
                            "no"
                        },
                    )
                    .str("credential", credential);
                match &activated {
                    Some(Err(why)) => w.str("reason", why),
                    _ => w,
                }
            });
            alloc::format!(
                "quoted PCRs 0-11 (sha256) with the verifier's nonce {}; EK {}; credential {credential}",
                hex(&nonce),
                if ek.is_some() && ek_cert.is_some() {
                    "and certificate exported"
                } else {
                    "absent"
                }
            )
        }
    }
}
