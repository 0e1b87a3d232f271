//! Memory transaction descriptors (DEN0077A v1.0 §5.11 tables 5.19–5.24; v1.1 §10.11;
//! v1.2 adds the 16-byte implementation-defined field to the endpoint descriptor).
//!
//! | layout | header | EMAD array            | EMAD size |
//! |--------|--------|-----------------------|-----------|
//! | v1.0   | 32     | fixed at offset 32    | 16        |
//! | v1.1   | 48     | at the header's offset| 16        |
//! | v1.2   | 48     | at the header's offset| 32        |
//!
//! The composite descriptor (16 bytes) and its 16-byte constituents are the same in all three.
//! [`parse`] refuses anything malformed with a reason; it never indexes out of bounds.

use crate::{PAGE, V1_1, V1_2, Version};
use alloc::vec::Vec;

/// An endpoint memory access descriptor.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Emad {
    /// Receiver endpoint.
    pub receiver: u16,
    /// Access permissions: bits 1:0 data (1 RO, 2 RW), bits 3:2 instruction (1 NX, 2 X).
    pub perms: u8,
    /// Flags (retrieve: bit 0 non-retrieval borrower).
    pub flags: u8,
}

/// Data access: read-only.
pub const DATA_RO: u8 = 1;
/// Data access: read-write.
pub const DATA_RW: u8 = 2;
/// Instruction access: not executable.
pub const INSTR_NX: u8 = 1 << 2;
/// Instruction access: executable.
pub const INSTR_X: u8 = 2 << 2;

/// Memory region attributes for normal, write-back, inner-shareable memory
/// (type 10 << 4, cacheability 11 << 2, shareability 11).
pub const ATTR_NORMAL_WB_INNER: u16 = (2 << 4) | (3 << 2) | 3;

/// A constituent: a run of 4 KiB pages.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Constituent {
    /// Base address (4 KiB aligned).
    pub address: u64,
    /// 4 KiB pages.
    pub pages: u32,
}

impl Constituent {
    /// One past the end, if it does not overflow.
    pub fn end(&self) -> Option<u64> {
        u64::from(self.pages)
            .checked_mul(PAGE)
            .and_then(|l| self.address.checked_add(l))
    }
}

/// A memory transaction as described in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemTxn {
    /// Owner / sender endpoint.
    pub sender: u16,
    /// Memory region attributes.
    pub attributes: u16,
    /// Transaction flags.
    pub flags: u32,
    /// Handle (0 in a share/lend request).
    pub handle: u64,
    /// Tag.
    pub tag: u64,
    /// Receivers.
    pub emads: Vec<Emad>,
    /// The memory (empty in a retrieve request that names the region by its handle).
    pub constituents: Vec<Constituent>,
}

/// Why a descriptor was refused (all map to INVALID_PARAMETERS at the ABI).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DescError {
    /// Shorter than its header or than what it points at.
    Truncated,
    /// A reserved (MBZ) field is not zero.
    ReservedNotZero,
    /// The EMAD array offset is misaligned or overlaps the header.
    BadEmadOffset,
    /// The EMAD size is not this version's.
    BadEmadSize,
    /// No receivers, or more than [`MAX_EMADS`].
    BadEmadCount,
    /// Receivers point at different (or misaligned, or overlapping) composite descriptors.
    BadCompositeOffset,
    /// A composite with no constituents, or more than [`MAX_CONSTITUENTS`].
    BadConstituentCount,
    /// A constituent that is unaligned, empty or wraps around.
    BadConstituent,
    /// The composite's total page count is not the sum of its constituents.
    PageCountMismatch,
    /// Two constituents overlap.
    Overlap,
    /// A composite descriptor where none may be (or none where one must be).
    UnexpectedComposite,
}

/// Most receivers accepted in one transaction.
pub const MAX_EMADS: usize = 16;
/// Most constituents accepted in one transaction.
pub const MAX_CONSTITUENTS: usize = 256;

fn u16_at(b: &[u8], o: usize) -> Result<u16, DescError> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(DescError::Truncated)
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, DescError> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(DescError::Truncated)
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, DescError> {
    let s = b.get(o..o + 8).ok_or(DescError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}
fn zero(b: &[u8], range: core::ops::Range<usize>) -> Result<(), DescError> {
    let s = b.get(range).ok_or(DescError::Truncated)?;
    if s.iter().all(|x| *x == 0) {
        Ok(())
    } else {
        Err(DescError::ReservedNotZero)
    }
}

/// Header size for a version.
pub fn header_size(v: Version) -> usize {
    if v < V1_1 { 32 } else { 48 }
}

/// EMAD size for a version.
pub fn emad_size(v: Version) -> usize {
    if v < V1_2 { 16 } else { 32 }
}

/// Whether the composite descriptor is required, forbidden or either.
#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Composite {
    /// Share/lend/donate and retrieve responses.
    Required,
    /// Retrieve requests from a borrower (the handle names the memory).
    Absent,
}

/// Parses a transaction descriptor in the layout of version `v`.
pub fn parse(v: Version, b: &[u8], composite: Composite) -> Result<MemTxn, DescError> {
    let hdr = header_size(v);
    if b.len() < hdr {
        return Err(DescError::Truncated);
    }
    let sender = u16_at(b, 0)?;
    let (attributes, emad_off, emad_sz, count) = if v < V1_1 {
        // v1.0: attributes are 8 bits, byte 3 and bytes 24..28 reserved.
        zero(b, 3..4)?;
        zero(b, 24..28)?;
        (u16::from(b[2]), 32usize, 16usize, u32_at(b, 28)? as usize)
    } else {
        zero(b, 36..48)?;
        let sz = u32_at(b, 24)? as usize;
        if sz != emad_size(v) {
            return Err(DescError::BadEmadSize);
        }
        let off = u32_at(b, 32)? as usize;
        if !off.is_multiple_of(16) || off < hdr {
            return Err(DescError::BadEmadOffset);
        }
        (u16_at(b, 2)?, off, sz, u32_at(b, 28)? as usize)
    };
    if count == 0 || count > MAX_EMADS {
        return Err(DescError::BadEmadCount);
    }
    let emads_end = count
        .checked_mul(emad_sz)
        .and_then(|n| n.checked_add(emad_off))
        .ok_or(DescError::Truncated)?;
    if emads_end > b.len() {
        return Err(DescError::Truncated);
    }
    let mut emads = Vec::with_capacity(count);
    let mut comp_off = None;
    for i in 0..count {
        let e = emad_off + i * emad_sz;
        let off = u32_at(b, e + 4)? as usize;
        // Reserved: v1.0/v1.1 bytes 8..16; v1.2 bytes 24..32 (8..24 are implementation defined).
        if emad_sz == 16 {
            zero(b, e + 8..e + 16)?
        } else {
            zero(b, e + 24..e + 32)?
        }
        match comp_off {
            None => comp_off = Some(off),
            Some(o) if o != off => return Err(DescError::BadCompositeOffset),
            Some(_) => {}
        }
        emads.push(Emad {
            receiver: u16_at(b, e)?,
            perms: b[e + 2],
            flags: b[e + 3],
        });
    }
    let comp_off = comp_off.unwrap_or(0);
    let mut txn = MemTxn {
        sender,
        attributes,
        flags: u32_at(b, 4)?,
        handle: u64_at(b, 8)?,
        tag: u64_at(b, 16)?,
        emads,
        constituents: Vec::new(),
    };
    match (composite, comp_off) {
        (Composite::Absent, 0) => return Ok(txn),
        (Composite::Absent, _) | (Composite::Required, 0) => {
            return Err(DescError::UnexpectedComposite);
        }
        (Composite::Required, _) => {}
    }
    if !comp_off.is_multiple_of(8) || comp_off < emads_end {
        return Err(DescError::BadCompositeOffset);
    }
    let total_pages = u32_at(b, comp_off)?;
    let n = u32_at(b, comp_off + 4)? as usize;
    zero(b, comp_off + 8..comp_off + 16)?;
    if n == 0 || n > MAX_CONSTITUENTS {
        return Err(DescError::BadConstituentCount);
    }
    let first = comp_off + 16;
    if first + n * 16 > b.len() {
        return Err(DescError::Truncated);
    }
    let mut sum: u64 = 0;
    for i in 0..n {
        let c = first + i * 16;
        let k = Constituent {
            address: u64_at(b, c)?,
            pages: u32_at(b, c + 8)?,
        };
        zero(b, c + 12..c + 16)?;
        if !k.address.is_multiple_of(PAGE) || k.pages == 0 || k.end().is_none() {
            return Err(DescError::BadConstituent);
        }
        sum += u64::from(k.pages);
        txn.constituents.push(k);
    }
    if sum != u64::from(total_pages) {
        return Err(DescError::PageCountMismatch);
    }
    let mut sorted = txn.constituents.clone();
    sorted.sort_by_key(|c| c.address);
    for w in sorted.windows(2) {
        // end() was checked above.
        if w[0].end().unwrap_or(u64::MAX) > w[1].address {
            return Err(DescError::Overlap);
        }
    }
    Ok(txn)
}

/// Writes `txn` in the layout of version `v` (EMADs right after the header, the composite
/// right after the EMADs). With no constituents, EMADs carry composite offset 0 (a retrieve
/// request). Returns the bytes.
pub fn build(v: Version, txn: &MemTxn) -> Vec<u8> {
    let hdr = header_size(v);
    let esz = emad_size(v);
    let comp = (hdr + txn.emads.len() * esz).next_multiple_of(8);
    let with_comp = !txn.constituents.is_empty();
    let total = if with_comp {
        comp + 16 + 16 * txn.constituents.len()
    } else {
        hdr + txn.emads.len() * esz
    };
    let mut b = alloc::vec![0u8; total];
    b[0..2].copy_from_slice(&txn.sender.to_le_bytes());
    if v < V1_1 {
        b[2] = txn.attributes as u8;
        b[28..32].copy_from_slice(&(txn.emads.len() as u32).to_le_bytes());
    } else {
        b[2..4].copy_from_slice(&txn.attributes.to_le_bytes());
        b[24..28].copy_from_slice(&(esz as u32).to_le_bytes());
        b[28..32].copy_from_slice(&(txn.emads.len() as u32).to_le_bytes());
        b[32..36].copy_from_slice(&(hdr as u32).to_le_bytes());
    }
    b[4..8].copy_from_slice(&txn.flags.to_le_bytes());
    b[8..16].copy_from_slice(&txn.handle.to_le_bytes());
    b[16..24].copy_from_slice(&txn.tag.to_le_bytes());
    for (i, e) in txn.emads.iter().enumerate() {
        let o = hdr + i * esz;
        b[o..o + 2].copy_from_slice(&e.receiver.to_le_bytes());
        b[o + 2] = e.perms;
        b[o + 3] = e.flags;
        let off = if with_comp { comp as u32 } else { 0 };
        b[o + 4..o + 8].copy_from_slice(&off.to_le_bytes());
    }
    if with_comp {
        let pages: u32 = txn.constituents.iter().map(|c| c.pages).sum();
        b[comp..comp + 4].copy_from_slice(&pages.to_le_bytes());
        b[comp + 4..comp + 8].copy_from_slice(&(txn.constituents.len() as u32).to_le_bytes());
        for (i, c) in txn.constituents.iter().enumerate() {
            let o = comp + 16 + i * 16;
            b[o..o + 8].copy_from_slice(&c.address.to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&c.pages.to_le_bytes());
        }
    }
    b
}

/// The relinquish descriptor (DEN0077A v1.1 table 10.21): handle, flags, endpoint IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relinquish {
    /// Handle.
    pub handle: u64,
    /// Flags (bit 0 zero after relinquish, bit 1 time slicing).
    pub flags: u32,
    /// Endpoints relinquishing.
    pub endpoints: Vec<u16>,
}

/// Parses a relinquish descriptor.
pub fn parse_relinquish(b: &[u8]) -> Result<Relinquish, DescError> {
    let handle = u64_at(b, 0)?;
    let flags = u32_at(b, 8)?;
    let n = u32_at(b, 12)? as usize;
    if n == 0 || n > MAX_EMADS {
        return Err(DescError::BadEmadCount);
    }
    let endpoints = (0..n)
        .map(|i| u16_at(b, 16 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Relinquish {
        handle,
        flags,
        endpoints,
    })
}

/// Writes a relinquish descriptor.
pub fn build_relinquish(r: &Relinquish) -> Vec<u8> {
    let mut b = alloc::vec![0u8; 16 + 2 * r.endpoints.len()];
    b[0..8].copy_from_slice(&r.handle.to_le_bytes());
    b[8..12].copy_from_slice(&r.flags.to_le_bytes());
    b[12..16].copy_from_slice(&(r.endpoints.len() as u32).to_le_bytes());
    for (i, e) in r.endpoints.iter().enumerate() {
        b[16 + 2 * i..18 + 2 * i].copy_from_slice(&e.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::V1_0;

    fn sample() -> MemTxn {
        MemTxn {
            sender: 0,
            attributes: ATTR_NORMAL_WB_INNER,
            flags: 0,
            handle: 0,
            tag: 0,
            emads: alloc::vec![Emad {
                receiver: 0x8001,
                perms: DATA_RW | INSTR_NX,
                flags: 0
            }],
            constituents: alloc::vec![
                Constituent {
                    address: 0x4800_0000,
                    pages: 2
                },
                Constituent {
                    address: 0x4900_0000,
                    pages: 1
                },
            ],
        }
    }

    #[test]
    fn round_trip_in_every_layout() {
        for v in [V1_0, V1_1, V1_2] {
            let b = build(v, &sample());
            let hdr_and_emad = header_size(v) + emad_size(v);
            assert_eq!(b.len(), hdr_and_emad.next_multiple_of(8) + 16 + 32, "{v}");
            assert_eq!(parse(v, &b, Composite::Required).unwrap(), sample(), "{v}");
        }
        // A v1.2 descriptor read as v1.1 has the wrong EMAD size.
        let b = build(V1_2, &sample());
        assert_eq!(
            parse(V1_1, &b, Composite::Required),
            Err(DescError::BadEmadSize)
        );
    }

    #[test]
    fn every_malformation_is_refused() {
        let good = build(V1_2, &sample());
        let comp = (48 + 32usize).next_multiple_of(8);
        type Case = (&'static str, fn(&mut Vec<u8>), DescError);
        let cases: &[Case] = &[
            ("truncated", |b| b.truncate(60), DescError::Truncated),
            ("reserved header", |b| b[40] = 1, DescError::ReservedNotZero),
            (
                "emad offset unaligned",
                |b| b[32] = 56,
                DescError::BadEmadOffset,
            ),
            (
                "emad offset inside header",
                |b| b[32] = 16,
                DescError::BadEmadOffset,
            ),
            ("no receivers", |b| b[28] = 0, DescError::BadEmadCount),
            (
                "too many receivers",
                |b| b[28] = 200,
                DescError::BadEmadCount,
            ),
            ("emads past the end", |b| b[28] = 9, DescError::Truncated),
            (
                "composite misaligned",
                |b| b[48 + 4] = 81,
                DescError::BadCompositeOffset,
            ),
            (
                "composite inside emads",
                |b| b[48 + 4] = 56,
                DescError::BadCompositeOffset,
            ),
            (
                "no composite",
                |b| b[48 + 4..48 + 8].fill(0),
                DescError::UnexpectedComposite,
            ),
            ("page count", |b| b[80] = 9, DescError::PageCountMismatch),
            (
                "no constituents",
                |b| b[84] = 0,
                DescError::BadConstituentCount,
            ),
            (
                "constituents past the end",
                |b| b[84] = 3,
                DescError::Truncated,
            ),
            (
                "unaligned constituent",
                |b| b[96] = 0x10,
                DescError::BadConstituent,
            ),
            (
                "empty constituent",
                |b| {
                    b[104] = 0;
                    b[80] = 1
                },
                DescError::BadConstituent,
            ),
            (
                "wrapping constituent",
                |b| {
                    b[96..104].copy_from_slice(&(!0xfffu64).to_le_bytes());
                },
                DescError::BadConstituent,
            ),
            (
                "overlap",
                |b| {
                    b[112..120].copy_from_slice(&0x4800_1000u64.to_le_bytes());
                },
                DescError::Overlap,
            ),
            (
                "emad reserved",
                |b| b[48 + 30] = 1,
                DescError::ReservedNotZero,
            ),
        ];
        assert_eq!(comp, 80);
        for (name, mutate, want) in cases {
            let mut b = good.clone();
            mutate(&mut b);
            assert_eq!(parse(V1_2, &b, Composite::Required), Err(*want), "{name}");
        }
        // Two receivers that disagree on the composite.
        let mut two = sample();
        two.emads.push(Emad {
            receiver: 0x8002,
            perms: DATA_RO,
            flags: 0,
        });
        let mut b = build(V1_2, &two);
        b[48 + 32 + 4] ^= 8;
        assert_eq!(
            parse(V1_2, &b, Composite::Required),
            Err(DescError::BadCompositeOffset)
        );
        // v1.0 reserved fields.
        let mut b = build(V1_0, &sample());
        b[3] = 1;
        assert_eq!(
            parse(V1_0, &b, Composite::Required),
            Err(DescError::ReservedNotZero)
        );
    }

    #[test]
    fn retrieve_requests_and_relinquish() {
        let mut req = sample();
        req.constituents.clear();
        req.handle = 0x1234;
        let b = build(V1_2, &req);
        assert_eq!(parse(V1_2, &b, Composite::Absent).unwrap(), req);
        assert_eq!(
            parse(V1_2, &b, Composite::Required),
            Err(DescError::UnexpectedComposite)
        );
        let full = build(V1_2, &sample());
        assert_eq!(
            parse(V1_2, &full, Composite::Absent),
            Err(DescError::UnexpectedComposite)
        );
        let r = Relinquish {
            handle: 7,
            flags: 0,
            endpoints: alloc::vec![0x8001],
        };
        assert_eq!(parse_relinquish(&build_relinquish(&r)).unwrap(), r);
        assert_eq!(parse_relinquish(&[0u8; 10]), Err(DescError::Truncated));
        let mut bad = build_relinquish(&r);
        bad[12] = 0;
        assert_eq!(parse_relinquish(&bad), Err(DescError::BadEmadCount));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678;
        let good = build(V1_2, &sample());
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..3 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (x >> 33) as usize % b.len();
                b[i] = (x >> 20) as u8;
            }
            let len = (x >> 40) as usize % (b.len() + 1);
            for v in [V1_0, V1_1, V1_2] {
                let _ = parse(v, &b[..len], Composite::Required);
                let _ = parse(v, &b, Composite::Absent);
            }
            let _ = parse_relinquish(&b[..len]);
        }
    }
}
