//! The normal world's FF-A client (DEN0077A v1.2), generic over where its calls go.
//!
//! Requests are built and replies decoded with the `arm-ffa` crate's typed `Interface`
//! (`to_regs`/`from_regs`), so the kernel and the tests speak the same checked layer; the
//! few places where it does not fit say so. A reply that is not the one the call expects is an
//! error ([`CallError::Unexpected`]), never taken as success. The conduit is a type parameter:
//! SMC or HVC in the kernel, the SPMC (or the hyp's proxy in front of it) in host tests.

use crate::{Form, Negotiated};
use alloc::vec::Vec;
use arm_ffa::interface_args::{
    DirectMsg2Args, DirectMsgArgs, Feature, RxTxAddr, SuccessArgs, TargetInfo,
};
use arm_ffa::memory_management::{Handle, MemReclaimFlags};
use arm_ffa::partition_info::PartitionInfoGetFlags;
use arm_ffa::{FuncId, Interface, UuidHelper};
use ffa_abi::mem::{ATTR_NORMAL_WB_INNER, Constituent, DATA_RW, Emad, INSTR_NX, MemTxn};
use ffa_abi::partinfo::PartitionDesc;
use ffa_abi::{FfaError, PAGE, Uuid, V1_1, V1_2, Version, fid};

/// Where calls go: x0–x17 in, x0–x17 back (SMCCC 1.2).
pub trait Conduit {
    /// One call: the registers in `x` replaced by the answer's (in place, so the 144 bytes
    /// are not moved through each layer on the way: `cargo xtask bench tpm --profile`).
    fn call(&mut self, x: &mut [u64; 18]);
}

/// The client's RX/TX pair (one page each): the addresses given to the other side, and byte
/// access to them.
pub trait Mailbox {
    /// TX's physical address.
    fn tx(&self) -> u64;
    /// RX's physical address.
    fn rx(&self) -> u64;
    /// Copies `data` (at most a page) to the start of TX.
    fn write_tx(&mut self, data: &[u8]);
    /// Copies the start of RX into `buf` (at most a page).
    fn read_rx(&self, buf: &mut [u8]);
}

/// Why a call failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The other side answered FFA_ERROR with this status.
    Ffa(FfaError),
    /// The other side answered with a function the call does not allow (x0), or with registers
    /// the typed layer refuses.
    Unexpected {
        /// The call.
        call: &'static str,
        /// The reply's x0.
        x0: u64,
    },
}

impl CallError {
    /// A kernel error word for logs (`ffa_to_linux_errno`; an unexpected reply is EPROTO).
    pub fn errno(self) -> &'static str {
        match self {
            CallError::Ffa(e) => crate::errno_name(e),
            CallError::Unexpected { .. } => "EPROTO",
        }
    }
}

impl From<FfaError> for CallError {
    fn from(e: FfaError) -> Self {
        CallError::Ffa(e)
    }
}

/// Why a session could not be opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// FFA_VERSION answered NOT_SUPPORTED: no FF-A here (a quiet miss).
    Absent,
    /// FFA_VERSION answered something unusable.
    Unusable(u32),
    /// A later step failed.
    Call(&'static str, CallError),
}

/// An open session: the negotiated version, our ID, what the instance offers, the pair.
pub struct Client<C: Conduit, M: Mailbox> {
    conduit: C,
    mbox: M,
    /// Version both sides use.
    pub version: Version,
    /// Our endpoint ID.
    pub id: u16,
    /// FFA_FEATURES says FFA_MSG_SEND_DIRECT_REQ2 works.
    pub req2: bool,
    /// FFA_FEATURES says FFA_PARTITION_INFO_GET_REGS works.
    pub regs_discovery: bool,
    mapped: bool,
    /// x0 of the last reply (what an unexpected reply is reported by).
    last_x0: u64,
}

fn to_regs(version: Version, i: &Interface) -> [u64; 18] {
    ffa_abi::encode(version, i)
}

fn errword(r: &[u64; 18]) -> FfaError {
    FfaError::try_from(r[2] as u32 as i32).unwrap_or(FfaError::NotSupported)
}

impl<C: Conduit, M: Mailbox> Client<C, M> {
    /// FFA_VERSION(1.2), FFA_ID_GET, FFA_FEATURES (RXTX_MAP size, REQ2,
    /// PARTITION_INFO_GET_REGS) and FFA_RXTX_MAP of the mailbox's pair.
    pub fn open(mut conduit: C, mbox: M) -> Result<Self, OpenError> {
        // FFA_VERSION's reply is a version word in w0, not an FF-A function: arm-ffa's
        // `VersionOut` cannot be told apart from a function ID by `from_regs`, so it is read
        // as the word it is.
        let mut x = [0u64; 18];
        x[0] = u64::from(fid::VERSION);
        x[1] = u64::from(ffa_abi::version_word(V1_2));
        conduit.call(&mut x);
        let w0 = x[0] as u32;
        let version = match crate::negotiate(w0) {
            Negotiated::Absent => return Err(OpenError::Absent),
            Negotiated::Unusable(w) => return Err(OpenError::Unusable(w)),
            Negotiated::Version(v) => v,
        };
        let mut c = Client {
            conduit,
            mbox,
            version,
            id: 0,
            req2: false,
            regs_discovery: false,
            mapped: false,
            last_x0: 0,
        };
        c.id = c.id_get().map_err(|e| OpenError::Call("FFA_ID_GET", e))?;
        // RX/TX: w2[1:0] is the minimum size and alignment; only 4 KiB (0) fits a page.
        let props = c
            .features(FuncId::RxTxMap64)
            .map_err(|e| OpenError::Call("FFA_FEATURES(RXTX_MAP)", e))?;
        if props[0] & 3 != 0 {
            return Err(OpenError::Call(
                "FFA_FEATURES(RXTX_MAP)",
                CallError::Ffa(FfaError::NoMemory),
            ));
        }
        c.req2 = version >= V1_2 && c.features(FuncId::MsgSendDirectReq64_2).is_ok();
        c.regs_discovery = version >= V1_2 && c.features(FuncId::PartitionInfoGetRegs).is_ok();
        let map = Interface::RxTxMap {
            addr: RxTxAddr::Addr64 {
                rx: c.mbox.rx(),
                tx: c.mbox.tx(),
            },
            page_cnt: 1,
        };
        c.success("FFA_RXTX_MAP", &map)
            .map_err(|e| OpenError::Call("FFA_RXTX_MAP", e))?;
        c.mapped = true;
        Ok(c)
    }

    /// Makes a call and decodes the reply: FFA_ERROR becomes `Err(Ffa)`, registers the typed
    /// layer refuses become `Err(Unexpected)`.
    fn call(&mut self, name: &'static str, req: &Interface) -> Result<Interface, CallError> {
        let mut r = to_regs(self.version, req);
        self.conduit.call(&mut r);
        self.last_x0 = r[0];
        self.decode(name, &r)
    }

    fn unexpected(&self, call: &'static str) -> CallError {
        CallError::Unexpected {
            call,
            x0: self.last_x0,
        }
    }

    fn decode(&self, name: &'static str, r: &[u64; 18]) -> Result<Interface, CallError> {
        if r[0] as u32 == fid::ERROR {
            return Err(CallError::Ffa(errword(r)));
        }
        ffa_abi::decode(self.version, r).map_err(|_| CallError::Unexpected {
            call: name,
            x0: r[0],
        })
    }

    /// A call whose only good answer is FFA_SUCCESS; its arguments.
    fn success(&mut self, name: &'static str, req: &Interface) -> Result<SuccessArgs, CallError> {
        match self.call(name, req)? {
            Interface::Success { args, .. } => Ok(args),
            _ => Err(self.unexpected(name)),
        }
    }

    fn success_regs(
        &mut self,
        name: &'static str,
        req: &Interface,
    ) -> Result<[u64; 16], CallError> {
        Ok(match self.success(name, req)? {
            SuccessArgs::Args32(a) => {
                core::array::from_fn(|i| a.get(i).map_or(0, |v| u64::from(*v)))
            }
            SuccessArgs::Args64(a) => a,
        })
    }

    fn features(&mut self, f: FuncId) -> Result<[u64; 16], CallError> {
        let req = Interface::Features {
            feat_id: Feature::FuncId(f),
            input_properties: 0,
        };
        self.success_regs("FFA_FEATURES", &req)
    }

    /// FFA_ID_GET.
    pub fn id_get(&mut self) -> Result<u16, CallError> {
        Ok(self.success_regs("FFA_ID_GET", &Interface::IdGet)?[0] as u16)
    }

    /// Every partition descriptor for `uuid` (Nil: all): through the registers when the
    /// instance offers FFA_PARTITION_INFO_GET_REGS, through RX otherwise (released after).
    pub fn partitions(&mut self, uuid: &Uuid) -> Result<Vec<PartitionDesc>, CallError> {
        if self.regs_discovery {
            return self.partitions_regs(uuid);
        }
        let req = Interface::PartitionInfoGet {
            uuid: UuidHelper::from_u32_regs(ffa_abi::uuid_to_words(uuid)),
            flags: PartitionInfoGetFlags { count_only: false },
        };
        let a = self.success_regs("FFA_PARTITION_INFO_GET", &req)?;
        let (count, size) = (a[0] as usize, a[1] as usize);
        // v1.0 descriptors are 8 bytes and the size register is reserved.
        let size = if self.version < V1_1 { 8 } else { size };
        let mut rx = [0u8; PAGE as usize];
        self.mbox.read_rx(&mut rx);
        let descs = ffa_abi::partinfo::decode(&rx, count, size);
        self.success("FFA_RX_RELEASE", &Interface::RxRelease { vm_id: self.id })?;
        Ok(descs?)
    }

    /// FFA_PARTITION_INFO_GET_REGS (v1.2): up to five descriptors per call, by start index.
    /// arm-ffa frames the reply (`SuccessArgsPartitionInfoGetRegs`: indices, tag, descriptor
    /// size checked); the descriptors' bytes are `ffa_abi::partinfo`'s, as the SPMC writes them.
    fn partitions_regs(&mut self, uuid: &Uuid) -> Result<Vec<PartitionDesc>, CallError> {
        use arm_ffa::partition_info::SuccessArgsPartitionInfoGetRegs as Regs;
        let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
        let mut out = Vec::new();
        let mut start = 0u16;
        loop {
            let req = Interface::PartitionInfoGetRegs {
                uuid: UuidHelper::from_u64_regs([lo, hi]),
                start_index: start,
                info_tag: 0,
            };
            let args = self.success("FFA_PARTITION_INFO_GET_REGS", &req)?;
            let r =
                Regs::try_from(args).map_err(|_| self.unexpected("FFA_PARTITION_INFO_GET_REGS"))?;
            let (cur, last) = (r.current_index, r.last_index);
            if cur < start || cur > last || cur - start >= 5 {
                return Err(self.unexpected("FFA_PARTITION_INFO_GET_REGS"));
            }
            let n = usize::from(cur - start) + 1;
            out.extend(ffa_abi::partinfo::decode(&r.descriptor_data, n, 24)?);
            if cur == last {
                return Ok(out);
            }
            start = cur + 1;
        }
    }

    /// Sends a direct request and follows it until its response: FFA_INTERRUPT and FFA_YIELD
    /// are resumed with FFA_RUN (DEN0077A v1.2 §15.2: not failures), at most
    /// [`crate::MAX_RESUMES`] times; the response must come from `dst` to us.
    fn direct(
        &mut self,
        name: &'static str,
        dst: u16,
        req: &Interface,
    ) -> Result<Interface, CallError> {
        let mut r = self.call(name, req)?;
        for _ in 0..crate::MAX_RESUMES {
            match r {
                Interface::MsgSendDirectResp { src_id, dst_id, .. }
                | Interface::MsgSendDirectResp2 { src_id, dst_id, .. }
                    if src_id == dst && dst_id == self.id =>
                {
                    return Ok(r);
                }
                Interface::Interrupt { .. } | Interface::Yield { .. } => {
                    // FFA_RUN is an SMC32 call in v1.2 (the SMC64 form is later).
                    let run = Interface::Run {
                        target_info: TargetInfo {
                            endpoint_id: dst,
                            vcpu_id: 0,
                        },
                        is_32bit: true,
                    };
                    r = self.call(name, &run)?;
                }
                _ => break,
            }
        }
        Err(self.unexpected(name))
    }

    /// FFA_MSG_SEND_DIRECT_REQ (64-bit) with x3–x7.
    pub fn direct_req(&mut self, dst: u16, args: [u64; 5]) -> Result<[u64; 5], CallError> {
        let mut a = [0u64; 15];
        a[..5].copy_from_slice(&args);
        let req = Interface::MsgSendDirectReq {
            src_id: self.id,
            dst_id: dst,
            args: DirectMsgArgs::Args64(a),
        };
        match self.direct("FFA_MSG_SEND_DIRECT_REQ", dst, &req)? {
            Interface::MsgSendDirectResp {
                args: DirectMsgArgs::Args64(r),
                ..
            } => Ok(core::array::from_fn(|i| r[i])),
            _ => Err(self.unexpected("FFA_MSG_SEND_DIRECT_REQ")),
        }
    }

    /// FFA_MSG_SEND_DIRECT_REQ2 to service `uuid` with x4–x17.
    pub fn direct_req2(
        &mut self,
        dst: u16,
        uuid: &Uuid,
        args: [u64; 14],
    ) -> Result<[u64; 14], CallError> {
        let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
        let req = Interface::MsgSendDirectReq2 {
            src_id: self.id,
            dst_id: dst,
            uuid: UuidHelper::from_u64_regs([lo, hi]),
            args: DirectMsg2Args(args),
        };
        match self.direct("FFA_MSG_SEND_DIRECT_REQ2", dst, &req)? {
            Interface::MsgSendDirectResp2 { args, .. } => Ok(args.0),
            _ => Err(self.unexpected("FFA_MSG_SEND_DIRECT_REQ2")),
        }
    }

    /// A request in the form the partition and the instance allow (REQ2 when both can, REQ
    /// otherwise; `force` picks one). With REQ, only `args[..5]` travel and come back (the
    /// rest of the answer is zero).
    pub fn send(
        &mut self,
        dst: u16,
        props: u32,
        uuid: &Uuid,
        args: [u64; 14],
        force: Option<Form>,
    ) -> Result<(Form, [u64; 14]), CallError> {
        let mut a = args;
        let form = crate::form(props, self.req2, self.version, force);
        let n = if form == Form::Req2 { 14 } else { 5 };
        self.send_in_place(dst, props, uuid, &mut a[..n], Some(form))?;
        a[n..].fill(0);
        Ok((form, a))
    }

    /// [`Client::send`] in place: `args` go out (REQ2: x4 onwards, at most 14; REQ: x3
    /// onwards, at most 5; the registers after them zero) and as many of the response's
    /// payload registers replace them. More than the form carries is `InvalidParameters`,
    /// before any call.
    ///
    /// The hot path of every FF-A driver (a TPM command is three of these), so the registers
    /// are built and the response checked here by hand rather than through arm-ffa's
    /// `Interface`, which moved the payload through a dozen copies per request (`cargo xtask
    /// bench tpm --profile`); the hyp's proxy checks direct requests by hand for the same
    /// reason. The checks are those of a direct response (DEN0077A v1.2 §15.2–15.4): the
    /// function (the 64-bit RESP for REQ, RESP2 for REQ2), w1 = the partition to us with
    /// x1[63:32] zero, REQ's w2 zero (not a framework message), REQ2's x2/x3 zero (MBZ in
    /// RESP2); FFA_ERROR is its status; FFA_INTERRUPT and FFA_YIELD are resumed with FFA_RUN
    /// as [`Client::direct`] does. Anything else is `Unexpected`, and `args` are left alone.
    pub fn send_in_place(
        &mut self,
        dst: u16,
        props: u32,
        uuid: &Uuid,
        args: &mut [u64],
        force: Option<Form>,
    ) -> Result<Form, CallError> {
        let form = crate::form(props, self.req2, self.version, force);
        let (name, resp, first) = match form {
            Form::Req2 => ("FFA_MSG_SEND_DIRECT_REQ2", fid::DIRECT_RESP2, 4),
            Form::Req => ("FFA_MSG_SEND_DIRECT_REQ", fid::DIRECT_RESP64, 3),
        };
        let n = args.len();
        let carried = if form == Form::Req2 { 14 } else { 5 };
        if n > carried {
            return Err(CallError::Ffa(FfaError::InvalidParameters));
        }
        let ids = (u64::from(self.id) << 16) | u64::from(dst);
        let mut x = [0u64; 18];
        x[1] = ids;
        match form {
            Form::Req2 => {
                let (lo, hi) = ffa_abi::uuid_to_regs(uuid);
                x[0] = u64::from(fid::DIRECT_REQ2);
                x[2] = lo;
                x[3] = hi;
            }
            Form::Req => x[0] = u64::from(fid::DIRECT_REQ64),
        }
        x[first..first + n].copy_from_slice(args);
        let back = (u64::from(dst) << 16) | u64::from(self.id);
        for _ in 0..=crate::MAX_RESUMES {
            self.conduit.call(&mut x);
            self.last_x0 = x[0];
            let f = x[0] as u32;
            if f == resp {
                let mbz = match form {
                    Form::Req2 => x[2] | x[3],
                    Form::Req => x[2] & 0xffff_ffff,
                };
                if x[1] != back || mbz != 0 {
                    break;
                }
                args.copy_from_slice(&x[first..first + n]);
                return Ok(form);
            }
            match f {
                fid::ERROR => return Err(CallError::Ffa(errword(&x))),
                fid::INTERRUPT | fid::YIELD => {
                    // FFA_RUN (SMC32 in v1.2) names the partition in w1[31:16].
                    x = [0u64; 18];
                    x[0] = u64::from(fid::RUN);
                    x[1] = u64::from(dst) << 16;
                }
                _ => break,
            }
        }
        Err(self.unexpected(name))
    }

    /// FFA_MEM_SHARE (64-bit) of `pages` pages at `address` with `to`, read-write, not
    /// executable; the handle.
    pub fn share(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, CallError> {
        self.send_mem(false, to, address, pages)
    }

    /// FFA_MEM_LEND (64-bit): the sender loses access until it reclaims the pages.
    pub fn lend(&mut self, to: u16, address: u64, pages: u32) -> Result<u64, CallError> {
        self.send_mem(true, to, address, pages)
    }

    fn send_mem(
        &mut self,
        lend: bool,
        to: u16,
        address: u64,
        pages: u32,
    ) -> Result<u64, CallError> {
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
            return Err(CallError::Ffa(FfaError::NoMemory));
        }
        self.mbox.write_tx(&desc);
        let n = desc.len() as u32;
        let (name, req) = if lend {
            (
                "FFA_MEM_LEND",
                Interface::MemLend {
                    total_len: n,
                    frag_len: n,
                    buf: None,
                },
            )
        } else {
            (
                "FFA_MEM_SHARE",
                Interface::MemShare {
                    total_len: n,
                    frag_len: n,
                    buf: None,
                },
            )
        };
        let a = self.success_regs(name, &req)?;
        Ok((a[0] & 0xffff_ffff) | (a[1] << 32))
    }

    /// FFA_MEM_RECLAIM.
    pub fn reclaim(&mut self, handle: u64) -> Result<(), CallError> {
        let req = Interface::MemReclaim {
            handle: Handle(handle),
            flags: MemReclaimFlags {
                zero_memory: false,
                time_slicing: false,
            },
        };
        self.success("FFA_MEM_RECLAIM", &req).map(|_| ())
    }

    /// The mailbox (the kernel keeps its pages alive through it).
    pub fn mailbox(&self) -> &M {
        &self.mbox
    }

    /// The conduit.
    pub fn conduit(&self) -> &C {
        &self.conduit
    }
}

impl<C: Conduit, M: Mailbox> Drop for Client<C, M> {
    fn drop(&mut self) {
        // The other side must stop using the buffers before they go back to their owner.
        if self.mapped {
            let _ = self.success("FFA_RXTX_UNMAP", &Interface::RxTxUnmap { id: self.id });
        }
    }
}
