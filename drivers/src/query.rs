//! What the drivers know, as text for the shell (the `query` system call): FF-A partitions,
//! PCRs, UEFI variables, keyrings, the firmware's event log and the measurement list. A
//! service that is not there answers one line, `absent: <why>` (`user_abi::query::ABSENT`):
//! a quiet miss, not an error.

use crate::kapi;
use crate::tpm::{hex, with_tpm};
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use ffa_core::Hyp;

fn absent(why: &str) -> String {
    format!("{}{why}\n", user_abi::query::ABSENT)
}

/// The FF-A partitions the core discovered.
pub fn ffa() -> String {
    match crate::ffa::partitions() {
        Some((via, version, parts)) => {
            let mut out = format!("FF-A {version} via {via}: {} partitions\n", parts.len());
            let _ = writeln!(out, "  ID      CTX PROPS      UUID");
            for p in parts {
                let _ = writeln!(
                    out,
                    "  {:#06x}  {:>3} {:#010x} {}",
                    p.id,
                    p.exec_ctx,
                    p.props,
                    ffa_abi::uuid_text(&p.uuid)
                );
            }
            out
        }
        None => absent(match kapi::hyp() {
            Hyp::Absent => "no FF-A: the kernel has no hyp here and no SPMC answered",
            Hyp::Installed => "no FF-A: the hyp is not finalised",
            Hyp::Finalised => "no FF-A: no SPMC answered FFA_VERSION",
        }),
    }
}

/// PCRs 0-23 of the SHA-256 bank.
pub fn pcrs() -> String {
    let r = with_tpm(|t| {
        let mut out = String::from("PCR sha256\n");
        for i in 0..24u8 {
            match t.pcr_read(tpm_core::ALG_SHA256, i) {
                Ok(d) => {
                    let _ = writeln!(out, "{i:>3} {}", hex(d.as_bytes()));
                }
                Err(e) => {
                    let _ = writeln!(out, "{i:>3} unreadable: {e}");
                }
            }
        }
        out
    });
    r.unwrap_or_else(|| absent("no TPM bound"))
}

/// The UEFI variables' names.
pub fn efivars() -> String {
    let r = crate::efivar::with_efivar(|c| match c.names() {
        Ok(n) => {
            let mut out = String::new();
            for (guid, name) in &n {
                let _ = writeln!(
                    out,
                    "{}-{}",
                    uefi_vars::client::from_utf16z(name),
                    efi_guid(guid)
                );
            }
            out
        }
        Err(e) => format!("error: {}\n", e.name()),
    });
    r.unwrap_or_else(|| absent("no UEFI variable service bound"))
}

/// An EFI GUID as text: its first three fields are little-endian (UEFI 2.10 appendix A).
fn efi_guid(g: &[u8; 16]) -> String {
    let mut out = String::new();
    for (i, b) in [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        .iter()
        .enumerate()
    {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{:02x}", g[*b]);
    }
    out
}

/// One UEFI variable by name.
pub fn efivar(name: &str) -> String {
    if name.is_empty() {
        return String::from("error: efivar get NAME\n");
    }
    let r = crate::efivar::with_efivar(|c| crate::efivar::get_text(c, name));
    r.unwrap_or_else(|| absent("no UEFI variable service bound"))
}

/// The keyrings.
pub fn keys() -> String {
    let r = crate::certs::with_keyrings(|k| {
        let mut out = String::new();
        for (ring, keys) in [(".platform", &k.platform), (".machine", &k.machine)] {
            let _ = writeln!(out, "{ring}: {} keys", keys.len());
            for key in keys.iter() {
                let _ = writeln!(
                    out,
                    "  {} (from {}, serial {})",
                    key.subject, key.source, key.serial
                );
            }
        }
        let _ = writeln!(out, ".blacklist: {} entries", k.blacklist.len());
        out
    });
    r.unwrap_or_else(|| absent("the UEFI certificates were not loaded (no variable service)"))
}

/// The firmware's event log, an event per line.
pub fn eventlog() -> String {
    let Some(bytes) = crate::tpm::event_log() else {
        return absent("no event log from the firmware");
    };
    let log = match tcglog::parse(&bytes) {
        Ok(l) => l,
        Err(e) => return format!("error: the log is malformed: {}\n", e.0),
    };
    let mut out = format!("{} events\n", log.events.len());
    for e in &log.events {
        let sha256 = e
            .digests
            .iter()
            .find(|(a, _)| *a == tcglog::alg::SHA256)
            .map_or(String::from("-"), |(_, d)| hex(d));
        let _ = writeln!(
            out,
            "PCR{:<2} {:#010x} {} {}",
            e.pcr,
            e.typ,
            sha256,
            printable(e.data)
        );
    }
    out
}

/// The measurement list, as IMA's ascii_runtime_measurements (PCR, template hash, template,
/// file digest, name).
pub fn measurements() -> String {
    let list = crate::ima::list();
    let entries = match tcglog::ima::parse(&list) {
        Ok(e) => e,
        Err(e) => return format!("error: {}\n", e.0),
    };
    if entries.is_empty() {
        return absent("the measurement list has not started");
    }
    let mut out = String::new();
    for e in &entries {
        let th = e
            .digest(tcglog::alg::SHA256)
            .map_or(String::new(), |d| hex(&d));
        let (digest, name) = ng_fields(e).unwrap_or_default();
        let _ = writeln!(out, "{} {th} {} {digest} {name}", e.pcr, e.template);
    }
    out
}

/// The d-ng and n-ng fields of an entry's template data ("sha256:HEX", the name).
fn ng_fields(e: &tcglog::ima::Entry) -> Option<(String, String)> {
    let fields = e.fields()?;
    let (d, n) = (fields.first()?, fields.get(1)?);
    let colon = d.iter().position(|&b| b == 0)?;
    let digest = format!(
        "{}{}",
        core::str::from_utf8(&d[..colon]).ok()?,
        hex(&d[colon + 1..])
    );
    let name = core::str::from_utf8(n).ok()?.trim_end_matches('\0');
    Some((digest, String::from(name)))
}

/// The event data as text when it is text (descriptions), else its length.
fn printable(d: &[u8]) -> String {
    let t = d.strip_suffix(&[0]).unwrap_or(d);
    if !t.is_empty() && t.len() <= 64 && t.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(t).into_owned()
    } else {
        format!("({} bytes)", d.len())
    }
}
