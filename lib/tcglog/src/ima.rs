//! IMA's measurement list as Linux writes it (security/integrity/ima: `ima_fs.c`
//! binary_runtime_measurements, `ima_template_lib.c` d-ng/n-ng/buf fields): each entry is the
//! PCR (u32), the template hash (SHA-1 of the template data, 20 bytes), the template name
//! (u32 length, bytes) and the template data (u32 length, bytes), all little-endian. The
//! template data is its fields, each a u32 length then the bytes: `ima-ng` = d-ng (the hash
//! algorithm's name, ':', NUL, the digest) and n-ng (the name with its NUL); `ima-buf` adds buf
//! (the measured bytes themselves, as IMA records keys).

use crate::{digest, extend};
use alloc::string::String;
use alloc::vec::Vec;

/// The PCR IMA extends.
pub const PCR: u32 = 10;

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its PCR.
    pub pcr: u32,
    /// "ima-ng" or "ima-buf".
    pub template: String,
    /// The template data.
    pub data: Vec<u8>,
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn d_ng(out: &mut Vec<u8>, measured: &[u8]) {
    let mut d = Vec::from(&b"sha256:\0"[..]);
    d.extend_from_slice(&digest(crate::alg::SHA256, measured).unwrap_or_default());
    field(out, &d);
}

fn n_ng(out: &mut Vec<u8>, name: &str) {
    let mut n = Vec::from(name.as_bytes());
    n.push(0);
    field(out, &n);
}

impl Entry {
    /// An `ima-ng` entry for `measured` under `name`.
    pub fn ng(name: &str, measured: &[u8]) -> Entry {
        let mut data = Vec::new();
        d_ng(&mut data, measured);
        n_ng(&mut data, name);
        Entry {
            pcr: PCR,
            template: "ima-ng".into(),
            data,
        }
    }

    /// An `ima-ng` entry whose digest is given (boot_aggregate's).
    pub fn ng_digest(name: &str, sha256: &[u8]) -> Entry {
        let mut data = Vec::new();
        let mut d = Vec::from(&b"sha256:\0"[..]);
        d.extend_from_slice(sha256);
        field(&mut data, &d);
        n_ng(&mut data, name);
        Entry {
            pcr: PCR,
            template: "ima-ng".into(),
            data,
        }
    }

    /// An `ima-buf` entry: `buf` measured and recorded under `name` (IMA's key measurements:
    /// the name is the keyring, the buffer the DER certificate).
    pub fn buf(name: &str, buf: &[u8]) -> Entry {
        let mut data = Vec::new();
        d_ng(&mut data, buf);
        n_ng(&mut data, name);
        field(&mut data, buf);
        Entry {
            pcr: PCR,
            template: "ima-buf".into(),
            data,
        }
    }

    /// The template digest in bank `a` (what IMA extends that bank with).
    pub fn digest(&self, a: u16) -> Option<Vec<u8>> {
        digest(a, &self.data)
    }

    /// The template data's fields in order (d-ng, n-ng, and buf for `ima-buf`), each a
    /// little-endian u32 length and its bytes; `None` if a length runs past the end. Fewer
    /// than four bytes left over end the list.
    pub fn fields(&self) -> Option<Vec<&[u8]>> {
        let mut rest = self.data.as_slice();
        let mut out = Vec::new();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let n = u32::from_le_bytes(*len) as usize;
            out.push(tail.get(..n)?);
            rest = &tail[n..];
        }
        Some(out)
    }
}

/// IMA's boot_aggregate for a SHA-256 bank: SHA-256 over PCRs 0–9 in order (Linux 5.8+
/// includes 8 and 9).
pub fn boot_aggregate(pcrs: &[Vec<u8>]) -> Vec<u8> {
    let all: Vec<u8> = pcrs.iter().take(10).flatten().copied().collect();
    digest(crate::alg::SHA256, &all).unwrap_or_default()
}

/// The binary_runtime_measurements form.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&e.pcr.to_le_bytes());
        out.extend_from_slice(&digest(crate::alg::SHA1, &e.data).unwrap_or_default());
        field(&mut out, e.template.as_bytes());
        field(&mut out, &e.data);
    }
    out
}

/// Parses a binary list: every length inside the bytes, every template hash the SHA-1 of
/// its data, template names ima-ng or ima-buf.
pub fn parse(mut b: &[u8]) -> Result<Vec<Entry>, crate::Malformed> {
    let bad = crate::Malformed;
    let mut out = Vec::new();
    let take = |b: &mut &[u8], n: usize, what: &'static str| -> Result<Vec<u8>, crate::Malformed> {
        if b.len() < n {
            return Err(bad(what));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h.to_vec())
    };
    let u32_of = |v: &[u8]| u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
    while !b.is_empty() {
        if out.len() >= crate::MAX_EVENTS {
            return Err(bad("more entries than any boot makes"));
        }
        let pcr = u32_of(&take(&mut b, 4, "pcr")?) as u32;
        let hash = take(&mut b, 20, "template hash")?;
        let n = u32_of(&take(&mut b, 4, "template name length")?);
        let name = take(&mut b, n, "template name")?;
        let template = String::from_utf8(name).map_err(|_| bad("template name not UTF-8"))?;
        if template != "ima-ng" && template != "ima-buf" {
            return Err(bad("a template other than ima-ng or ima-buf"));
        }
        let n = u32_of(&take(&mut b, 4, "template data length")?);
        let data = take(&mut b, n, "template data")?;
        if digest(crate::alg::SHA1, &data).unwrap_or_default() != hash {
            return Err(bad("template hash is not the data's"));
        }
        out.push(Entry {
            pcr,
            template,
            data,
        });
    }
    Ok(out)
}

/// PCR 10 after the entries, in bank `a`, from zero.
pub fn replay(entries: &[Entry], a: u16) -> Option<Vec<u8>> {
    let mut p = alloc::vec![0u8; crate::alg::size(a)?];
    for e in entries.iter().filter(|e| e.pcr == PCR) {
        p = extend(a, &p, &e.digest(a)?)?;
    }
    Some(p)
}
