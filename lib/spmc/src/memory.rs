//! Memory transactions after the send: the SPMC's records, and what a partition may do with
//! memory shared with it (retrieve, read/write within it, relinquish) — through real retrieve
//! and relinquish descriptors, so the partition side exercises the same formats.

use crate::NsMemory;
use alloc::vec::Vec;
use ffa_abi::mem::{self, Composite, Constituent, Emad, MemTxn, Relinquish};
use ffa_abi::{FfaError, NS_ID, PAGE, V1_2};

/// One outstanding transaction.
#[derive(Debug)]
pub(crate) struct Txn {
    pub handle: u64,
    pub txn: MemTxn,
    pub lend: bool,
    /// (receiver, outstanding retrievals).
    pub retrieved: Vec<(u16, u32)>,
}

/// All outstanding transactions.
#[derive(Debug, Default)]
pub(crate) struct MemState {
    txns: Vec<Txn>,
    next: u64,
}

/// Transaction type in retrieve flags bits 4:3 (DEN0077A v1.1 table 10.14).
const TYPE_SHARE: u32 = 1 << 3;
const TYPE_LEND: u32 = 2 << 3;
const TYPE_MASK: u32 = 3 << 3;

impl MemState {
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// Records a validated send and returns its handle (bit 63 clear: allocated by the SPMC).
    pub fn insert(&mut self, mut txn: MemTxn, lend: bool) -> u64 {
        self.next += 1;
        let handle = self.next & !(1 << 63);
        txn.handle = handle;
        let retrieved = txn.emads.iter().map(|e| (e.receiver, 0)).collect();
        self.txns.push(Txn {
            handle,
            txn,
            lend,
            retrieved,
        });
        handle
    }

    pub fn get(&self, handle: u64) -> Option<&Txn> {
        self.txns.iter().find(|t| t.handle == handle)
    }

    pub fn remove(&mut self, handle: u64) -> Option<Txn> {
        let i = self.txns.iter().position(|t| t.handle == handle)?;
        Some(self.txns.remove(i))
    }

    /// Whether any constituent overlaps memory of an outstanding transaction.
    pub fn overlaps(&self, cs: &[Constituent]) -> bool {
        self.txns.iter().flat_map(|t| &t.txn.constituents).any(|o| {
            cs.iter().any(|c| {
                let (ce, oe) = (c.end().unwrap_or(u64::MAX), o.end().unwrap_or(u64::MAX));
                c.address < oe && o.address < ce
            })
        })
    }

    /// FFA_MEM_RETRIEVE_REQ from partition `me`: a retrieve request descriptor in, the
    /// retrieve response descriptor out.
    pub fn retrieve_req(&mut self, me: u16, req: &[u8]) -> Result<Vec<u8>, FfaError> {
        let r =
            mem::parse(V1_2, req, Composite::Absent).map_err(|_| FfaError::InvalidParameters)?;
        let t = self
            .txns
            .iter_mut()
            .find(|t| t.handle == r.handle)
            .ok_or(FfaError::InvalidParameters)?;
        if r.sender != t.txn.sender || r.emads.len() != 1 || r.emads[0].receiver != me {
            return Err(FfaError::InvalidParameters);
        }
        let want = match r.flags & TYPE_MASK {
            0 => None,
            TYPE_SHARE => Some(false),
            TYPE_LEND => Some(true),
            _ => return Err(FfaError::InvalidParameters),
        };
        if r.flags & !TYPE_MASK != 0 || want.is_some_and(|l| l != t.lend) {
            return Err(FfaError::InvalidParameters);
        }
        let granted = *t
            .txn
            .emads
            .iter()
            .find(|e| e.receiver == me)
            .ok_or(FfaError::Denied)?;
        // Asking for more data access than granted (RW when RO was given) is refused.
        let asked = r.emads[0].perms & 3;
        if asked != 0 && asked > (granted.perms & 3) {
            return Err(FfaError::Denied);
        }
        let slot = t
            .retrieved
            .iter_mut()
            .find(|(id, _)| *id == me)
            .ok_or(FfaError::Denied)?;
        slot.1 += 1;
        let resp = MemTxn {
            flags: if t.lend { TYPE_LEND } else { TYPE_SHARE },
            emads: alloc::vec![Emad {
                receiver: me,
                perms: granted.perms,
                flags: 0
            }],
            ..t.txn.clone()
        };
        Ok(mem::build(V1_2, &resp))
    }

    /// FFA_MEM_RELINQUISH from partition `me`.
    pub fn relinquish(&mut self, me: u16, desc: &[u8]) -> Result<(), FfaError> {
        let r = mem::parse_relinquish(desc).map_err(|_| FfaError::InvalidParameters)?;
        if r.endpoints != [me] || r.flags != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let t = self
            .txns
            .iter_mut()
            .find(|t| t.handle == r.handle)
            .ok_or(FfaError::InvalidParameters)?;
        let slot = t
            .retrieved
            .iter_mut()
            .find(|(id, _)| *id == me)
            .ok_or(FfaError::Denied)?;
        if slot.1 == 0 {
            return Err(FfaError::Denied);
        }
        slot.1 -= 1;
        Ok(())
    }
}

/// Memory a partition retrieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retrieved {
    /// Handle.
    pub handle: u64,
    /// The memory.
    pub constituents: Vec<Constituent>,
    /// Access granted ([`ffa_abi::mem::DATA_RW`] etc.).
    pub perms: u8,
}

impl Retrieved {
    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.constituents
            .iter()
            .map(|c| u64::from(c.pages) * PAGE)
            .sum()
    }

    /// Whether it covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a partition may do with memory shared with it.
pub trait MemAccess {
    /// FFA_MEM_RETRIEVE_REQ/RESP for `handle`.
    fn retrieve(&mut self, handle: u64) -> Result<Retrieved, FfaError>;
    /// Reads at `offset` into the retrieved memory.
    fn read(&mut self, handle: u64, offset: u64, buf: &mut [u8]) -> Result<(), FfaError>;
    /// Writes at `offset` into the retrieved memory (read-write access required).
    fn write(&mut self, handle: u64, offset: u64, data: &[u8]) -> Result<(), FfaError>;
    /// FFA_MEM_RELINQUISH.
    fn relinquish(&mut self, handle: u64) -> Result<(), FfaError>;
}

/// The SPMC's state as one partition sees it during a call.
pub(crate) struct PartitionCtx<'a, M: NsMemory> {
    pub me: u16,
    pub state: &'a mut MemState,
    pub mem: &'a mut M,
}

impl<M: NsMemory> PartitionCtx<'_, M> {
    /// The transaction, if `me` holds a retrieval of it.
    fn held(&self, handle: u64) -> Result<&Txn, FfaError> {
        let t = self.state.get(handle).ok_or(FfaError::InvalidParameters)?;
        match t.retrieved.iter().find(|(id, _)| *id == self.me) {
            Some((_, n)) if *n > 0 => Ok(t),
            _ => Err(FfaError::Denied),
        }
    }

    /// Splits `[offset, offset + len)` of a transaction's memory into physical pieces.
    fn pieces(t: &Txn, offset: u64, len: u64) -> Result<Vec<(u64, u64, usize)>, FfaError> {
        let total: u64 = t
            .txn
            .constituents
            .iter()
            .map(|c| u64::from(c.pages) * PAGE)
            .sum();
        let end = offset.checked_add(len).ok_or(FfaError::InvalidParameters)?;
        if end > total {
            return Err(FfaError::InvalidParameters);
        }
        let mut out = Vec::new();
        let (mut base, mut done) = (0u64, 0usize);
        for c in &t.txn.constituents {
            let clen = u64::from(c.pages) * PAGE;
            let s = offset.max(base);
            let e = end.min(base + clen);
            if s < e {
                out.push((c.address + (s - base), e - s, done));
                done += (e - s) as usize;
            }
            base += clen;
        }
        Ok(out)
    }
}

impl<M: NsMemory> MemAccess for PartitionCtx<'_, M> {
    fn retrieve(&mut self, handle: u64) -> Result<Retrieved, FfaError> {
        let owner = self.state.get(handle).map_or(NS_ID, |t| t.txn.sender);
        let req = MemTxn {
            sender: owner,
            handle,
            emads: alloc::vec![Emad {
                receiver: self.me,
                perms: 0,
                flags: 0
            }],
            ..MemTxn::default()
        };
        let resp = self.state.retrieve_req(self.me, &mem::build(V1_2, &req))?;
        let t = mem::parse(V1_2, &resp, Composite::Required).map_err(|_| FfaError::Aborted)?;
        Ok(Retrieved {
            handle,
            constituents: t.constituents,
            perms: t.emads[0].perms,
        })
    }

    fn read(&mut self, handle: u64, offset: u64, buf: &mut [u8]) -> Result<(), FfaError> {
        let t = self.held(handle)?;
        for (pa, len, at) in Self::pieces(t, offset, buf.len() as u64)? {
            self.mem.read(pa, &mut buf[at..at + len as usize]);
        }
        Ok(())
    }

    fn write(&mut self, handle: u64, offset: u64, data: &[u8]) -> Result<(), FfaError> {
        let t = self.held(handle)?;
        let perms = t
            .txn
            .emads
            .iter()
            .find(|e| e.receiver == self.me)
            .map_or(0, |e| e.perms);
        if perms & 3 != mem::DATA_RW {
            return Err(FfaError::Denied);
        }
        for (pa, len, at) in Self::pieces(t, offset, data.len() as u64)? {
            self.mem.write(pa, &data[at..at + len as usize]);
        }
        Ok(())
    }

    fn relinquish(&mut self, handle: u64) -> Result<(), FfaError> {
        let desc = mem::build_relinquish(&Relinquish {
            handle,
            flags: 0,
            endpoints: alloc::vec![self.me],
        });
        self.state.relinquish(self.me, &desc)
    }
}
