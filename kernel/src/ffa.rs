//! The normal world's side of FF-A (DEN0077A v1.2): calls over SMC, the RX/TX pair, partition
//! discovery, direct messages and memory sharing, with FF-A errors typed.
//!
//! Today it serves the `catena.ffa_selftest` initcall; the FF-A bus issue makes it the FF-A
//! core driver. Buffers are kernel heap pages, identity mapped, so their virtual address is the
//! physical address the secure world is given.

use alloc::boxed::Box;
use alloc::vec::Vec;
use ffa_abi::mem::{ATTR_NORMAL_WB_INNER, Constituent, DATA_RW, Emad, INSTR_NX, MemTxn};
use ffa_abi::partinfo::PartitionDesc;
use ffa_abi::{FfaError, PAGE, Uuid, V1_2, Version, fid};

/// One 4 KiB page, aligned.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

/// Pages from the heap.
pub fn pages(n: usize) -> Box<[Page]> {
    (0..n).map(|_| Page([0; 4096])).collect()
}

/// The physical (= virtual) address of a page run.
pub fn pa(p: &[Page]) -> u64 {
    p.as_ptr() as u64
}

/// An FF-A call: x0 = function ID, x1..x17 arguments; all of x0–x17 back.
pub fn call(x: [u64; 18]) -> [u64; 18] {
    let mut args = [0u64; 17];
    args.copy_from_slice(&x[1..]);
    smccc::smc64(x[0] as u32, args)
}

fn check(r: [u64; 18]) -> Result<[u64; 18], FfaError> {
    if r[0] == u64::from(fid::ERROR) {
        Err(FfaError::try_from(r[2] as u32 as i32).unwrap_or(FfaError::NotSupported))
    } else {
        Ok(r)
    }
}

fn regs(v: &[u64]) -> [u64; 18] {
    let mut x = [0u64; 18];
    x[..v.len()].copy_from_slice(v);
    x
}

/// An FF-A session: the negotiated version and the RX/TX pair.
pub struct Ffa {
    /// Version both sides use.
    pub version: Version,
    /// Our endpoint ID.
    pub id: u16,
    tx: Box<[Page]>,
    rx: Box<[Page]>,
}

impl Ffa {
    /// FFA_VERSION(1.2), FFA_ID_GET, and FFA_RXTX_MAP of a fresh one-page pair.
    pub fn open() -> Result<Ffa, FfaError> {
        let r = call(regs(&[
            fid::VERSION as u64,
            u64::from(ffa_abi::version_word(V1_2)),
        ]));
        if r[0] == ffa_abi::VERSION_NOT_SUPPORTED {
            return Err(FfaError::NotSupported);
        }
        let theirs = ffa_abi::parse_version(r[0] as u32).ok_or(FfaError::NotSupported)?;
        if theirs.0 != 1 {
            return Err(FfaError::NotSupported);
        }
        let version = if theirs > V1_2 { V1_2 } else { theirs };
        let id = check(call(regs(&[fid::ID_GET as u64])))?[2] as u16;
        let (tx, rx) = (pages(1), pages(1));
        check(call(regs(&[fid::RXTX_MAP64 as u64, pa(&tx), pa(&rx), 1])))?;
        Ok(Ffa {
            version,
            id,
            tx,
            rx,
        })
    }

    /// FFA_PARTITION_INFO_GET for `uuid` (Nil: all), through RX, which is released after.
    pub fn partitions(&mut self, uuid: &Uuid) -> Result<Vec<PartitionDesc>, FfaError> {
        let w = ffa_abi::uuid_to_words(uuid);
        let r = check(call(regs(&[
            fid::PARTITION_INFO_GET as u64,
            w[0].into(),
            w[1].into(),
            w[2].into(),
            w[3].into(),
            0,
        ])))?;
        let (count, size) = (r[2] as usize, r[3] as usize);
        let size = if self.version < ffa_abi::V1_1 {
            8
        } else {
            size
        };
        let descs = ffa_abi::partinfo::decode(&self.rx[0].0, count, size);
        check(call(regs(&[fid::RX_RELEASE as u64])))?;
        descs
    }

    /// FFA_MSG_SEND_DIRECT_REQ (64-bit) with x3–x7.
    pub fn direct_req(&self, dst: u16, args: [u64; 5]) -> Result<[u64; 5], FfaError> {
        let mut x = regs(&[
            fid::DIRECT_REQ64 as u64,
            (u64::from(self.id) << 16) | u64::from(dst),
        ]);
        x[3..8].copy_from_slice(&args);
        let r = check(call(x))?;
        if r[0] != u64::from(fid::DIRECT_RESP64) {
            return Err(FfaError::Aborted);
        }
        Ok(core::array::from_fn(|i| r[3 + i]))
    }

    /// FFA_MSG_SEND_DIRECT_REQ2 to service `uuid` with x4–x17.
    pub fn direct_req2(
        &self,
        dst: u16,
        uuid: &Uuid,
        args: [u64; 14],
    ) -> Result<[u64; 14], FfaError> {
        let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
        let mut x = regs(&[
            fid::DIRECT_REQ2 as u64,
            (u64::from(self.id) << 16) | u64::from(dst),
            lo,
            hi,
        ]);
        x[4..18].copy_from_slice(&args);
        let r = check(call(x))?;
        if r[0] != u64::from(fid::DIRECT_RESP2) {
            return Err(FfaError::Aborted);
        }
        Ok(core::array::from_fn(|i| r[4 + i]))
    }

    /// FFA_MEM_SHARE (64-bit) of `mem` with `to`, read-write, not executable; the handle.
    pub fn share(&mut self, to: u16, mem: &[Page]) -> Result<u64, FfaError> {
        self.share_raw(to, pa(mem), mem.len() as u32)
    }

    /// FFA_MEM_SHARE (64-bit) of `pages` pages at physical `address` (which need not be the
    /// kernel's: probes use it to prove the hyp refuses).
    pub fn share_raw(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
        self.send(false, to, address, pages)
    }

    /// FFA_MEM_LEND (64-bit) of `pages` pages at `address`: the kernel loses access until it
    /// reclaims them (the hyp's stage-2 enforces it).
    pub fn lend_raw(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
        self.send(true, to, address, pages)
    }

    fn send(&mut self, lend: bool, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
        let desc = ffa_abi::mem::build(
            self.version,
            &MemTxn {
                sender: self.id,
                // A lender leaves the attributes to the borrower (DEN0077A v1.1 §10.10.4).
                attributes: if lend { 0 } else { ATTR_NORMAL_WB_INNER },
                emads: alloc::vec![Emad {
                    receiver: to,
                    perms: DATA_RW | INSTR_NX,
                    flags: 0
                }],
                constituents: alloc::vec![Constituent { address, pages }],
                ..MemTxn::default()
            },
        );
        if desc.len() as u64 > PAGE {
            return Err(FfaError::NoMemory);
        }
        self.tx[0].0[..desc.len()].copy_from_slice(&desc);
        let n = desc.len() as u64;
        let f = if lend {
            fid::MEM_LEND64
        } else {
            fid::MEM_SHARE64
        };
        let r = check(call(regs(&[f as u64, n, n])))?;
        Ok((r[2] & 0xffff_ffff) | (r[3] << 32))
    }

    /// FFA_MEM_RECLAIM.
    pub fn reclaim(&self, handle: u64) -> Result<(), FfaError> {
        check(call(regs(&[
            fid::MEM_RECLAIM as u64,
            handle & 0xffff_ffff,
            handle >> 32,
            0,
        ])))
        .map(|_| ())
    }
}

impl Drop for Ffa {
    fn drop(&mut self) {
        // The secure world must stop using the buffers before they go back to the heap.
        let _ = check(call(regs(&[fid::RXTX_UNMAP as u64])));
    }
}
