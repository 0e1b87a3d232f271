//! The TCG crypto-agile event log (TCG PC Client Platform Firmware Profile, §10: the
//! TCG_PCClientPCREvent header carrying the Spec ID Event03, then TCG_PCR_EVENT2 entries),
//! written by the firmware and read back by the kernel and the verifier; and PCR replay.
//!
//! Owns: the byte layout (little-endian, packed), the digests of every bank the header
//! lists, and a parser that checks every size and count against the bytes there are (the
//! log crosses trust domains: firmware to kernel to verifier). Must not: talk to a TPM.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod ima;

use alloc::vec;
use alloc::vec::Vec;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// TPM_ALG_ID values (TPM 2.0 Part 2 §6.3) and digest sizes.
pub mod alg {
    /// SHA-1.
    pub const SHA1: u16 = 0x0004;
    /// SHA-256.
    pub const SHA256: u16 = 0x000b;
    /// SHA-384.
    pub const SHA384: u16 = 0x000c;
    /// SHA-512.
    pub const SHA512: u16 = 0x000d;

    /// The digest size of a bank this crate can compute.
    pub fn size(a: u16) -> Option<usize> {
        match a {
            SHA1 => Some(20),
            SHA256 => Some(32),
            SHA384 => Some(48),
            SHA512 => Some(64),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(a: u16) -> &'static str {
        match a {
            SHA1 => "sha1",
            SHA256 => "sha256",
            SHA384 => "sha384",
            SHA512 => "sha512",
            _ => "unknown",
        }
    }
}

/// Event types (PFP §10.4.1; U-Boot include/tpm_tcg2.h).
pub mod ev {
    /// EV_POST_CODE.
    pub const POST_CODE: u32 = 0x1;
    /// EV_NO_ACTION (not extended).
    pub const NO_ACTION: u32 = 0x3;
    /// EV_SEPARATOR.
    pub const SEPARATOR: u32 = 0x4;
    /// EV_S_CRTM_VERSION.
    pub const S_CRTM_VERSION: u32 = 0x8;
    /// EV_PLATFORM_CONFIG_FLAGS.
    pub const PLATFORM_CONFIG_FLAGS: u32 = 0xa;
    /// EV_TABLE_OF_DEVICES.
    pub const TABLE_OF_DEVICES: u32 = 0xb;
    /// EV_COMPACT_HASH.
    pub const COMPACT_HASH: u32 = 0xc;
    /// EV_EFI_VARIABLE_DRIVER_CONFIG.
    pub const EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2.
    pub const EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000a;
}

/// The Spec ID event's signature.
pub const SPEC_ID: &[u8; 16] = b"Spec ID Event03\0";
/// PCRs a PC-client TPM has.
pub const PCRS: usize = 24;

/// The digest of `data` in bank `a` (`None` for a bank this crate cannot compute).
pub fn digest(a: u16, data: &[u8]) -> Option<Vec<u8>> {
    Some(match a {
        alg::SHA1 => Sha1::digest(data).to_vec(),
        alg::SHA256 => Sha256::digest(data).to_vec(),
        alg::SHA384 => Sha384::digest(data).to_vec(),
        alg::SHA512 => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// The digests of one payload in several banks, fed in pieces: what measures a payload too
/// large to hold in memory at once (a firmware measures a kernel Image of tens of MiB from
/// where it was loaded, a chunk at a time, with a heap of a few MiB).
#[derive(Clone)]
pub struct Hasher {
    banks: Vec<(u16, Bank)>,
}

#[derive(Clone)]
enum Bank {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for `banks`, in that order; `None` if one is a bank this crate cannot compute.
    pub fn new(banks: &[u16]) -> Option<Hasher> {
        let banks = banks
            .iter()
            .map(|a| {
                let b = match *a {
                    alg::SHA1 => Bank::Sha1(Sha1::new()),
                    alg::SHA256 => Bank::Sha256(Sha256::new()),
                    alg::SHA384 => Bank::Sha384(Sha384::new()),
                    alg::SHA512 => Bank::Sha512(Sha512::new()),
                    _ => return None,
                };
                Some((*a, b))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Hasher { banks })
    }

    /// Feeds the next piece of the payload.
    pub fn update(&mut self, piece: &[u8]) {
        for (_, b) in &mut self.banks {
            match b {
                Bank::Sha1(h) => h.update(piece),
                Bank::Sha256(h) => h.update(piece),
                Bank::Sha384(h) => h.update(piece),
                Bank::Sha512(h) => h.update(piece),
            }
        }
    }

    /// The digests, (bank, digest) in the order given to [`Hasher::new`].
    pub fn finish(self) -> Vec<(u16, Vec<u8>)> {
        self.banks
            .into_iter()
            .map(|(a, b)| {
                let d = match b {
                    Bank::Sha1(h) => h.finalize().to_vec(),
                    Bank::Sha256(h) => h.finalize().to_vec(),
                    Bank::Sha384(h) => h.finalize().to_vec(),
                    Bank::Sha512(h) => h.finalize().to_vec(),
                };
                (a, d)
            })
            .collect()
    }
}

/// `new = H(old || extend)` in bank `a`.
pub fn extend(a: u16, old: &[u8], extend: &[u8]) -> Option<Vec<u8>> {
    let mut b = Vec::with_capacity(old.len() + extend.len());
    b.extend_from_slice(old);
    b.extend_from_slice(extend);
    digest(a, &b)
}

/// A log being written.
#[derive(Clone, Debug)]
pub struct Writer {
    banks: Vec<u16>,
    bytes: Vec<u8>,
}

impl Writer {
    /// A log for `banks` (every bank the TPM has active, each one this crate can compute):
    /// the header, with no vendor info (U-Boot accepts no other size).
    pub fn new(banks: &[u16]) -> Option<Writer> {
        if banks.is_empty() || banks.iter().any(|b| alg::size(*b).is_none()) {
            return None;
        }
        let mut spec = Vec::new();
        spec.extend_from_slice(SPEC_ID);
        spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
        spec.extend_from_slice(&[0, 2, 2, 2]); // spec 2.0 errata 2, uintnSize 2 (UINT64)
        spec.extend_from_slice(&(banks.len() as u32).to_le_bytes());
        for b in banks {
            spec.extend_from_slice(&b.to_le_bytes());
            spec.extend_from_slice(&(alg::size(*b)? as u16).to_le_bytes());
        }
        spec.push(0); // vendorInfoSize
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&ev::NO_ACTION.to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&spec);
        Some(Writer {
            banks: banks.to_vec(),
            bytes,
        })
    }

    /// The banks.
    pub fn banks(&self) -> &[u16] {
        &self.banks
    }

    /// Appends an event whose digests are of `measured` in every bank; returns the digests
    /// (bank, digest) to extend the TPM with.
    pub fn append(
        &mut self,
        pcr: u32,
        typ: u32,
        measured: &[u8],
        data: &[u8],
    ) -> Vec<(u16, Vec<u8>)> {
        let digests: Vec<(u16, Vec<u8>)> = self
            .banks
            .iter()
            .map(|b| (*b, digest(*b, measured).unwrap_or_default()))
            .collect();
        self.append_digests(pcr, typ, &digests, data);
        digests
    }

    /// Appends an event with the given digests (one per bank, in the header's order).
    pub fn append_digests(&mut self, pcr: u32, typ: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) {
        let b = &mut self.bytes;
        b.extend_from_slice(&pcr.to_le_bytes());
        b.extend_from_slice(&typ.to_le_bytes());
        b.extend_from_slice(&(digests.len() as u32).to_le_bytes());
        for (a, d) in digests {
            b.extend_from_slice(&a.to_le_bytes());
            b.extend_from_slice(d);
        }
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
    }

    /// The log so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One parsed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// PCRIndex.
    pub pcr: u32,
    /// EventType.
    pub typ: u32,
    /// (bank, digest), in log order.
    pub digests: Vec<(u16, &'a [u8])>,
    /// The event data.
    pub data: &'a [u8],
}

/// A parsed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log<'a> {
    /// The banks the header lists, with their digest sizes.
    pub banks: Vec<(u16, u16)>,
    /// The events after the header.
    pub events: Vec<Event<'a>>,
}

/// Why a log does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

struct Rd<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(Malformed(what))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
}

/// Most events a log may hold (a bound on work, far above any boot's).
pub const MAX_EVENTS: usize = 4096;

/// Parses a whole log: the header (PCR 0, EV_NO_ACTION, zero SHA-1 digest, Spec ID Event03,
/// version 2.0, at least one bank, sizes consistent), then events to the end of the bytes (or
/// to where only zero bytes remain: a log in a fixed region), each with exactly the header's
/// banks in its order and each size inside the bytes.
pub fn parse(b: &[u8]) -> Result<Log<'_>, Malformed> {
    let mut r = Rd { b, at: 0 };
    if r.u32("header PCR")? != 0 || r.u32("header type")? != ev::NO_ACTION {
        return Err(Malformed("the first event is not EV_NO_ACTION at PCR 0"));
    }
    if r.take(20, "header digest")?.iter().any(|&x| x != 0) {
        return Err(Malformed("the header's digest is not zero"));
    }
    let size = r.u32("header size")? as usize;
    let spec = r.take(size, "Spec ID event")?;
    let mut s = Rd { b: spec, at: 0 };
    if s.take(16, "signature")? != SPEC_ID {
        return Err(Malformed("not a Spec ID Event03"));
    }
    let _platform = s.u32("platformClass")?;
    let v = s.take(4, "versions")?;
    if v[0] != 0 || v[1] != 2 {
        return Err(Malformed("not spec version 2.0"));
    }
    let n = s.u32("numberOfAlgorithms")? as usize;
    if n == 0 || n > 16 {
        return Err(Malformed("numberOfAlgorithms out of range"));
    }
    let mut banks = Vec::with_capacity(n);
    for _ in 0..n {
        let a = s.u16("algorithmId")?;
        let sz = s.u16("digestSize")?;
        if sz == 0 || sz > 64 || banks.iter().any(|(x, _)| *x == a) {
            return Err(Malformed("a bank's digest size or a repeated bank"));
        }
        banks.push((a, sz));
    }
    let vendor = s.take(1, "vendorInfoSize")?[0] as usize;
    s.take(vendor, "vendorInfo")?;
    if s.at != spec.len() {
        return Err(Malformed("bytes after the Spec ID event's vendor info"));
    }
    let mut events = Vec::new();
    while r.at < b.len() {
        // A log handed over in a fixed region ends where only zeros follow (an event never
        // starts with eight zero bytes and a zero digest count: that is no event).
        if b[r.at..].iter().all(|&x| x == 0) {
            break;
        }
        if events.len() >= MAX_EVENTS {
            return Err(Malformed("more events than any boot makes"));
        }
        let pcr = r.u32("PCRIndex")?;
        let typ = r.u32("EventType")?;
        let count = r.u32("digest count")? as usize;
        if count != banks.len() {
            return Err(Malformed("an event's digests are not the header's banks"));
        }
        let mut digests = Vec::with_capacity(count);
        for (a, sz) in &banks {
            if r.u16("hashAlg")? != *a {
                return Err(Malformed("an event's banks are not in the header's order"));
            }
            digests.push((*a, r.take(usize::from(*sz), "digest")?));
        }
        if pcr as usize >= PCRS {
            return Err(Malformed("PCRIndex above 23"));
        }
        let len = r.u32("EventSize")? as usize;
        let data = r.take(len, "event data")?;
        events.push(Event {
            pcr,
            typ,
            digests,
            data,
        });
    }
    Ok(Log { banks, events })
}

impl Log<'_> {
    /// Replays bank `a` from all-zero PCRs: every event but EV_NO_ACTION extends its PCR.
    /// `None` when the bank is not in the log or this crate cannot compute it.
    pub fn replay(&self, a: u16) -> Option<Vec<Vec<u8>>> {
        let (_, sz) = self.banks.iter().find(|(x, _)| *x == a)?;
        alg::size(a).filter(|s| *s == usize::from(*sz))?;
        let mut pcrs = vec![vec![0u8; usize::from(*sz)]; PCRS];
        for e in self.events.iter().filter(|e| e.typ != ev::NO_ACTION) {
            let (_, d) = e.digests.iter().find(|(x, _)| *x == a)?;
            let p = &mut pcrs[e.pcr as usize];
            *p = extend(a, p, d)?;
        }
        Some(pcrs)
    }
}

#[cfg(test)]
mod tests;
