//! A power-cut-safe store of UEFI variables on NOR flash (the secure flash the firmware owns).
//!
//! Owns: the on-flash format, and the promise that a [`Store::set`] or [`Store::delete`]
//! either happened completely or not at all, whatever program or erase step the power stops
//! at; that damage from outside (flipped bytes) is detected by digests, reported in the
//! [`Recovery`] and never trusted. Must not: know UEFI's rules (attributes, authentication,
//! who may write what): that is the variable service's job; it stores what it is given.
//!
//! # Format
//!
//! The region is two equal banks of whole erase blocks. One bank is live: the valid bank
//! header with the highest sequence number. After its 64-byte header come records, each
//! 8-byte aligned, appended in order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `VR` |
//! | 2 | 1 | state: 0xFF written, bit 7 cleared = committed, bit 6 cleared too = deleted |
//! | 3 | 1 | 0xFF |
//! | 4 | 4 | name length (UTF-16LE bytes with the NUL), little-endian |
//! | 8 | 4 | data length |
//! | 12 | 4 | attributes |
//! | 16 | 16 | vendor GUID |
//! | 32 | 16 | timestamp (`EFI_TIME` of the last authenticated write, else zero) |
//! | 48 | 16 | SHA-256 of bytes 0..2 and 4..48, first 16 bytes |
//! | 64 | 16 | SHA-256 of name ‖ data, first 16 bytes |
//! | 80 | | name, data, padding to 8 (left erased) |
//!
//! NOR flash programs bits from 1 to 0 only, and a single-bit change is the one write that
//! cannot tear. So a write appends the whole record with state 0xFF, then clears bit 7 (the
//! commit), then clears bit 6 of the version it replaces. At open, a record that is not
//! committed ends the scan (it can only be the last, cut mid-write); two committed versions
//! of one variable (cut between the commit and the delete) resolve to the later.
//!
//! When the live bank is full, or its tail is damaged, the live variables are copied to the
//! other bank (erased and checked blank first) and that bank's header, with the next
//! sequence number, is programmed last: the commit of the copy. The old bank's header is
//! then retired (its magic programmed to zero) and the bank erased, so damage to the new
//! header can never bring old values back.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

use alloc::vec;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// The flash region the store owns, by offset from its start.
pub trait Flash {
    /// Bytes in the region (both banks).
    fn size(&self) -> u32;
    /// The erase-block size; the region is a whole, even number of blocks.
    fn block_size(&self) -> u32;
    /// Reads `buf.len()` bytes at `off`.
    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError>;
    /// Programs `data` at `off`; bits only go from 1 to 0.
    fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError>;
    /// Erases the block that starts at `off` to all ones.
    fn erase(&mut self, off: u32) -> Result<(), FlashError>;
}

impl<T: Flash + ?Sized> Flash for &mut T {
    fn size(&self) -> u32 {
        (**self).size()
    }
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        (**self).read(off, buf)
    }
    fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError> {
        (**self).program(off, data)
    }
    fn erase(&mut self, off: u32) -> Result<(), FlashError> {
        (**self).erase(off)
    }
}

/// Why the flash did not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashError {
    /// The device reported an error (what its status said).
    Device(&'static str),
    /// An access outside the region.
    Range,
    /// The power went (the simulation's cut): nothing more reaches the flash.
    PowerCut,
}

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The flash failed; the operation may not have happened (it did not half-happen).
    Flash(FlashError),
    /// The live variables and this one do not fit one bank.
    NoSpace,
    /// The record is larger than a bank could ever hold, or its name is not a UTF-16 string
    /// with a terminating NUL.
    Invalid(&'static str),
    /// The region's geometry cannot hold two banks.
    Geometry(&'static str),
}

impl From<FlashError> for StoreError {
    fn from(e: FlashError) -> StoreError {
        StoreError::Flash(e)
    }
}

/// One variable as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    /// The vendor GUID, in its on-the-wire (EFI_GUID, mixed-endian) byte order.
    pub guid: [u8; 16],
    /// The name: UTF-16LE code units with the terminating NUL.
    pub name: Vec<u8>,
    /// The UEFI attributes.
    pub attrs: u32,
    /// `EFI_TIME` of the last time-based authenticated write; zero otherwise.
    pub time: [u8; 16],
    /// The value.
    pub data: Vec<u8>,
}

impl Var {
    fn key_eq(&self, guid: &[u8; 16], name: &[u8]) -> bool {
        self.guid == *guid && self.name == name
    }
}

/// What [`Store::open`] found and did, for the firmware to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The live bank (0 or 1) and its sequence number.
    pub bank: u8,
    /// Its sequence number.
    pub seq: u32,
    /// Variables found.
    pub vars: usize,
    /// No valid bank: the store starts empty.
    pub formatted: bool,
    /// ... and that was because the region was blank (a first boot: erased, or never
    /// written), not damage.
    pub blank: bool,
    /// A write the power cut was found (an uncommitted record at the tail) and dropped.
    pub torn: bool,
    /// Structures that failed their digests or made no sense (damage from outside; each
    /// one dropped, never trusted).
    pub corrupt: usize,
    /// Variables found committed twice (cut between a commit and the delete of the old
    /// version): the later was kept.
    pub superseded: usize,
    /// The live variables were copied to a fresh bank to leave the damage behind.
    pub compacted: bool,
}

const BANK_MAGIC: [u8; 8] = *b"CATVARS1";
const BANK_HDR: u32 = 64;
const REC_MAGIC: [u8; 2] = *b"VR";
const REC_HDR: u32 = 80;
const ALIGN: u32 = 8;
const STATE: u32 = 2;
const COMMITTED: u8 = 0x7f;
const DELETED: u8 = 0x3f;
const BLANK: u8 = 0xff;

fn digest16(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn record_len(name: usize, data: usize) -> Option<u32> {
    let n = (REC_HDR as usize).checked_add(name)?.checked_add(data)?;
    let n = n.checked_add(ALIGN as usize - 1)? & !(ALIGN as usize - 1);
    u32::try_from(n).ok()
}

/// A valid name: UTF-16LE, at least the NUL, ending in it, no NUL before it.
fn name_ok(name: &[u8]) -> bool {
    if name.len() < 2 || !name.len().is_multiple_of(2) {
        return false;
    }
    let units = name.len() / 2;
    name.chunks_exact(2)
        .enumerate()
        .all(|(i, c)| (c == [0, 0]) == (i == units - 1))
}

/// The record's bytes, state 0xFF.
fn encode(v: &Var) -> Vec<u8> {
    let len = record_len(v.name.len(), v.data.len()).unwrap_or(0) as usize;
    let mut r = vec![BLANK; len];
    r[0..2].copy_from_slice(&REC_MAGIC);
    r[4..8].copy_from_slice(&(v.name.len() as u32).to_le_bytes());
    r[8..12].copy_from_slice(&(v.data.len() as u32).to_le_bytes());
    r[12..16].copy_from_slice(&v.attrs.to_le_bytes());
    r[16..32].copy_from_slice(&v.guid);
    r[32..48].copy_from_slice(&v.time);
    let hd = digest16(&[&r[0..2], &r[4..48]]);
    r[48..64].copy_from_slice(&hd);
    r[64..80].copy_from_slice(&digest16(&[&v.name, &v.data]));
    let n = REC_HDR as usize;
    r[n..n + v.name.len()].copy_from_slice(&v.name);
    r[n + v.name.len()..n + v.name.len() + v.data.len()].copy_from_slice(&v.data);
    r
}

fn bank_header(seq: u32, bank_size: u32) -> [u8; BANK_HDR as usize] {
    let mut h = [0u8; BANK_HDR as usize];
    h[0..8].copy_from_slice(&BANK_MAGIC);
    h[8..12].copy_from_slice(&seq.to_le_bytes());
    h[12..16].copy_from_slice(&bank_size.to_le_bytes());
    let d = Sha256::digest(&h[0..32]);
    h[32..64].copy_from_slice(&d);
    h
}

enum Header {
    Valid(u32),
    Blank,
    Invalid,
}

/// The store, open on its flash.
pub struct Store<F: Flash> {
    flash: F,
    bank_size: u32,
    bank: u8,
    seq: u32,
    /// Where the next record goes, from the live bank's start.
    tail: u32,
    /// The live variables, each with its record's offset in the live bank.
    vars: Vec<(Var, u32)>,
    /// A write failed part-way (device error): compact before the next one.
    dirty: bool,
}

impl<F: Flash> Store<F> {
    /// Opens the store: finds the live bank, checks every record, finishes or drops what a
    /// power cut interrupted, and formats a region that holds no valid bank.
    pub fn open(mut flash: F) -> Result<(Store<F>, Recovery), StoreError> {
        let size = flash.size();
        let block = flash.block_size();
        if block == 0 || !size.is_multiple_of(block) || !(size / block).is_multiple_of(2) {
            return Err(StoreError::Geometry(
                "the region is not an even number of blocks",
            ));
        }
        let bank_size = size / 2;
        if bank_size < BANK_HDR + REC_HDR + 64 {
            return Err(StoreError::Geometry("a bank cannot hold a record"));
        }
        let mut rec = Recovery::default();
        let h = [
            Self::header(&mut flash, 0, bank_size)?,
            Self::header(&mut flash, bank_size, bank_size)?,
        ];
        let live = match (&h[0], &h[1]) {
            // Serial-number order (RFC 1982): a wrapped sequence number still wins.
            (Header::Valid(a), Header::Valid(b)) => Some(u8::from((b.wrapping_sub(*a) as i32) > 0)),
            (Header::Valid(_), _) => Some(0),
            (_, Header::Valid(_)) => Some(1),
            _ => None,
        };
        let mut s = Store {
            flash,
            bank_size,
            bank: 0,
            seq: 0,
            tail: BANK_HDR,
            vars: Vec::new(),
            dirty: false,
        };
        match live {
            None => {
                rec.formatted = true;
                rec.blank = matches!(h, [Header::Blank, Header::Blank]);
                rec.corrupt += h.iter().filter(|h| matches!(h, Header::Invalid)).count();
                s.write_bank(0, 1, &[])?;
                s.bank = 0;
                s.seq = 1;
            }
            Some(b) => {
                s.bank = b;
                s.seq = match h[usize::from(b)] {
                    Header::Valid(q) => q,
                    _ => 0,
                };
                s.scan(&mut rec)?;
            }
        }
        if s.dirty {
            s.compact()?;
            rec.compacted = true;
        }
        rec.bank = s.bank;
        rec.seq = s.seq;
        rec.vars = s.vars.len();
        Ok((s, rec))
    }

    fn header(flash: &mut F, at: u32, bank_size: u32) -> Result<Header, FlashError> {
        let mut h = [0u8; BANK_HDR as usize];
        flash.read(at, &mut h)?;
        // Erased NOR reads all ones; QEMU's flash without a backing drive starts all zeros.
        // Neither is a header this store ever wrote (a retired one keeps its digest).
        if h.iter().all(|&b| b == BLANK) || h.iter().all(|&b| b == 0) {
            return Ok(Header::Blank);
        }
        let d = Sha256::digest(&h[0..32]);
        if h[0..8] != BANK_MAGIC || h[32..64] != d[..] || le32(&h, 12) != bank_size {
            return Ok(Header::Invalid);
        }
        Ok(Header::Valid(le32(&h, 8)))
    }

    fn base(&self) -> u32 {
        u32::from(self.bank) * self.bank_size
    }

    /// Reads the live bank's records into `vars`; damage and torn tails set `dirty`.
    fn scan(&mut self, rec: &mut Recovery) -> Result<(), FlashError> {
        let base = self.base();
        let mut off = BANK_HDR;
        let mut stale: Vec<u32> = Vec::new();
        let mut hdr = [0u8; REC_HDR as usize];
        // An uncommitted record is a torn write only if nothing follows it.
        let mut uncommitted = false;
        let mut stopped = false;
        while off + REC_HDR <= self.bank_size {
            self.flash.read(base + off, &mut hdr)?;
            if hdr.iter().all(|&b| b == BLANK) {
                break;
            }
            if uncommitted {
                // Something after an uncommitted record: it was not the last write, so it
                // is damage (a flipped commit bit), not a cut.
                rec.corrupt += 1;
                uncommitted = false;
            }
            let hd = digest16(&[&hdr[0..2], &hdr[4..48]]);
            let (nl, dl) = (le32(&hdr, 4) as usize, le32(&hdr, 8) as usize);
            let len = record_len(nl, dl)
                .filter(|l| off.checked_add(*l).is_some_and(|e| e <= self.bank_size));
            let (true, Some(len)) = (
                hdr[0..2] == REC_MAGIC && hdr[3] == BLANK && hdr[48..64] == hd,
                len,
            ) else {
                // A header that does not check out: cut mid-header if never committed,
                // else damage. Its length is not trusted: the scan ends here.
                if hdr[STATE as usize] == BLANK {
                    rec.torn = true;
                } else {
                    rec.corrupt += 1;
                }
                self.dirty = true;
                stopped = true;
                break;
            };
            let mut payload = vec![0u8; len as usize - REC_HDR as usize];
            self.flash.read(base + off + REC_HDR, &mut payload)?;
            let (name, rest) = payload.split_at(nl);
            let (data, pad) = rest.split_at(dl);
            match hdr[STATE as usize] {
                BLANK => {
                    // Dropped: it never took effect.
                    uncommitted = true;
                    self.dirty = true;
                }
                COMMITTED | DELETED if hdr[64..80] != digest16(&[name, data]) || !name_ok(name) => {
                    // The header (with its length) checked out: skip just this record.
                    rec.corrupt += 1;
                    self.dirty = true;
                }
                COMMITTED => {
                    if pad.iter().any(|&b| b != BLANK) {
                        // The record itself checked out; the damage is reported and left
                        // behind by the compaction.
                        rec.corrupt += 1;
                        self.dirty = true;
                    }
                    let mut guid = [0u8; 16];
                    guid.copy_from_slice(&hdr[16..32]);
                    let mut time = [0u8; 16];
                    time.copy_from_slice(&hdr[32..48]);
                    let v = Var {
                        guid,
                        name: name.to_vec(),
                        attrs: le32(&hdr, 12),
                        time,
                        data: data.to_vec(),
                    };
                    if let Some(i) = self
                        .vars
                        .iter()
                        .position(|(o, _)| o.key_eq(&v.guid, &v.name))
                    {
                        rec.superseded += 1;
                        let (_, old) = self.vars.remove(i);
                        stale.push(old);
                    }
                    self.vars.push((v, off));
                }
                DELETED => {}
                _ => {
                    // Not a state this store writes.
                    rec.corrupt += 1;
                    self.dirty = true;
                }
            }
            off += len;
        }
        if uncommitted {
            rec.torn = true;
        }
        self.tail = off;
        // Everything after the tail must be erased, or the next append would land on it.
        let mut chunk = [0u8; 256];
        let mut at = off;
        while !stopped && at < self.bank_size {
            let n = (self.bank_size - at).min(chunk.len() as u32);
            self.flash.read(base + at, &mut chunk[..n as usize])?;
            if chunk[..n as usize].iter().any(|&b| b != BLANK) {
                rec.corrupt += 1;
                self.dirty = true;
                break;
            }
            at += n;
        }
        if !self.dirty {
            // Finish the deletes the power cut (each a single bit).
            for o in stale {
                self.flash.program(base + o + STATE, &[DELETED])?;
            }
        }
        Ok(())
    }

    /// Erases bank `b`, checks it blank, writes `vars` committed and then the header with
    /// `seq`: the bank is valid only once every record is in.
    fn write_bank(&mut self, b: u8, seq: u32, vars: &[Var]) -> Result<Vec<u32>, FlashError> {
        let base = u32::from(b) * self.bank_size;
        let block = self.flash.block_size();
        let mut at = 0;
        while at < self.bank_size {
            self.flash.erase(base + at)?;
            at += block;
        }
        let mut chunk = [0u8; 256];
        let mut at = 0;
        while at < self.bank_size {
            let n = (self.bank_size - at).min(chunk.len() as u32);
            self.flash.read(base + at, &mut chunk[..n as usize])?;
            if chunk[..n as usize].iter().any(|&b| b != BLANK) {
                return Err(FlashError::Device("erase left the bank not blank"));
            }
            at += n;
        }
        let mut off = BANK_HDR;
        let mut offs = Vec::with_capacity(vars.len());
        for v in vars {
            let mut r = encode(v);
            r[STATE as usize] = COMMITTED;
            self.flash.program(base + off, &r)?;
            offs.push(off);
            off += r.len() as u32;
        }
        self.flash
            .program(base, &bank_header(seq, self.bank_size))?;
        Ok(offs)
    }

    /// Copies the live variables to the other bank and makes it live.
    fn compact(&mut self) -> Result<(), FlashError> {
        let from = self.bank;
        let to = 1 - from;
        let seq = self.seq.wrapping_add(1);
        let vars: Vec<Var> = self.vars.iter().map(|(v, _)| v.clone()).collect();
        let offs = self.write_bank(to, seq, &vars)?;
        let mut tail = BANK_HDR;
        for ((_, o), n) in self.vars.iter_mut().zip(offs) {
            *o = n;
        }
        for (v, _) in &self.vars {
            tail += record_len(v.name.len(), v.data.len()).unwrap_or(0);
        }
        self.bank = to;
        self.seq = seq;
        self.tail = tail;
        self.dirty = false;
        // Retire the old bank: its magic to zero, then erase it. A cut here leaves a bank
        // that is invalid or older, never one that could win.
        let old = u32::from(from) * self.bank_size;
        self.flash.program(old, &[0u8; 8])?;
        let block = self.flash.block_size();
        let mut at = 0;
        while at < self.bank_size {
            self.flash.erase(old + at)?;
            at += block;
        }
        Ok(())
    }

    /// The live variables, in the order they were last written.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.vars.iter().map(|(v, _)| v)
    }

    /// The variable `name` (UTF-16LE with NUL) of vendor `guid`.
    pub fn get(&self, guid: &[u8; 16], name: &[u8]) -> Option<&Var> {
        self.vars().find(|v| v.key_eq(guid, name))
    }

    /// Bytes of a bank that records can use.
    pub fn capacity(&self) -> u32 {
        self.bank_size - BANK_HDR
    }

    /// Bytes the live variables' records take.
    pub fn used(&self) -> u32 {
        self.vars
            .iter()
            .map(|(v, _)| record_len(v.name.len(), v.data.len()).unwrap_or(u32::MAX))
            .fold(0u32, u32::saturating_add)
    }

    /// The record size a variable with these lengths takes (`None` if it overflows).
    pub fn record_size(name: usize, data: usize) -> Option<u32> {
        record_len(name, data)
    }

    /// Stores `v`, replacing the variable with its GUID and name: on return `Ok`, the new
    /// value is committed; on any error (a power cut included) the old value stands.
    pub fn set(&mut self, v: Var) -> Result<(), StoreError> {
        if !name_ok(&v.name) {
            return Err(StoreError::Invalid("name is not NUL-terminated UTF-16"));
        }
        let need = record_len(v.name.len(), v.data.len())
            .filter(|n| *n <= self.capacity())
            .ok_or(StoreError::Invalid("larger than a bank"))?;
        if self.dirty || self.tail + need > self.bank_size {
            self.compact()?;
            if self.tail + need > self.bank_size {
                return Err(StoreError::NoSpace);
            }
        }
        let base = self.base();
        let at = self.tail;
        // From here until the commit, a failure leaves bytes after the tail: compact first
        // next time.
        self.dirty = true;
        self.flash.program(base + at, &encode(&v))?;
        self.flash.program(base + at + STATE, &[COMMITTED])?;
        self.tail = at + need;
        self.dirty = false;
        let old = self
            .vars
            .iter()
            .position(|(o, _)| o.key_eq(&v.guid, &v.name));
        self.vars.push((v, at));
        if let Some(i) = old {
            let (_, o) = self.vars.remove(i);
            // A cut before this bit: two committed versions, the later wins at open.
            self.flash.program(base + o + STATE, &[DELETED])?;
        }
        Ok(())
    }

    /// Deletes the variable (one bit: it happens or it does not). `Ok(false)` if absent.
    pub fn delete(&mut self, guid: &[u8; 16], name: &[u8]) -> Result<bool, StoreError> {
        let Some(i) = self.vars.iter().position(|(v, _)| v.key_eq(guid, name)) else {
            return Ok(false);
        };
        let o = self.vars[i].1;
        let base = self.base();
        self.flash.program(base + o + STATE, &[DELETED])?;
        self.vars.remove(i);
        Ok(true)
    }

    /// The flash, back (tests: the image after a power cut).
    pub fn into_flash(self) -> F {
        self.flash
    }
}

#[cfg(test)]
mod tests;
