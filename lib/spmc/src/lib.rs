//! An FF-A v1.2 SPMC at EL3 with logical partitions (TF-A's "EL3 SPMC" model), as a pure
//! state machine: registers in, registers out.
//!
//! Owns, for the normal world's single FF-A instance (endpoint 0): version negotiation (v1.0,
//! v1.1 and v1.2 callers), the RX/TX buffer pair and RX ownership, partition discovery,
//! direct messaging to the partitions, and memory transactions (share, lend, retrieve,
//! relinquish, reclaim) with handles. Every register and descriptor from outside is checked
//! and answered with the spec's error; normal-world memory is touched only through
//! [`NsMemory`] and only after the range was checked against the DT's normal-world RAM and
//! away from secure memory. It never touches hardware, so the firmware supplies memory access
//! and the tests supply a fake.
//!
//! References: DEN0077A v1.2 (FF-A) chapters 13 (setup and discovery), 15 (direct messaging)
//! and the memory management chapters (DEN0140 for v1.2), noted per function.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod memory;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod tally;
pub mod test_partition;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use arm_ffa::Interface;
use ffa_abi::partinfo::{self, PartitionDesc};
use ffa_abi::{FfaError, NIL_UUID, NS_ID, PAGE, SPMC_ID, Uuid, V1_1, V1_2, Version, fid};
pub use memory::{MemAccess, Retrieved};
use memory::{MemState, PartitionCtx};

/// Access to normal-world memory. The SPMC calls these only for ranges it has validated.
pub trait NsMemory {
    /// Reads `buf.len()` bytes at physical address `pa`.
    fn read(&self, pa: u64, buf: &mut [u8]);
    /// Writes `data` at physical address `pa`.
    fn write(&mut self, pa: u64, data: &[u8]);
}

/// A logical partition: an endpoint that runs inside the firmware.
pub trait Partition: Send {
    /// Partition ID (bit 15 set).
    fn id(&self) -> u16;
    /// UUIDs it serves (one partition-info descriptor each).
    fn uuids(&self) -> &[Uuid];
    /// Properties ([`ffa_abi::props`]).
    fn props(&self) -> u32;
    /// FFA_MSG_SEND_DIRECT_REQ: payload w3–w7/x3–x7 in, the response's payload out.
    fn direct_req(
        &mut self,
        mem: &mut dyn MemAccess,
        sender: u16,
        args: [u64; 5],
    ) -> Result<[u64; 5], FfaError>;
    /// FFA_MSG_SEND_DIRECT_REQ2: payload x4–x17 in `args` (addressed to `uuid`), replaced by
    /// the response's payload (in place: the hot path of the TPM service).
    fn direct_req2(
        &mut self,
        mem: &mut dyn MemAccess,
        sender: u16,
        uuid: Uuid,
        args: &mut [u64; 14],
    ) -> Result<(), FfaError>;
}

/// What the SPMC knows of the platform.
#[derive(Clone, Debug)]
pub struct Config {
    /// Normal-world RAM ranges (base, size) from the DT.
    pub ns_ram: Vec<(u64, u64)>,
    /// Secure-only ranges (secure RAM, secure flash, secure devices).
    pub secure: Vec<(u64, u64)>,
    /// Execution contexts a logical partition reports (the PE count).
    pub exec_ctx: u16,
}

/// Most pages in one RX or TX buffer.
pub const MAX_RXTX_PAGES: u32 = 16;
/// The version this SPMC implements.
pub const SPMC_VERSION: Version = V1_2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RxTx {
    tx: u64,
    rx: u64,
    pages: u32,
    /// The caller owns RX (filled by us, not yet released).
    rx_busy: bool,
}

#[derive(Debug, Default)]
struct NsState {
    version: Option<Version>,
    /// Set by the first call other than FFA_VERSION (DEN0077A v1.2 §13.2.2).
    negotiated: bool,
    rxtx: Option<RxTx>,
}

/// One answered call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Result registers x0–x17 (x8–x17 only meaningful when `wide`).
    pub regs: [u64; 18],
    /// SMC64 result convention (write x0–x17); otherwise write x0–x7 only, preserving x8–x17.
    pub wide: bool,
    /// The call, for logs.
    pub call: &'static str,
    /// The outcome, for logs.
    pub status: Result<(), FfaError>,
}

impl Reply {
    /// Writes the reply into the caller's registers: x0–x17 for an SMC64 reply (SMCCC 1.2
    /// returns up to 18 registers), otherwise w0–w7 only, with x8–x17 preserved as the caller
    /// left them.
    /// `x` is the caller's register file from x0 (at least x0–x17 for a wide reply; a shorter
    /// one gets what fits).
    pub fn write_to(&self, x: &mut [u64]) {
        let n = if self.wide { 18 } else { 8 }.min(x.len());
        x[..n].copy_from_slice(&self.regs[..n]);
    }
}

/// The SPMC.
pub struct Spmc<M: NsMemory> {
    cfg: Config,
    mem: M,
    ns: NsState,
    txns: MemState,
    partitions: Vec<Box<dyn Partition>>,
}

fn error_regs(e: FfaError) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[0] = u64::from(fid::ERROR);
    r[2] = u64::from(e as i32 as u32);
    r
}

fn success32(w: &[u32]) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[0] = u64::from(fid::SUCCESS32);
    for (i, v) in w.iter().enumerate() {
        r[2 + i] = u64::from(*v);
    }
    r
}

impl<M: NsMemory> Spmc<M> {
    /// An SPMC with no partitions.
    pub fn new(cfg: Config, mem: M) -> Self {
        Spmc {
            cfg,
            mem,
            ns: NsState::default(),
            txns: MemState::default(),
            partitions: Vec::new(),
        }
    }

    /// Adds a logical partition. Refused if its ID is not a secure ID or is taken.
    pub fn add_partition(&mut self, p: Box<dyn Partition>) -> Result<(), FfaError> {
        let id = p.id();
        if id & 0x8000 == 0 || id == SPMC_ID || self.partitions.iter().any(|q| q.id() == id) {
            return Err(FfaError::InvalidParameters);
        }
        self.partitions.push(p);
        self.partitions.sort_by_key(|p| p.id());
        Ok(())
    }

    /// The version negotiated with the normal world, if any.
    pub fn ns_version(&self) -> Option<Version> {
        self.ns.version
    }

    /// The normal-world memory (tests inspect it).
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Outstanding memory transactions.
    pub fn transactions(&self) -> usize {
        self.txns.len()
    }

    /// Whether `[pa, pa + len)` is normal-world RAM and touches no secure range.
    fn ns_range_ok(&self, pa: u64, len: u64) -> bool {
        let Some(end) = pa.checked_add(len) else {
            return false;
        };
        len != 0
            && self
                .cfg
                .ns_ram
                .iter()
                .any(|(b, s)| pa >= *b && end <= b.saturating_add(*s))
            && !self
                .cfg
                .secure
                .iter()
                .any(|(b, s)| pa < b.saturating_add(*s) && *b < end)
    }

    /// Answers one FF-A call from the normal world (x0 = function ID).
    pub fn handle(&mut self, x: &[u64; 18]) -> Reply {
        let f = (x[0] as u32) & !(1 << 16);
        let wide = fid::is_64(f);
        let call = fid::name(f);
        // The reply is built where it is returned (no copy of the registers on the way).
        let mut reply = Reply {
            regs: [0; 18],
            wide,
            call,
            status: Ok(()),
        };
        reply.status = self.dispatch(f, x, &mut reply.regs);
        if let Err(e) = reply.status {
            reply.regs = error_regs(e);
        }
        // FFA_VERSION answers in w0 alone.
        if f == fid::VERSION && reply.regs[0] == ffa_abi::VERSION_NOT_SUPPORTED {
            reply.status = Err(FfaError::NotSupported);
        }
        reply
    }

    /// One call; its reply's registers in `out` (zero on entry) when it succeeds.
    fn dispatch(&mut self, f: u32, x: &[u64; 18], out: &mut [u64; 18]) -> Result<(), FfaError> {
        let w = |i: usize| x[i] as u32;
        if f == fid::VERSION {
            *out = self.version(w(1));
            return Ok(());
        }
        // DEN0077A v1.2 §13.2.2: the version must be negotiated before any other ABI.
        // A caller that skipped it has no ABI version to speak: NOT_SUPPORTED.
        let Some(v) = self.ns.version else {
            return Err(FfaError::NotSupported);
        };
        self.ns.negotiated = true;
        // Direct requests, the hot path (a TPM command is three), are checked by hand in
        // their handlers — every register rule §15.2/§15.4 give, and REQ2 only from a v1.2
        // caller, which is what the typed decode at the caller's version adds — instead of
        // through arm-ffa's `Interface`, which moved the registers through several copies
        // (`cargo xtask bench tpm --profile`).
        match f {
            fid::DIRECT_REQ32 => return self.direct_req(false, x, out),
            fid::DIRECT_REQ64 => return self.direct_req(true, x, out),
            fid::DIRECT_REQ2 if v >= V1_2 => return self.direct_req2(x, out),
            fid::DIRECT_REQ2 => return Err(FfaError::NotSupported),
            _ => {}
        }
        // The call, decoded by the typed layer (arm-ffa's `Interface`, at the caller's
        // version): an unknown function, one the caller's version does not have, or fields
        // arm-ffa refuses, never reach a handler. The handlers still read the raw registers
        // for the MBZ rules DEN0077A gives each call, which arm-ffa does not enforce.
        let call = ffa_abi::decode(v, x).map_err(|e| match e {
            // No UUID information tags here: a tag is from a caller this SPMC never answered
            // with one (arm-ffa would say RETRY).
            arm_ffa::Error::InvalidInformationTag(_) => FfaError::InvalidParameters,
            e => ffa_abi::status_of(e),
        })?;
        *out = match call {
            Interface::Features { .. } => self.features(v, w(1), w(2)),
            Interface::IdGet => Ok(success32(&[u32::from(NS_ID)])),
            Interface::SpmIdGet => Ok(success32(&[u32::from(SPMC_ID)])),
            Interface::RxTxMap { .. } if f == fid::RXTX_MAP32 => {
                self.rxtx_map(u64::from(w(1)), u64::from(w(2)), w(3))
            }
            Interface::RxTxMap { .. } => self.rxtx_map(x[1], x[2], w(3)),
            Interface::RxTxUnmap { .. } => self.rxtx_unmap(w(1)),
            Interface::RxRelease { .. } => self.rx_release(w(1)),
            Interface::PartitionInfoGet { .. } => self.partition_info_get(v, x),
            Interface::PartitionInfoGetRegs { .. } => self.partition_info_get_regs(x),
            Interface::MemShare { .. } => self.mem_send(v, false, x),
            Interface::MemLend { .. } => self.mem_send(v, true, x),
            Interface::MemReclaim { .. } => self.mem_reclaim(x),
            _ => Err(FfaError::NotSupported),
        }?;
        Ok(())
    }

    /// FFA_VERSION (§13.2): answer our version; record the caller's.
    fn version(&mut self, req: u32) -> [u64; 18] {
        let mut r = [0u64; 18];
        let Some(asked) = ffa_abi::parse_version(req) else {
            r[0] = ffa_abi::VERSION_NOT_SUPPORTED;
            return r;
        };
        let ok = asked.0 == SPMC_VERSION.0;
        // The caller uses the lower of the two: a v1.3 caller downgrades to v1.2.
        let effective = if asked > SPMC_VERSION {
            SPMC_VERSION
        } else {
            asked
        };
        r[0] = if !ok {
            ffa_abi::VERSION_NOT_SUPPORTED
        } else if self.ns.negotiated && self.ns.version != Some(effective) {
            // Negotiation is over once another ABI was used; a different version now is
            // refused rather than silently changing descriptor layouts under the caller.
            ffa_abi::VERSION_NOT_SUPPORTED
        } else {
            self.ns.version = Some(effective);
            u64::from(ffa_abi::version_word(SPMC_VERSION))
        };
        r
    }

    /// FFA_FEATURES (§13.3).
    fn features(&self, v: Version, id: u32, input: u32) -> Result<[u64; 18], FfaError> {
        if id & (1 << 31) == 0 {
            // Feature IDs (NPI, SRI, MEI): no notifications or managed exit here.
            return Err(FfaError::NotSupported);
        }
        if input != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let supported = match id {
            fid::ERROR | fid::SUCCESS32 | fid::SUCCESS64 | fid::VERSION | fid::FEATURES => true,
            fid::ID_GET | fid::RX_RELEASE | fid::RXTX_UNMAP | fid::PARTITION_INFO_GET => true,
            fid::DIRECT_REQ32 | fid::DIRECT_REQ64 | fid::MEM_RECLAIM => true,
            fid::SPM_ID_GET => v >= V1_1,
            fid::PARTITION_INFO_GET_REGS | fid::DIRECT_REQ2 => v >= V1_2,
            fid::RXTX_MAP32 | fid::RXTX_MAP64 => {
                // w2[1:0] = 0: 4 KiB minimum size and alignment; w2[31:16] (v1.2): maximum pages.
                let max = if v >= V1_2 { MAX_RXTX_PAGES << 16 } else { 0 };
                return Ok(success32(&[max]));
            }
            fid::MEM_SHARE32 | fid::MEM_SHARE64 | fid::MEM_LEND32 | fid::MEM_LEND64 => {
                // w2 bit 0 = 0: descriptors only in the TX buffer (no dynamically allocated
                // buffers).
                return Ok(success32(&[0]));
            }
            _ => false,
        };
        if supported {
            Ok(success32(&[]))
        } else {
            Err(FfaError::NotSupported)
        }
    }

    /// FFA_RXTX_MAP (§13.7).
    fn rxtx_map(&mut self, tx: u64, rx: u64, w3: u32) -> Result<[u64; 18], FfaError> {
        if w3 & !0x3f != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let pages = w3 & 0x3f;
        if pages == 0 || pages > MAX_RXTX_PAGES {
            return Err(FfaError::InvalidParameters);
        }
        let len = u64::from(pages) * PAGE;
        if !tx.is_multiple_of(PAGE) || !rx.is_multiple_of(PAGE) {
            return Err(FfaError::InvalidParameters);
        }
        if !self.ns_range_ok(tx, len) || !self.ns_range_ok(rx, len) {
            return Err(FfaError::InvalidParameters);
        }
        if tx < rx + len && rx < tx + len {
            return Err(FfaError::InvalidParameters);
        }
        if self.ns.rxtx.is_some() {
            return Err(FfaError::Denied);
        }
        self.ns.rxtx = Some(RxTx {
            tx,
            rx,
            pages,
            rx_busy: false,
        });
        Ok(success32(&[]))
    }

    /// FFA_RXTX_UNMAP (§13.8): w1[31:16] is the endpoint ID (0 for us).
    fn rxtx_unmap(&mut self, w1: u32) -> Result<[u64; 18], FfaError> {
        if w1 != 0 || self.ns.rxtx.is_none() {
            return Err(FfaError::InvalidParameters);
        }
        self.ns.rxtx = None;
        Ok(success32(&[]))
    }

    /// FFA_RX_RELEASE (§13.6): the caller gives RX back.
    fn rx_release(&mut self, w1: u32) -> Result<[u64; 18], FfaError> {
        if w1 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        match &mut self.ns.rxtx {
            Some(b) if b.rx_busy => {
                b.rx_busy = false;
                Ok(success32(&[]))
            }
            _ => Err(FfaError::Denied),
        }
    }

    /// Descriptors for a UUID query: one per (partition, UUID) for Nil, else the partitions
    /// serving `uuid` (UUID field zero).
    fn partition_descs(&self, uuid: &Uuid) -> Vec<PartitionDesc> {
        let mut out = Vec::new();
        for p in &self.partitions {
            if *uuid == NIL_UUID {
                for u in p.uuids() {
                    out.push(PartitionDesc {
                        id: p.id(),
                        exec_ctx: self.cfg.exec_ctx,
                        props: p.props(),
                        uuid: *u,
                    });
                }
            } else if p.uuids().contains(uuid) {
                out.push(PartitionDesc {
                    id: p.id(),
                    exec_ctx: self.cfg.exec_ctx,
                    props: p.props(),
                    uuid: NIL_UUID,
                });
            }
        }
        out
    }

    /// FFA_PARTITION_INFO_GET (§13.9).
    fn partition_info_get(&mut self, v: Version, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let uuid = ffa_abi::uuid_from_words([x[1] as u32, x[2] as u32, x[3] as u32, x[4] as u32]);
        let flags = x[5] as u32;
        // v1.0: w5 MBZ; v1.1+: bit 0 = return the count only, other bits MBZ.
        if (v < V1_1 && flags != 0) || flags & !1 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let descs = self.partition_descs(&uuid);
        if descs.is_empty() {
            return Err(FfaError::InvalidParameters);
        }
        let size = partinfo::desc_size(v) as u32;
        let count = descs.len() as u32;
        if flags & 1 != 0 {
            return Ok(success32(&[count, 0]));
        }
        let b = self.ns.rxtx.as_mut().ok_or(FfaError::Busy)?;
        if b.rx_busy {
            return Err(FfaError::Busy);
        }
        let mut buf = vec![0u8; (b.pages as u64 * PAGE) as usize];
        let n = partinfo::encode(v, &descs, &mut buf)?;
        let rx = b.rx;
        b.rx_busy = true;
        self.mem.write(rx, &buf[..n]);
        Ok(success32(&[count, if v >= V1_1 { size } else { 0 }]))
    }

    /// FFA_PARTITION_INFO_GET_REGS (v1.2 §13.10), SMC64.
    fn partition_info_get_regs(&self, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let uuid = ffa_abi::uuid_from_regs(x[1], x[2]);
        let start = (x[3] & 0xffff) as usize;
        let tag = (x[3] >> 16) & 0xffff;
        if x[3] >> 32 != 0 || tag != 0 || x[4..].iter().any(|r| *r != 0) {
            // No UUID info tags here: a non-zero tag is from a caller we never answered.
            return Err(FfaError::InvalidParameters);
        }
        let descs = self.partition_descs(&uuid);
        if descs.is_empty() || start >= descs.len() {
            return Err(FfaError::InvalidParameters);
        }
        let last = descs.len() - 1;
        let end = (start + 5).min(descs.len());
        // The register framing (indices, tag, descriptor size, x3 onwards) is arm-ffa's, the
        // descriptors' bytes are `ffa_abi::partinfo`'s v1.1+ layout: the same codec the
        // normal world's client decodes with.
        let mut data = [0u8; 15 * 8];
        partinfo::encode(V1_2, &descs[start..end], &mut data)?;
        let args = arm_ffa::partition_info::SuccessArgsPartitionInfoGetRegs {
            last_index: last as u16,
            current_index: (end - 1) as u16,
            info_tag: 0,
            descriptor_data: data,
        };
        let mut r = [0u64; 18];
        arm_ffa::Interface::Success {
            target_info: 0u32.into(),
            args: args.into(),
        }
        .to_regs(V1_2, &mut r);
        Ok(r)
    }

    fn partition_index(&self, id: u16) -> Result<usize, FfaError> {
        self.partitions
            .iter()
            .position(|p| p.id() == id)
            .ok_or(FfaError::InvalidParameters)
    }

    /// FFA_MSG_SEND_DIRECT_REQ (§15.2), 32- or 64-bit.
    fn direct_req(&mut self, wide: bool, x: &[u64; 18], r: &mut [u64; 18]) -> Result<(), FfaError> {
        let w1 = x[1] as u32;
        let (sender, receiver) = ((w1 >> 16) as u16, w1 as u16);
        // w2: bit 31 framework message (none supported here); other bits MBZ.
        if sender != NS_ID || x[2] as u32 != 0 || (!wide && x[1] >> 32 != 0) {
            return Err(FfaError::InvalidParameters);
        }
        let i = self.partition_index(receiver)?;
        if self.partitions[i].props() & ffa_abi::props::DIRECT_REQ_RECV == 0 {
            return Err(FfaError::InvalidParameters);
        }
        let mask = if wide { u64::MAX } else { 0xffff_ffff };
        let args: [u64; 5] = core::array::from_fn(|k| x[3 + k] & mask);
        let mut ctx = PartitionCtx {
            me: receiver,
            state: &mut self.txns,
            mem: &mut self.mem,
        };
        let out = self.partitions[i].direct_req(&mut ctx, sender, args)?;
        r[0] = u64::from(if wide {
            fid::DIRECT_RESP64
        } else {
            fid::DIRECT_RESP32
        });
        r[1] = (u64::from(receiver) << 16) | u64::from(sender);
        for k in 0..5 {
            r[3 + k] = out[k] & mask;
        }
        Ok(())
    }

    /// FFA_MSG_SEND_DIRECT_REQ2 (v1.2 §15.4): x2/x3 name the service UUID (Nil: the partition).
    fn direct_req2(&mut self, x: &[u64; 18], r: &mut [u64; 18]) -> Result<(), FfaError> {
        let w1 = x[1];
        let (sender, receiver) = (((w1 >> 16) & 0xffff) as u16, w1 as u16);
        if sender != NS_ID || w1 >> 32 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let i = self.partition_index(receiver)?;
        let p = &self.partitions[i];
        if p.props() & ffa_abi::props::DIRECT_REQ2_RECV == 0 {
            return Err(FfaError::InvalidParameters);
        }
        let uuid = ffa_abi::uuid_from_regs(x[2], x[3]);
        // UUIDs compared as integers: slice equality calls memcmp on this path.
        let same = |a: &Uuid, b: &Uuid| u128::from_ne_bytes(*a) == u128::from_ne_bytes(*b);
        let uuid = if same(&uuid, &NIL_UUID) {
            p.uuids().first().copied().unwrap_or(NIL_UUID)
        } else {
            uuid
        };
        if !p.uuids().iter().any(|u| same(u, &uuid)) {
            return Err(FfaError::InvalidParameters);
        }
        let mut ctx = PartitionCtx {
            me: receiver,
            state: &mut self.txns,
            mem: &mut self.mem,
        };
        // The payload in place: x4–x17 in, the response's x4–x17 out; x2/x3 MBZ in RESP2
        // (`r` is zero on entry).
        r[4..].copy_from_slice(&x[4..]);
        let args: &mut [u64; 14] = (&mut r[4..])
            .try_into()
            .map_err(|_| FfaError::InvalidParameters)?;
        self.partitions[i].direct_req2(&mut ctx, sender, uuid, args)?;
        r[0] = u64::from(fid::DIRECT_RESP2);
        r[1] = (u64::from(receiver) << 16) | u64::from(sender);
        Ok(())
    }

    /// FFA_MEM_SHARE / FFA_MEM_LEND from the normal world, descriptor in its TX buffer.
    fn mem_send(&mut self, v: Version, lend: bool, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let (total, frag) = (x[1] as u32, x[2] as u32);
        // x3/w4: a dynamically allocated buffer; FFA_FEATURES said we take TX only.
        if x[3] != 0 || x[4] as u32 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let b = self.ns.rxtx.ok_or(FfaError::Denied)?;
        let cap = u64::from(b.pages) * PAGE;
        if total == 0 || u64::from(total) > cap || frag > total {
            return Err(FfaError::InvalidParameters);
        }
        if frag != total {
            // Fragmented transmissions (FFA_MEM_FRAG_TX) are not implemented.
            return Err(FfaError::NotSupported);
        }
        // Copy out of TX once; everything below reads the copy (no re-read of caller memory).
        let mut desc = vec![0u8; total as usize];
        self.mem.read(b.tx, &mut desc);
        let txn = ffa_abi::mem::parse(v, &desc, ffa_abi::mem::Composite::Required)
            .map_err(|_| FfaError::InvalidParameters)?;
        self.check_send(&txn, lend)?;
        let handle = self.txns.insert(txn, lend);
        Ok(success32(&[handle as u32, (handle >> 32) as u32]))
    }

    fn check_send(&self, txn: &ffa_abi::mem::MemTxn, lend: bool) -> Result<(), FfaError> {
        use ffa_abi::mem::{INSTR_X, MemTxn};
        let MemTxn {
            sender,
            attributes,
            flags,
            handle,
            ..
        } = txn;
        if *sender != NS_ID || *handle != 0 {
            return Err(FfaError::InvalidParameters);
        }
        // Attributes bits 15:7 MBZ; SHARE: normal memory required; LEND to a PE endpoint: the
        // lender leaves them unspecified (0) or gives normal memory.
        let ty = (attributes >> 4) & 3;
        let ty_ok = if lend { ty == 0 || ty == 2 } else { ty == 2 };
        if attributes & !0x3f != 0 || !ty_ok {
            return Err(FfaError::InvalidParameters);
        }
        // Flags: bit 0 zero memory (not for SHARE), bit 1 time slicing (not implemented); the
        // rest MBZ.
        if flags & !1 != 0 || (!lend && flags & 1 != 0) {
            return Err(FfaError::InvalidParameters);
        }
        let mut seen = Vec::new();
        for e in &txn.emads {
            let p = self
                .partitions
                .iter()
                .find(|p| p.id() == e.receiver)
                .ok_or(FfaError::InvalidParameters)?;
            let _ = p;
            if seen.contains(&e.receiver) || e.flags != 0 || e.perms & !0xf != 0 {
                return Err(FfaError::InvalidParameters);
            }
            let data = e.perms & 3;
            if data == 0 || data == 3 || (e.perms >> 2) == 3 {
                return Err(FfaError::InvalidParameters);
            }
            // Normal-world memory is never made executable for a secure endpoint.
            if e.perms & 0xc == INSTR_X {
                return Err(FfaError::Denied);
            }
            seen.push(e.receiver);
        }
        for c in &txn.constituents {
            let len = u64::from(c.pages) * PAGE;
            if !self.ns_range_ok(c.address, len) {
                return Err(FfaError::InvalidParameters);
            }
            if let Some(b) = self.ns.rxtx {
                let blen = u64::from(b.pages) * PAGE;
                let hit = |base: u64| c.address < base + blen && base < c.address + len;
                if hit(b.tx) || hit(b.rx) {
                    return Err(FfaError::Denied);
                }
            }
        }
        if self.txns.overlaps(&txn.constituents) {
            // Pages already in an outstanding transaction are not the sender's to give again.
            return Err(FfaError::Denied);
        }
        Ok(())
    }

    /// FFA_MEM_RECLAIM: w1/w2 handle, w3 flags.
    fn mem_reclaim(&mut self, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let handle = (x[1] & 0xffff_ffff) | ((x[2] & 0xffff_ffff) << 32);
        let flags = x[3] as u32;
        if flags & !1 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let t = self.txns.get(handle).ok_or(FfaError::InvalidParameters)?;
        if t.txn.sender != NS_ID {
            return Err(FfaError::InvalidParameters);
        }
        if flags & 1 != 0 && !t.lend {
            return Err(FfaError::InvalidParameters);
        }
        if t.retrieved.iter().any(|(_, n)| *n > 0) {
            return Err(FfaError::Denied);
        }
        let t = self
            .txns
            .remove(handle)
            .ok_or(FfaError::InvalidParameters)?;
        if flags & 1 != 0 {
            for c in &t.txn.constituents {
                let zero = vec![0u8; PAGE as usize];
                for p in 0..u64::from(c.pages) {
                    self.mem.write(c.address + p * PAGE, &zero);
                }
            }
        }
        Ok(success32(&[]))
    }

    /// Lets partition `id` act on memory (tests drive retrieve/relinquish directly).
    pub fn with_partition_memory<R>(
        &mut self,
        id: u16,
        f: impl FnOnce(&mut dyn MemAccess) -> R,
    ) -> R {
        let mut ctx = PartitionCtx {
            me: id,
            state: &mut self.txns,
            mem: &mut self.mem,
        };
        f(&mut ctx)
    }
}

#[cfg(test)]
mod tests;
