//! The normal world's side of FF-A (DEN0077A v1.2): the conduit, the session (negotiated
//! version, RX/TX pair, what the instance supports), partition discovery, direct messages and
//! memory sharing, with FF-A errors typed. The decisions live in `lib/ffa-core`; this module
//! makes the calls. The FF-A core driver (`ffa_bus.rs`) opens the one session every FF-A
//! driver uses. Buffers are kernel heap pages, identity mapped, so their virtual address is
//! the physical address the other side is given.

use alloc::boxed::Box;
use alloc::vec::Vec;
use dtinfo::PsciMethod;
use ffa_abi::mem::{ATTR_NORMAL_WB_INNER, Constituent, DATA_RW, Emad, INSTR_NX, MemTxn};
use ffa_abi::partinfo::PartitionDesc;
use ffa_abi::{FfaError, PAGE, Uuid, V1_1, V1_2, Version, fid};
use ffa_core::{Form, Negotiated};

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

/// An SMCCC call on the conduit the DT gives PSCI (as Linux's arm_ffa uses
/// `arm_smccc_1_1_get_conduit()`): x0 = function ID, x1..x17; all of x0–x17 back. No conduit:
/// SMCCC NOT_SUPPORTED.
pub fn call(x: [u64; 18]) -> [u64; 18] {
    let mut args = [0u64; 17];
    args.copy_from_slice(&x[1..]);
    match crate::psci::method() {
        Some(PsciMethod::Smc) => smccc::smc64(x[0] as u32, args),
        Some(PsciMethod::Hvc) => smccc::hvc64(x[0] as u32, args),
        None => {
            let mut r = [0u64; 18];
            r[0] = u64::MAX;
            r
        }
    }
}

/// SMCCC_VERSION on the conduit, if PSCI says it is implemented (DEN0028 §7.2).
pub fn smccc_version() -> Option<u32> {
    const PSCI_FEATURES: u64 = 0x8400_000a;
    const SMCCC_VERSION: u64 = 0x8000_0000;
    if call(regs(&[PSCI_FEATURES, SMCCC_VERSION]))[0] as u32 as i32 != 0 {
        return None;
    }
    Some(call(regs(&[SMCCC_VERSION]))[0] as u32)
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

/// Why a session could not be opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// FFA_VERSION answered NOT_SUPPORTED: no FF-A here (a quiet miss).
    Absent,
    /// FFA_VERSION answered something unusable.
    Unusable(u32),
    /// A later step failed.
    Call(&'static str, FfaError),
}

/// An FF-A session: the negotiated version and the RX/TX pair.
pub struct Ffa {
    /// Version both sides use.
    pub version: Version,
    /// Our endpoint ID.
    pub id: u16,
    /// FFA_FEATURES says FFA_MSG_SEND_DIRECT_REQ2 works.
    pub req2: bool,
    /// FFA_FEATURES says FFA_PARTITION_INFO_GET_REGS works.
    pub regs_discovery: bool,
    tx: Box<[Page]>,
    rx: Box<[Page]>,
}

fn feature(f: u32) -> Result<[u64; 18], FfaError> {
    check(call(regs(&[fid::FEATURES as u64, u64::from(f)])))
}

impl Ffa {
    /// FFA_VERSION(1.2), FFA_ID_GET, FFA_FEATURES (RXTX_MAP size, REQ2, PARTITION_INFO_GET_REGS)
    /// and FFA_RXTX_MAP of a fresh one-page pair.
    pub fn open() -> Result<Ffa, OpenError> {
        let w0 = call(regs(&[
            fid::VERSION as u64,
            u64::from(ffa_abi::version_word(V1_2)),
        ]))[0] as u32;
        let version = match ffa_core::negotiate(w0) {
            Negotiated::Absent => return Err(OpenError::Absent),
            Negotiated::Unusable(w) => return Err(OpenError::Unusable(w)),
            Negotiated::Version(v) => v,
        };
        let id = check(call(regs(&[fid::ID_GET as u64])))
            .map_err(|e| OpenError::Call("FFA_ID_GET", e))?[2] as u16;
        // RX/TX: w2[1:0] is the minimum size and alignment; only 4 KiB (0) fits our pages.
        let rxtx =
            feature(fid::RXTX_MAP64).map_err(|e| OpenError::Call("FFA_FEATURES(RXTX_MAP)", e))?;
        if rxtx[2] & 3 != 0 {
            return Err(OpenError::Call(
                "FFA_FEATURES(RXTX_MAP)",
                FfaError::NoMemory,
            ));
        }
        let req2 = version >= V1_2 && feature(fid::DIRECT_REQ2).is_ok();
        let regs_discovery = version >= V1_2 && feature(fid::PARTITION_INFO_GET_REGS).is_ok();
        let (tx, rx) = (pages(1), pages(1));
        check(call(regs(&[fid::RXTX_MAP64 as u64, pa(&tx), pa(&rx), 1])))
            .map_err(|e| OpenError::Call("FFA_RXTX_MAP", e))?;
        Ok(Ffa {
            version,
            id,
            req2,
            regs_discovery,
            tx,
            rx,
        })
    }

    /// Every partition descriptor for `uuid` (Nil: all): through the registers when the
    /// instance offers FFA_PARTITION_INFO_GET_REGS, through RX otherwise (released after).
    pub fn partitions(&mut self, uuid: &Uuid) -> Result<Vec<PartitionDesc>, FfaError> {
        if self.regs_discovery {
            return self.partitions_regs(uuid);
        }
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
        let size = if self.version < V1_1 { 8 } else { size };
        let descs = ffa_abi::partinfo::decode(&self.rx[0].0, count, size);
        check(call(regs(&[fid::RX_RELEASE as u64])))?;
        descs
    }

    /// FFA_PARTITION_INFO_GET_REGS (v1.2): up to five descriptors per call, by start index.
    fn partitions_regs(&self, uuid: &Uuid) -> Result<Vec<PartitionDesc>, FfaError> {
        let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
        let mut out = Vec::new();
        let mut start = 0u64;
        loop {
            let r = check(call(regs(&[
                fid::PARTITION_INFO_GET_REGS as u64,
                lo,
                hi,
                start,
            ])))?;
            let last = r[2] & 0xffff;
            let cur = (r[2] >> 16) & 0xffff;
            if cur < start || cur > last || cur - start >= 5 {
                return Err(FfaError::Aborted);
            }
            for i in 0..=(cur - start) as usize {
                let (w, l, h) = (r[3 + 3 * i], r[4 + 3 * i], r[5 + 3 * i]);
                out.push(PartitionDesc {
                    id: w as u16,
                    exec_ctx: (w >> 16) as u16,
                    props: (w >> 32) as u32,
                    uuid: ffa_abi::uuid_from_regs(l, h),
                });
            }
            if cur == last {
                return Ok(out);
            }
            start = cur + 1;
        }
    }

    fn endpoints(&self, dst: u16) -> u64 {
        (u64::from(self.id) << 16) | u64::from(dst)
    }

    /// FFA_MSG_SEND_DIRECT_REQ (64-bit) with x3–x7; interrupted requests are resumed.
    pub fn direct_req(&self, dst: u16, args: [u64; 5]) -> Result<[u64; 5], FfaError> {
        let mut x = regs(&[fid::DIRECT_REQ64 as u64, self.endpoints(dst)]);
        x[3..8].copy_from_slice(&args);
        let r = ffa_core::direct_request(call, x, fid::DIRECT_RESP64)?;
        Ok(core::array::from_fn(|i| r[3 + i]))
    }

    /// FFA_MSG_SEND_DIRECT_REQ2 to service `uuid` with x4–x17; interrupted requests resumed.
    pub fn direct_req2(
        &self,
        dst: u16,
        uuid: &Uuid,
        args: [u64; 14],
    ) -> Result<[u64; 14], FfaError> {
        let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
        let mut x = regs(&[fid::DIRECT_REQ2 as u64, self.endpoints(dst), lo, hi]);
        x[4..18].copy_from_slice(&args);
        let r = ffa_core::direct_request(call, x, fid::DIRECT_RESP2)?;
        Ok(core::array::from_fn(|i| r[4 + i]))
    }

    /// A request in the form the partition and the instance allow (REQ2 when both can, REQ
    /// otherwise; `force` picks one). With REQ, only `args[..5]` travel and come back.
    pub fn send(
        &self,
        dst: u16,
        props: u32,
        uuid: &Uuid,
        args: [u64; 14],
        force: Option<Form>,
    ) -> Result<(Form, [u64; 14]), FfaError> {
        match ffa_core::form(props, self.req2, self.version, force) {
            Form::Req2 => self.direct_req2(dst, uuid, args).map(|r| (Form::Req2, r)),
            Form::Req => {
                let r = self.direct_req(dst, core::array::from_fn(|i| args[i]))?;
                let mut out = [0u64; 14];
                out[..5].copy_from_slice(&r);
                Ok((Form::Req, out))
            }
        }
    }

    /// FFA_MEM_SHARE (64-bit) of `mem` with `to`, read-write, not executable; the handle.
    pub fn share(&mut self, to: u16, mem: &[Page]) -> Result<u64, FfaError> {
        self.share_raw(to, pa(mem), mem.len() as u32)
    }

    /// FFA_MEM_SHARE (64-bit) of `pages` pages at physical `address` (which need not be the
    /// kernel's: probes use it to prove the hyp refuses).
    pub fn share_raw(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
        self.send_mem(false, to, address, pages)
    }

    #[cfg(feature = "test-hooks")]
    /// FFA_MEM_LEND (64-bit) of `pages` pages at `address`: the kernel loses access until it
    /// reclaims them (the hyp's stage-2 enforces it).
    pub fn lend_raw(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
        self.send_mem(true, to, address, pages)
    }

    fn send_mem(&mut self, lend: bool, to: u16, address: u64, pages: u32) -> Result<u64, FfaError> {
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

    /// FFA_ID_GET (a cheap call that proves the instance still answers this session).
    pub fn id_get(&self) -> Result<u16, FfaError> {
        check(call(regs(&[fid::ID_GET as u64]))).map(|r| r[2] as u16)
    }
}

impl Drop for Ffa {
    fn drop(&mut self) {
        // The other side must stop using the buffers before they go back to the heap.
        let _ = check(call(regs(&[fid::RXTX_UNMAP as u64])));
    }
}
