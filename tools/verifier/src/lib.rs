//! Catena's attestation verifier: from a quote and two logs to a verdict that names what
//! differs.
//!
//! 1. The quote (`lib/attest`): signed by the AK, over this verifier's nonce, PCRs 0-11 of
//!    the SHA-256 bank.
//! 2. The firmware's TCG event log and the kernel's measurement list (IMA's binary format)
//!    are parsed (every size checked, `lib/tcglog`) and replayed; PCRs 0-9 from the log, 10
//!    from the list, 11 unused (zero): their digest must be the quote's.
//! 3. Every event against a reference or a policy: the firmware image, the boot loader, the
//!    kernel Image against digests of the build; the command line, the Secure Boot state and
//!    the chain's order (the hyp finalised before FF-A came up) against the policy; every
//!    configuration event's digest against its own data.
//!
//! One [`Check`] per event or rule, with expected and actual values; `trusted` only when all
//! pass. Trust in the AK itself (credential activation against the EK) is not checked here
//! yet: `docs/measured-boot.md` says so.

use anyhow::Result;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tcglog::{alg, ev};

/// What the verifier knows is good.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// SHA-256 of `firmware.bin` (PCR 0's platform firmware blob).
    pub firmware: Option<[u8; 32]>,
    /// SHA-256 of the kernel Image (PCR 8, when the firmware loaded the kernel).
    pub kernel: Option<[u8; 32]>,
    /// SHA-256 of the BL33 (U-Boot), when the firmware ran one.
    pub bl33: Option<[u8; 32]>,
    /// SHA-256 of the initramfs (PCR 9), when the firmware loaded one.
    pub initrd: Option<[u8; 32]>,
    /// The programs the kernel may run (path, SHA-256): each `ima-ng` entry of the measurement
    /// list (a program measured before it ran) must be one of them.
    pub programs: Vec<(String, [u8; 32])>,
    /// Command lines the policy allows (PCR 1).
    pub cmdlines: Vec<String>,
    /// The policy requires Secure Boot on (PCR 7's SecureBoot variable = 1).
    pub require_secure_boot: bool,
    /// The Secure Boot variables as enrolled (name, contents: the EFI_SIGNATURE_LISTs; empty
    /// when not set), when the verifier knows them; each PCR 7 variable must match.
    pub secure_boot_vars: Option<Vec<(String, Vec<u8>)>>,
    /// The CA EK certificates must chain to (DER; the root first, then intermediates).
    pub ek_ca: Vec<Vec<u8>>,
    /// The secret of the credential this verifier made for the EK and the AK (registration):
    /// the guest must return it.
    pub credential_secret: Option<Vec<u8>>,
}

/// The evidence, as the guest exported it.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The firmware's TCG crypto-agile log.
    pub eventlog: Vec<u8>,
    /// The kernel's measurement list (binary_runtime_measurements).
    pub ima: Vec<u8>,
    /// TPM2B_PUBLIC of the AK.
    pub ak_pub: Vec<u8>,
    /// TPMS_ATTEST.
    pub quote_msg: Vec<u8>,
    /// TPMT_SIGNATURE.
    pub quote_sig: Vec<u8>,
    /// TPM2B_PUBLIC of the EK.
    pub ek_pub: Vec<u8>,
    /// The EK certificate (DER), from the TPM's NV.
    pub ek_cert: Vec<u8>,
    /// What TPM2_ActivateCredential returned.
    pub credential_secret: Vec<u8>,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked ("PCR8 EV_COMPACT_HASH linux").
    pub what: String,
    /// What it should be.
    pub expected: String,
    /// What the evidence says.
    pub actual: String,
    /// Whether they agree.
    pub ok: bool,
}

/// The outcome.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// Trusted only when every check passed (and there were some).
    pub fn trusted(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn push(
        &mut self,
        what: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
        ok: bool,
    ) {
        self.checks.push(Check {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
            ok,
        });
    }

    /// One line per check, then the verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .iter()
            .map(|c| {
                format!(
                    "{} {}: expected {}, actual {}",
                    if c.ok { "ok      " } else { "MISMATCH" },
                    c.what,
                    c.expected,
                    c.actual
                )
            })
            .collect();
        let bad: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect();
        out.push(if self.trusted() {
            format!("verdict: trusted ({} checks)", self.checks.len())
        } else {
            format!("verdict: untrusted: {}", bad.join("; "))
        });
        out
    }

    /// The JSON report.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "verdict": if self.trusted() { "trusted" } else { "untrusted" },
            "checks": self.checks.iter().map(|c| json!({
                "what": c.what,
                "expected": c.expected,
                "actual": c.actual,
                "ok": c.ok,
            })).collect::<Vec<_>>(),
        })
    }
}

use attest::wire::hex;

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn event_name(typ: u32) -> String {
    match typ {
        ev::POST_CODE => "EV_POST_CODE".into(),
        ev::SEPARATOR => "EV_SEPARATOR".into(),
        ev::S_CRTM_VERSION => "EV_S_CRTM_VERSION".into(),
        ev::PLATFORM_CONFIG_FLAGS => "EV_PLATFORM_CONFIG_FLAGS".into(),
        ev::TABLE_OF_DEVICES => "EV_TABLE_OF_DEVICES".into(),
        ev::COMPACT_HASH => "EV_COMPACT_HASH".into(),
        ev::EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG".into(),
        ev::EFI_PLATFORM_FIRMWARE_BLOB2 => "EV_EFI_PLATFORM_FIRMWARE_BLOB2".into(),
        t => format!("event type {t:#x}"),
    }
}

/// Text of event data, as far as it is printable.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data.strip_suffix(&[0]).unwrap_or(data)).into_owned()
}

/// UEFI_VARIABLE_DATA (TCG PC Client PFP §10.4.1): the variable's name and data.
fn uefi_variable(data: &[u8]) -> Option<(String, &[u8])> {
    let name_len = usize::try_from(u64::from_le_bytes(data.get(16..24)?.try_into().ok()?)).ok()?;
    let data_len = usize::try_from(u64::from_le_bytes(data.get(24..32)?.try_into().ok()?)).ok()?;
    let name_end = 32usize.checked_add(name_len.checked_mul(2)?)?;
    let units: Vec<u16> = data
        .get(32..name_end)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let value = data.get(name_end..name_end.checked_add(data_len)?)?;
    Some((String::from_utf16(&units).ok()?, value))
}

/// The verdict on `e` for `nonce` against `r`.
pub fn verify(e: &Evidence, nonce: &[u8], r: &Reference) -> Verdict {
    let mut v = Verdict::default();
    let quote = attest::check_quote(&e.ak_pub, &e.quote_msg, &e.quote_sig, nonce);
    match &quote {
        Ok(q) => v.push(
            "quote",
            format!("signed by the AK over nonce {}", hex(nonce)),
            format!(
                "signed, TPM clock {} ms, reset count {}",
                q.clock, q.reset_count
            ),
            true,
        ),
        Err(err) => v.push(
            "quote",
            format!("signed by the AK over nonce {}", hex(nonce)),
            err.to_string(),
            false,
        ),
    }
    if let Ok(q) = &quote {
        v.push(
            "quote PCR selection",
            "sha256:0-11",
            format!("sha256 mask {:#x}", q.pcrs),
            q.pcrs == 0x0fff,
        );
    }
    check_ek(&mut v, e, r);
    let log = match tcglog::parse(&e.eventlog) {
        Ok(l) => Some(l),
        Err(tcglog::Malformed(why)) => {
            v.push(
                "firmware event log",
                "a TCG crypto-agile log",
                format!("malformed: {why}"),
                false,
            );
            None
        }
    };
    let list = match tcglog::ima::parse(&e.ima) {
        Ok(l) => Some(l),
        Err(tcglog::Malformed(why)) => {
            v.push(
                "measurement list",
                "IMA binary measurements",
                format!("malformed: {why}"),
                false,
            );
            None
        }
    };
    let (Some(log), Some(list)) = (log, list) else {
        return v;
    };
    // Replay: PCRs 0-9 from the firmware's log, 10 from the list, 11 untouched.
    let replayed = log.replay(alg::SHA256).unwrap_or_default();
    let mut pcrs: Vec<[u8; 32]> = (0..12)
        .map(|i| {
            replayed
                .get(i)
                .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
                .unwrap_or([0; 32])
        })
        .collect();
    if let Some(p10) = tcglog::ima::replay(&list, alg::SHA256)
        .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
    {
        pcrs[10] = p10;
    }
    if replayed.iter().skip(10).any(|p| p.iter().any(|b| *b != 0)) {
        v.push(
            "firmware event log",
            "PCRs 0-9 only",
            "events in PCR 10 or above",
            false,
        );
    }
    if let Ok(q) = &quote {
        let d = attest::pcr_digest(&pcrs);
        v.push(
            "PCRs 0-11 replayed from both logs",
            format!("the quoted digest {}", hex(&q.pcr_digest)),
            hex(&d),
            q.pcr_digest == d,
        );
    }
    check_firmware_events(&mut v, &log, r);
    check_list(&mut v, &list, &pcrs, &r.programs);
    v
}

/// Registration's check, before a credential is made for an EK: its certificate chains to
/// the CA and carries its key. `Err` names what failed.
pub fn registration(ek_pub: &[u8], ek_cert: &[u8], ek_ca: &[Vec<u8>]) -> Result<(), String> {
    let mut v = Verdict::default();
    let e = Evidence {
        ek_pub: ek_pub.to_vec(),
        ek_cert: ek_cert.to_vec(),
        ..Evidence::default()
    };
    let r = Reference {
        ek_ca: ek_ca.to_vec(),
        credential_secret: Some(Vec::new()),
        ..Reference::default()
    };
    check_ek(&mut v, &e, &r);
    let bad: Vec<String> = v
        .checks
        .iter()
        .filter(|c| !c.ok && !c.what.starts_with("AK bound"))
        .map(|c| format!("{}: {}", c.what, c.actual))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// The AK's binding: the EK certificate chains to the CA, its key is the TPM's EK, and the
/// credential made for that EK and the AK's name came back activated.
fn check_ek(v: &mut Verdict, e: &Evidence, r: &Reference) {
    use der::Decode;
    use x509_cert::Certificate;
    let ca: Vec<Certificate> = r
        .ek_ca
        .iter()
        .filter_map(|d| Certificate::from_der(d).ok())
        .collect();
    let cert = Certificate::from_der(&e.ek_cert);
    let chained = match &cert {
        Err(_) => Err("the EK certificate does not parse".to_string()),
        Ok(_) if ca.is_empty() => Err("no CA to check it against".to_string()),
        Ok(c) => {
            // Leaf -> the last intermediate -> ... -> the root, each signature checked.
            let mut cur = c;
            let mut ok = true;
            for issuer in ca.iter().rev() {
                if !uefi_vars::auth::issued_by(cur, issuer) {
                    ok = false;
                    break;
                }
                cur = issuer;
            }
            if ok {
                Ok(format!(
                    "issued by {}, chained to the root",
                    c.tbs_certificate.issuer
                ))
            } else {
                Err(format!(
                    "issued by {}: does not chain to the CA",
                    c.tbs_certificate.issuer
                ))
            }
        }
    };
    match chained {
        Ok(a) => v.push(
            "EK certificate",
            "signed by the TPM vendor's CA (swtpm local CA)",
            a,
            true,
        ),
        Err(a) => v.push(
            "EK certificate",
            "signed by the TPM vendor's CA (swtpm local CA)",
            a,
            false,
        ),
    }
    let cert_n = cert
        .ok()
        .and_then(|c| uefi_vars::auth::rsa_key(&c).ok())
        .map(|k| rsa::traits::PublicKeyParts::n(&k).to_bytes_be());
    let ek_n = attest::rsa_modulus(&e.ek_pub).ok();
    v.push(
        "EK public key",
        "the certificate's key",
        match (&cert_n, &ek_n) {
            (Some(a), Some(b)) if a == b => "the same RSA-2048 modulus".to_string(),
            (_, None) => "no EK public area".to_string(),
            _ => "another key".to_string(),
        },
        cert_n.is_some() && cert_n == ek_n,
    );
    match &r.credential_secret {
        Some(s) => v.push(
            "AK bound to the EK (credential activation)",
            format!("the secret made for the EK and the AK's name: {}", hex(s)),
            if e.credential_secret.is_empty() {
                "none returned".into()
            } else {
                hex(&e.credential_secret)
            },
            *s == e.credential_secret,
        ),
        None => v.push(
            "AK bound to the EK (credential activation)",
            "a credential made and activated (registration)",
            "not attempted",
            false,
        ),
    }
}

fn check_firmware_events(v: &mut Verdict, log: &tcglog::Log<'_>, r: &Reference) {
    let mut kernel_seen = false;
    let mut bl33_seen = false;
    for (n, ev) in log.events.iter().enumerate() {
        let Some(d) = ev
            .digests
            .iter()
            .find(|(a, _)| *a == alg::SHA256)
            .map(|(_, d)| *d)
        else {
            v.push(format!("event {n}"), "a SHA-256 digest", "none", false);
            continue;
        };
        let what = format!("PCR{} {}", ev.pcr, event_name(ev.typ));
        let own = sha256(ev.data);
        match (ev.pcr, ev.typ) {
            (0, ev::S_CRTM_VERSION) => {
                let t = text(ev.data);
                v.push(
                    format!("{what} \"{t}\""),
                    "\"Catena firmware ...\", digest of the data",
                    format!("digest {}", hex(d)),
                    t.starts_with("Catena firmware") && d == own,
                );
            }
            (0, ev::EFI_PLATFORM_FIRMWARE_BLOB2) => {
                reference(v, &what, "firmware.bin", r.firmware, d)
            }
            (0, ev::POST_CODE) if ev.data == b"BL_33" => {
                bl33_seen = true;
                reference(
                    v,
                    &format!("{what} BL_33"),
                    "the boot loader (u-boot.bin)",
                    r.bl33,
                    d,
                );
            }
            (9, ev::COMPACT_HASH) if ev.data == b"initrd" => {
                reference(v, &format!("{what} initrd"), "the initramfs", r.initrd, d);
            }
            (8, ev::COMPACT_HASH) if ev.data == b"linux" => {
                kernel_seen = true;
                reference(
                    v,
                    &format!("{what} linux (kernel)"),
                    "the kernel Image",
                    r.kernel,
                    d,
                );
            }
            (1, ev::PLATFORM_CONFIG_FLAGS) => {
                let t = text(ev.data);
                let allowed = r.cmdlines.contains(&t);
                v.push(
                    format!("{what} (command line)"),
                    format!("one of {:?}, digest of the data", r.cmdlines),
                    format!(
                        "{t:?}, digest {}",
                        if d == own {
                            "of the data"
                        } else {
                            "of something else"
                        }
                    ),
                    allowed && d == own,
                );
            }
            (1, ev::TABLE_OF_DEVICES) => v.push(
                format!("{what} (DT handed over)"),
                "recorded (the DT itself is not in the log: digest only)",
                format!("digest {}", hex(d)),
                true,
            ),
            (7, ev::EFI_VARIABLE_DRIVER_CONFIG) => match uefi_variable(ev.data) {
                Some((name, value)) => {
                    let mut ok = d == own;
                    let mut expected = String::from("digest of the data");
                    if name == "SecureBoot" {
                        let on = value.first() == Some(&1);
                        if r.require_secure_boot {
                            expected.push_str(", Secure Boot on");
                            ok &= on;
                        }
                        v.push(
                            format!("{what} SecureBoot"),
                            expected,
                            format!(
                                "{}, digest {}",
                                if on { "on" } else { "off" },
                                if d == own {
                                    "of the data"
                                } else {
                                    "of something else"
                                }
                            ),
                            ok,
                        );
                    } else {
                        // Against the reference contents (PK, KEK, db, dbx as enrolled), when
                        // the verifier has them: a changed dbx is named here.
                        let mut actual =
                            format!("{} bytes, SHA-256 {}", value.len(), hex(&sha256(value)));
                        if let Some(vars) = &r.secure_boot_vars {
                            match vars.iter().find(|(n, _)| *n == name) {
                                Some((_, want)) => {
                                    expected = format!(
                                        "{} bytes, SHA-256 {} (as enrolled), digest of the data",
                                        want.len(),
                                        hex(&sha256(want))
                                    );
                                    ok &= want.as_slice() == value;
                                }
                                None => {
                                    expected = "no such variable in the reference".into();
                                    ok = false;
                                }
                            }
                        }
                        if d != own {
                            actual.push_str(", digest of something else");
                        }
                        v.push(format!("{what} {name}"), expected, actual, ok);
                    }
                }
                None => v.push(what.clone(), "UEFI_VARIABLE_DATA", "malformed", false),
            },
            (0..=7, ev::SEPARATOR) => v.push(
                what,
                "digest of 00000000",
                format!("data {}", hex(ev.data)),
                ev.data == [0, 0, 0, 0] && d == own,
            ),
            _ => v.push(
                format!("{what} (event {n})"),
                "no such event in a Catena boot",
                format!("data {:?}", text(ev.data)),
                false,
            ),
        }
    }
    if !kernel_seen && !bl33_seen {
        v.push(
            "the kernel",
            "measured (PCR 8) or loaded by a measured boot loader",
            "neither",
            false,
        );
    }
}

fn reference(v: &mut Verdict, what: &str, of: &str, expected: Option<[u8; 32]>, actual: &[u8]) {
    match expected {
        Some(e) => v.push(
            what,
            format!("{} (SHA-256 of {of})", hex(&e)),
            hex(actual),
            e == actual,
        ),
        None => v.push(
            what,
            format!("a reference value for {of}"),
            hex(actual),
            false,
        ),
    }
}

/// The buf field of an ima-buf entry, with its name.
fn ima_buf(e: &tcglog::ima::Entry) -> Option<(String, Vec<u8>)> {
    let fields = e.fields()?;
    let name = text(fields.get(1)?);
    Some((name, fields.get(2).map(|f| f.to_vec()).unwrap_or_default()))
}

fn check_list(
    v: &mut Verdict,
    list: &[tcglog::ima::Entry],
    pcrs: &[[u8; 32]],
    programs: &[(String, [u8; 32])],
) {
    let Some(first) = list.first() else {
        v.push("measurement list", "boot_aggregate first", "empty", false);
        return;
    };
    let all: Vec<Vec<u8>> = pcrs.iter().take(10).map(|p| p.to_vec()).collect();
    let aggregate = tcglog::ima::boot_aggregate(&all);
    let expected = tcglog::ima::Entry::ng_digest("boot_aggregate", &aggregate);
    v.push(
        "PCR10 boot_aggregate",
        format!("SHA-256 of the replayed PCRs 0-9: {}", hex(&aggregate)),
        if first.data == expected.data {
            hex(&aggregate)
        } else {
            "another value".into()
        },
        first.data == expected.data,
    );
    let mut chain = Vec::new();
    for e in &list[1..] {
        if e.template == "ima-ng" {
            // A program measured before it ran: `sha256:\0` + its digest, then its path.
            let parsed = ima_buf(e).and_then(|(name, _)| {
                let len = u32::from_le_bytes(e.data.get(..4)?.try_into().ok()?);
                let d = e.data.get(4..4 + 8 + 32)?;
                (len == 40 && d.get(..8) == Some(b"sha256:\0")).then(|| (name, d[8..].to_vec()))
            });
            match parsed {
                Some((name, digest)) => {
                    let known = programs.iter().find(|(n, _)| *n == name);
                    v.push(
                        format!("PCR10 program {name}"),
                        match known {
                            Some((_, d)) => format!("{} (SHA-256 of the build's {name})", hex(d)),
                            None => "a program of the build's initramfs".into(),
                        },
                        hex(&digest),
                        known.is_some_and(|(_, d)| d.as_slice() == digest.as_slice()),
                    );
                }
                None => v.push(
                    "PCR10 entry",
                    "ima-ng with a SHA-256 digest",
                    "malformed",
                    false,
                ),
            }
            continue;
        }
        match ima_buf(e) {
            Some((name, buf)) if name == "catena-chain" => {
                let t = text(&buf);
                let step = t.split(' ').take(2).collect::<Vec<_>>().join(" ");
                v.push(
                    format!("PCR10 catena-chain \"{step}\""),
                    "a chain milestone",
                    &t,
                    true,
                );
                chain.push(step);
            }
            Some((name, buf)) => v.push(
                format!("PCR10 key in {name}"),
                "a key load_uefi_certs added (DER)",
                format!("{} bytes, SHA-256 {}", buf.len(), hex(&sha256(&buf))),
                buf.first() == Some(&0x30),
            ),
            None => v.push("PCR10 entry", "ima-ng or ima-buf", "malformed", false),
        }
    }
    let pos = |s: &str| chain.iter().position(|c| c == s);
    let (fin, ffa, early) = (
        pos("hyp state=finalised"),
        pos("ffa state=ready"),
        pos("ffa state=early-init"),
    );
    let order_ok = early.is_none() && fin.is_some() && (ffa.is_none() || fin < ffa);
    v.push(
        "policy: the hyp finalised before FF-A came up",
        "hyp state=finalised, then ffa state=ready (never ffa state=early-init)",
        chain.join(" -> "),
        order_ok,
    );
}

/// Reads a verifier input file.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// SHA-256 of bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    sha256(bytes)
}

/// SHA-256 of a file.
pub fn digest_file(path: &std::path::Path) -> Result<[u8; 32]> {
    Ok(sha256(&read(path)?))
}

#[cfg(test)]
mod tests;
