//! The hyp's FF-A proxy, after Linux pKVM's `arch/arm64/kvm/hyp/nvhe/ffa.c`, as a pure state
//! machine between the host (registers in, registers out) and the firmware ([`Platform::smc`]).
//!
//! What it owns, and why:
//! - **Version.** At hyp init it negotiates with the SPMC (the highest both speak, ≤ 1.2) and
//!   maps its own RX/TX pair there. The host's FFA_VERSION is answered here and the host's
//!   version recorded; before it, every other FF-A call from the host is refused with
//!   INVALID_PARAMETERS, as pKVM does (the host has not said which ABI it speaks, and without
//!   this gate a host could use buffers and descriptors the hyp cannot interpret).
//!   Descriptors are translated between the host's version and the firmware's, so a v1.0 or
//!   v1.1 host works against a v1.2 SPMC.
//! - **Buffers.** The SPMC only ever knows the hyp's RX/TX pair. The host's pair is checked
//!   (host-owned, aligned, one page each) and moved to "shared with hyp"; every call that
//!   reads TX or fills RX is performed through the hyp's buffers and copied.
//! - **Memory.** FFA_MEM_SHARE/LEND descriptors are copied out of the host's TX once, parsed
//!   and validated on the copy (never re-read), every constituent must be host-owned, pages move
//!   to "shared with secure"/"lent" all-or-nothing, the firmware gets a re-encoded descriptor
//!   in the hyp's TX, and a failure rolls the pages back. Handles are recorded; RECLAIM returns
//!   the pages only if the firmware agreed.
//! - **Deny list** ([`denied`]): calls the proxy cannot carry safely answer NOT_SUPPORTED, and
//!   FFA_FEATURES says so; everything else — including FFA_MSG_SEND_DIRECT_REQ2 — is forwarded,
//!   and FFA_FEATURES is forwarded for it so the answer is the firmware's truth.
//! - **Registers.** Forwarded calls carry x0–x17 both ways and the host gets all of x0–x17 back
//!   (SMCCC 1.2, as pKVM settled); answers the proxy makes itself zero what they do not set.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use ffa_abi::mem::{Composite, Constituent, MemTxn};
use ffa_abi::{FfaError, NS_ID, PAGE, V1_1, V1_2, Version, fid};
use pageown::{OwnError, Ownership, State};

/// What the proxy needs from the machine.
pub trait Platform {
    /// An SMC to EL3 with x0–x17; all of x0–x17 back.
    fn smc(&mut self, x: [u64; 18]) -> [u64; 18];
    /// The same, the answer replacing `x`: what a forwarded call uses, so the hyp can pass its
    /// trap frame's registers straight through (no copies on the hot path).
    fn smc_in_place(&mut self, x: &mut [u64; 18]) {
        *x = self.smc(*x);
    }
    /// Reads physical memory (the hyp's buffers, or host pages the proxy has checked).
    fn read(&self, pa: u64, buf: &mut [u8]);
    /// Writes physical memory (the hyp's buffers, or the host's RX buffer).
    fn write(&mut self, pa: u64, data: &[u8]);
}

/// Pages in each of the hyp's and the host's buffers.
pub const MBOX_PAGES: u32 = 1;
const MBOX_BYTES: usize = (MBOX_PAGES as u64 * PAGE) as usize;

/// Why the proxy is not carrying FF-A.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Inert {
    /// FFA_VERSION answered NOT_SUPPORTED: no FF-A in the firmware.
    NoFfa,
    /// The firmware speaks an FF-A major version other than 1.
    BadMajor,
}

/// The host's side.
#[derive(Debug, Default, Clone, Copy)]
struct Host {
    version: Option<Version>,
    /// The host has used an ABI other than FFA_VERSION (its negotiation is over).
    negotiated: bool,
    rxtx: Option<(u64, u64)>,
}

/// One recorded memory transaction.
#[derive(Debug, Clone)]
struct Shared {
    handle: u64,
    ranges: Vec<(u64, u64)>,
    lend: bool,
}

/// A change to what the host may access, for the stage-2 to follow: pages lent (no host
/// access) or reclaimed after a lend (host access again).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AccessChange {
    /// First page.
    pub base: u64,
    /// Pages.
    pub pages: u64,
    /// Whether the host may now access them.
    pub host_access: bool,
}

/// The proxy.
#[derive(Debug)]
pub struct Proxy<P: Platform> {
    p: P,
    /// Whether the firmware accepted the hyp's RX/TX pair.
    buffers: Result<(), FfaError>,
    changes: Vec<AccessChange>,
    /// The version negotiated with the firmware, or why FF-A is off.
    fw: Result<Version, Inert>,
    hyp_tx: u64,
    hyp_rx: u64,
    host: Host,
    own: Ownership,
    shared: Vec<Shared>,
    /// Test-only: refuse DIRECT_REQ2 (see [`Proxy::deny_direct_req2`]).
    deny_req2: bool,
}

/// Calls the proxy refuses (NOT_SUPPORTED), with the reason for each:
pub fn denied(f: u32) -> bool {
    matches!(
        f,
        // The host is never a borrower, and retrieval by the hypervisor is not offered: the
        // retrieve/relinquish/fragment-RX calls have no meaning for it.
        fid::MEM_RETRIEVE_REQ32
            | fid::MEM_RETRIEVE_REQ64
            | fid::MEM_RETRIEVE_RESP
            | fid::MEM_RELINQUISH
            | fid::MEM_FRAG_RX
            // Fragmented sends are not carried (no reassembly buffer): refused up front.
            | fid::MEM_FRAG_TX
            // Donation would need a "donated" page state and no way back: not offered.
            | fid::MEM_DONATE32
            | fid::MEM_DONATE64
            // Time-sliced memory operations.
            | 0x8400_0078
            | 0x8400_0079
            // Indirect messaging moves RX ownership behind the proxy's back (MSG_SEND, MSG_POLL,
            // MSG_WAIT, MSG_SEND2).
            | 0x8400_006E
            | 0x8400_006A
            | fid::MSG_WAIT
            | 0x8400_0086
            // The host is never the target of a direct request, so it never responds.
            | fid::DIRECT_RESP32
            | fid::DIRECT_RESP64
            | fid::DIRECT_RESP2
            // 32-bit RXTX_MAP cannot name buffers above 4 GiB; the 64-bit form is required.
            | fid::RXTX_MAP32
            // Notifications need per-VM bitmaps the proxy does not keep.
            | 0x8400_007D
            ..=0x8400_0083
            | 0xC400_0083
            // Hypervisor-only (RX_ACQUIRE) and secure-only ABIs (CONSOLE_LOG,
            // SECONDARY_EP_REGISTER, MEM_PERM_GET/SET, EL3_INTR_HANDLE).
            | 0x8400_0084
            | 0x8400_008A
            | 0xC400_008A
            | 0x8400_0087
            | 0xC400_0087
            | 0x8400_0088
            | 0xC400_0088
            | 0x8400_0089
            | 0xC400_0089
            | 0x8400_008C
    )
}

fn err(e: FfaError) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[0] = u64::from(fid::ERROR);
    r[2] = u64::from(e as i32 as u32);
    r
}

fn success(w: &[u64]) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[0] = u64::from(fid::SUCCESS32);
    r[2..2 + w.len()].copy_from_slice(w);
    r
}

fn error_of(r: &[u64; 18]) -> Option<FfaError> {
    (r[0] == u64::from(fid::ERROR))
        .then(|| FfaError::try_from(r[2] as u32 as i32).unwrap_or(FfaError::Aborted))
}

fn regs(v: &[u64]) -> [u64; 18] {
    let mut x = [0u64; 18];
    x[..v.len()].copy_from_slice(v);
    x
}

impl<P: Platform> Proxy<P> {
    /// Hyp init: FFA_VERSION(1.2) to the firmware and FFA_RXTX_MAP of the hyp's own pair
    /// (`hyp_tx`, `hyp_rx`: one page each, hyp memory). With no FF-A the proxy is inert and
    /// answers NOT_SUPPORTED to everything. If the firmware refuses the hyp's buffers (someone
    /// mapped a pair for endpoint 0 before the hyp existed — the init-order bug), the proxy
    /// still gates and forwards, and calls that need the buffers are ABORTED.
    pub fn init(mut p: P, own: Ownership, hyp_tx: u64, hyp_rx: u64) -> Self {
        let mut buffers = Err(FfaError::NotSupported);
        let fw = (|| {
            let r = p.smc(regs(&[
                fid::VERSION as u64,
                u64::from(ffa_abi::version_word(V1_2)),
            ]));
            if r[0] as u32 == ffa_abi::VERSION_NOT_SUPPORTED as u32 {
                return Err(Inert::NoFfa);
            }
            let theirs = ffa_abi::parse_version(r[0] as u32).ok_or(Inert::NoFfa)?;
            if theirs.0 != 1 {
                return Err(Inert::BadMajor);
            }
            let v = if theirs > V1_2 { V1_2 } else { theirs };
            let r = p.smc(regs(&[
                fid::RXTX_MAP64 as u64,
                hyp_tx,
                hyp_rx,
                u64::from(MBOX_PAGES),
            ]));
            buffers = match error_of(&r) {
                Some(e) => Err(e),
                None => Ok(()),
            };
            Ok(v)
        })();
        Proxy {
            p,
            buffers,
            changes: Vec::new(),
            fw,
            hyp_tx,
            hyp_rx,
            host: Host::default(),
            own,
            shared: Vec::new(),
            deny_req2: false,
        }
    }

    /// Test-only: refuse FFA_MSG_SEND_DIRECT_REQ2 and answer FFA_FEATURES for it with
    /// NOT_SUPPORTED, as pKVM in Linux 7.3 still does — so a client that asks FFA_FEATURES
    /// (Catena's `tpm-crb-ffa`) can be shown falling back to REQ.
    pub fn deny_direct_req2(&mut self) {
        self.deny_req2 = true;
    }

    fn refused(&self, f: u32) -> bool {
        denied(f) || (self.deny_req2 && f == fid::DIRECT_REQ2)
    }

    /// The version negotiated with the firmware, or why FF-A is off.
    pub fn firmware(&self) -> Result<Version, Inert> {
        self.fw
    }

    /// The host's RX/TX pair (TX, RX), once the host mapped one: the only host pages the
    /// proxy reads or writes.
    pub fn host_buffers(&self) -> Option<(u64, u64)> {
        self.host.rxtx
    }

    /// Whether the firmware mapped the hyp's RX/TX pair (or its refusal).
    pub fn buffers(&self) -> Result<(), FfaError> {
        self.buffers
    }

    /// The version the host negotiated with the proxy.
    pub fn host_version(&self) -> Option<Version> {
        self.host.version
    }

    /// Page ownership (the stage-2 follows it).
    pub fn ownership(&self) -> &Ownership {
        &self.own
    }

    /// The platform (tests inspect it).
    pub fn platform(&mut self) -> &mut P {
        &mut self.p
    }

    /// Handles an SMC from the host. `None` when it is not an FF-A call (forward it unchanged).
    pub fn handle(&mut self, x: &[u64; 18]) -> Option<[u64; 18]> {
        let mut r = *x;
        self.handle_in_place(&mut r).then_some(r)
    }

    /// [`Proxy::handle`] in place: `x` holds the host's registers, and on `true` the answer
    /// (a call relayed unchanged — a direct request that passed its checks — goes to EL3 on
    /// these very registers). `false`: not an FF-A call, `x` untouched.
    pub fn handle_in_place(&mut self, x: &mut [u64; 18]) -> bool {
        let f = (x[0] as u32) & !(1 << 16);
        if !fid::is_ffa(f) {
            return false;
        }
        match self.answer(f, x) {
            Some(r) => *x = r,
            None => self.p.smc_in_place(x),
        }
        true
    }

    /// An FF-A call's answer, or `None` to relay it to EL3 as it is.
    fn answer(&mut self, f: u32, x: &[u64; 18]) -> Option<[u64; 18]> {
        let Ok(fw) = self.fw else {
            let mut r = if f == fid::VERSION {
                [0u64; 18]
            } else {
                err(FfaError::NotSupported)
            };
            if f == fid::VERSION {
                r[0] = ffa_abi::VERSION_NOT_SUPPORTED;
            }
            return Some(r);
        };
        if f == fid::VERSION {
            return Some(self.version(fw, x[1] as u32));
        }
        let Some(hv) = self.host.version else {
            return Some(err(FfaError::InvalidParameters));
        };
        self.host.negotiated = true;
        if self.refused(f) {
            return Some(err(FfaError::NotSupported));
        }
        // Every host call but a direct request is decoded by the typed layer (arm-ffa's
        // `Interface`, at the host's version) before it is acted on or forwarded: what it
        // refuses — an FF-A ID nobody defines, a call the host's version does not have,
        // malformed flags — is answered here and never reaches the firmware. The handlers
        // below still read the registers for the rules arm-ffa does not check. Direct
        // requests, the hot path, are checked by hand below (the sender) and by the SPMC,
        // which decodes them itself: the typed decode costs ~900 instructions a call
        // (`cargo xtask bench ffa`), which would take the proxy past its budget.
        let direct = matches!(f, fid::DIRECT_REQ32 | fid::DIRECT_REQ64 | fid::DIRECT_REQ2);
        if let Some(Err(e)) = (!direct).then(|| ffa_abi::decode(hv, x)) {
            return Some(err(match e {
                arm_ffa::Error::InvalidInformationTag(_) => FfaError::InvalidParameters,
                e => ffa_abi::status_of(e),
            }));
        }
        Some(match f {
            fid::FEATURES => self.features(hv, x),
            fid::RXTX_MAP64 => self.rxtx_map(x).unwrap_or_else(err),
            fid::RXTX_UNMAP => self.rxtx_unmap(x[1] as u32).unwrap_or_else(err),
            fid::PARTITION_INFO_GET
            | fid::MEM_SHARE32
            | fid::MEM_SHARE64
            | fid::MEM_LEND32
            | fid::MEM_LEND64
                if self.buffers.is_err() =>
            {
                // The firmware never accepted the hyp's buffers: nothing that needs them works.
                err(FfaError::Aborted)
            }
            fid::PARTITION_INFO_GET => self.partition_info_get(fw, hv, x).unwrap_or_else(err),
            fid::MEM_SHARE32 | fid::MEM_SHARE64 => {
                self.mem_send(fw, hv, false, x).unwrap_or_else(err)
            }
            fid::MEM_LEND32 | fid::MEM_LEND64 => self.mem_send(fw, hv, true, x).unwrap_or_else(err),
            fid::MEM_RECLAIM => self.mem_reclaim(x).unwrap_or_else(err),
            fid::DIRECT_REQ32 | fid::DIRECT_REQ64 | fid::DIRECT_REQ2 => {
                // The sender in w1[31:16] must be the host itself (endpoint 0).
                if (x[1] >> 16) & 0xffff != u64::from(NS_ID) {
                    err(FfaError::InvalidParameters)
                } else if f == fid::DIRECT_REQ2 && fw < V1_2 {
                    err(FfaError::NotSupported)
                } else {
                    // Relayed as it is, on the caller's registers.
                    return None;
                }
            }
            _ => return None,
        })
    }

    /// The host's FFA_VERSION (§13.2): answered here with the firmware's version; the host's
    /// own is recorded (downgrades to ours when newer). A different version after the host
    /// used another ABI is refused, as the SPMC does.
    fn version(&mut self, fw: Version, req: u32) -> [u64; 18] {
        let mut r = [0u64; 18];
        r[0] = match ffa_abi::parse_version(req) {
            Some(v) if v.0 == 1 => {
                let v = if v > fw { fw } else { v };
                if self.host.negotiated && self.host.version != Some(v) {
                    ffa_abi::VERSION_NOT_SUPPORTED
                } else {
                    self.host.version = Some(v);
                    u64::from(ffa_abi::version_word(fw))
                }
            }
            _ => ffa_abi::VERSION_NOT_SUPPORTED,
        };
        r
    }

    fn features(&mut self, hv: Version, x: &[u64; 18]) -> [u64; 18] {
        let q = x[1] as u32;
        if q & (1 << 31) != 0 && self.refused(q) {
            return err(FfaError::NotSupported);
        }
        match q {
            // The proxy's own buffer rule: 4 KiB alignment, exactly one page.
            fid::RXTX_MAP64 => success(&[if hv >= V1_2 {
                u64::from(MBOX_PAGES) << 16
            } else {
                0
            }]),
            fid::MEM_SHARE32 | fid::MEM_SHARE64 | fid::MEM_LEND32 | fid::MEM_LEND64 => {
                // Forward for the truth, but never advertise dynamically allocated buffers:
                // the proxy reads descriptors from the TX buffer only.
                let mut r = self.p.smc(*x);
                if error_of(&r).is_none() {
                    r[2] &= !1;
                }
                r
            }
            _ => self.p.smc(*x),
        }
    }

    fn rxtx_map(&mut self, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let (tx, rx, pages) = (x[1], x[2], x[3] as u32);
        if pages != MBOX_PAGES || !tx.is_multiple_of(PAGE) || !rx.is_multiple_of(PAGE) || tx == rx {
            return Err(FfaError::InvalidParameters);
        }
        // Pages that are not the host's to give are invalid whatever else is true.
        let owned = |pa| self.own.state(pa) == Some(State::Owned);
        if !owned(tx) || !owned(rx) {
            return Err(FfaError::InvalidParameters);
        }
        if self.host.rxtx.is_some() {
            return Err(FfaError::Denied);
        }
        self.own
            .transition_all(&[(tx, 1), (rx, 1)], State::Owned, State::SharedHyp)
            .map_err(|_| FfaError::InvalidParameters)?;
        self.host.rxtx = Some((tx, rx));
        Ok(success(&[]))
    }

    fn rxtx_unmap(&mut self, w1: u32) -> Result<[u64; 18], FfaError> {
        if w1 >> 16 != u32::from(NS_ID) || w1 & 0xffff != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let (tx, rx) = self.host.rxtx.take().ok_or(FfaError::InvalidParameters)?;
        // Both pages were moved to SharedHyp at map time and nothing else moves them.
        let _ = self
            .own
            .transition_all(&[(tx, 1), (rx, 1)], State::SharedHyp, State::Owned);
        Ok(success(&[]))
    }

    /// FFA_PARTITION_INFO_GET through the hyp's RX, copied into the host's RX in the host's
    /// descriptor size. RX ownership: the firmware's RX stays with the hyp until the host's
    /// FFA_RX_RELEASE is forwarded, exactly mirroring the host's own RX.
    fn partition_info_get(
        &mut self,
        fw: Version,
        hv: Version,
        x: &[u64; 18],
    ) -> Result<[u64; 18], FfaError> {
        let flags = x[5] as u32;
        if hv < V1_1 && flags != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let count_only = flags & 1 != 0;
        let host_rx = match self.host.rxtx {
            Some((_, rx)) => rx,
            None if count_only => 0,
            None => return Err(FfaError::Busy),
        };
        let r = self.p.smc(regs(&x[..6]));
        if error_of(&r).is_some() || count_only {
            let mut out = r;
            if count_only && error_of(&r).is_none() {
                out[3] = ffa_abi::partinfo::desc_size(hv) as u64;
            }
            return Ok(out);
        }
        let count = r[2] as usize;
        let size = if fw < V1_1 { 8 } else { r[3] as usize };
        let mut buf = vec![0u8; MBOX_BYTES];
        self.p.read(self.hyp_rx, &mut buf);
        let descs = ffa_abi::partinfo::decode(&buf, count, size);
        let out_len = count.checked_mul(ffa_abi::partinfo::desc_size(hv));
        match (descs, out_len) {
            (Ok(d), Some(n)) if n <= MBOX_BYTES => {
                let mut out = vec![0u8; n];
                ffa_abi::partinfo::encode(hv, &d, &mut out)?;
                self.p.write(host_rx, &out);
                Ok(success(&[
                    count as u64,
                    if hv >= V1_1 {
                        ffa_abi::partinfo::desc_size(hv) as u64
                    } else {
                        0
                    },
                ]))
            }
            _ => {
                // Bogus or oversize answer: give the firmware's RX back and say so.
                self.p.smc(regs(&[fid::RX_RELEASE as u64]));
                Err(FfaError::Aborted)
            }
        }
    }

    fn mem_send(
        &mut self,
        fw: Version,
        hv: Version,
        lend: bool,
        x: &[u64; 18],
    ) -> Result<[u64; 18], FfaError> {
        let (total, frag) = (x[1] as u32 as usize, x[2] as u32 as usize);
        if x[3] != 0 || x[4] as u32 != 0 || total == 0 || total > MBOX_BYTES || frag > total {
            return Err(FfaError::InvalidParameters);
        }
        if frag != total {
            return Err(FfaError::NotSupported);
        }
        let (host_tx, _) = self.host.rxtx.ok_or(FfaError::InvalidParameters)?;
        // One copy out of the host's TX; from here on only the copy is read.
        let mut desc = vec![0u8; total];
        self.p.read(host_tx, &mut desc);
        let txn = ffa_abi::mem::parse(hv, &desc, Composite::Required)
            .map_err(|_| FfaError::InvalidParameters)?;
        if txn.sender != NS_ID || txn.handle != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let ranges: Vec<(u64, u64)> = txn
            .constituents
            .iter()
            .map(|c| (c.address, u64::from(c.pages)))
            .collect();
        let to = if lend {
            State::Lent
        } else {
            State::SharedSecure
        };
        self.own
            .transition_all(&ranges, State::Owned, to)
            .map_err(|e| match e {
                OwnError::BadRange => FfaError::InvalidParameters,
                OwnError::NotHost(_) | OwnError::WrongState(..) => FfaError::Denied,
            })?;
        let fw_desc = ffa_abi::mem::build(fw, &txn);
        let r = if fw_desc.len() > MBOX_BYTES {
            err(FfaError::NoMemory)
        } else {
            self.p.write(self.hyp_tx, &fw_desc);
            let n = fw_desc.len() as u64;
            let f = if lend {
                fid::MEM_LEND64
            } else {
                fid::MEM_SHARE64
            };
            self.p.smc(regs(&[f as u64, n, n]))
        };
        if r[0] != u64::from(fid::SUCCESS32) {
            // Roll back: the pages are the host's again.
            let _ = self.own.transition_all(&ranges, to, State::Owned);
            return Ok(if error_of(&r).is_some() {
                r
            } else {
                err(FfaError::Aborted)
            });
        }
        let handle = (r[2] & 0xffff_ffff) | ((r[3] & 0xffff_ffff) << 32);
        if lend {
            let lost = ranges.iter().map(|&(base, pages)| AccessChange {
                base,
                pages,
                host_access: false,
            });
            self.changes.extend(lost);
        }
        self.shared.push(Shared {
            handle,
            ranges,
            lend,
        });
        Ok(r)
    }

    fn mem_reclaim(&mut self, x: &[u64; 18]) -> Result<[u64; 18], FfaError> {
        let handle = (x[1] & 0xffff_ffff) | ((x[2] & 0xffff_ffff) << 32);
        let i = self
            .shared
            .iter()
            .position(|s| s.handle == handle)
            .ok_or(FfaError::InvalidParameters)?;
        let r = self.p.smc(regs(&x[..4]));
        if r[0] == u64::from(fid::SUCCESS32) {
            let s = self.shared.remove(i);
            let from = if s.lend {
                State::Lent
            } else {
                State::SharedSecure
            };
            let _ = self.own.transition_all(&s.ranges, from, State::Owned);
            if s.lend {
                let back = s.ranges.iter().map(|&(base, pages)| AccessChange {
                    base,
                    pages,
                    host_access: true,
                });
                self.changes.extend(back);
            }
        }
        Ok(r)
    }

    /// Takes the host-access changes since the last call (the hyp applies them to the stage-2).
    pub fn take_access_changes(&mut self) -> Vec<AccessChange> {
        core::mem::take(&mut self.changes)
    }

    /// Memory the host shared or lent and has not reclaimed: (handle, constituents).
    pub fn outstanding(&self) -> Vec<(u64, Vec<Constituent>)> {
        self.shared
            .iter()
            .map(|s| {
                (
                    s.handle,
                    s.ranges
                        .iter()
                        .map(|&(a, n)| Constituent {
                            address: a,
                            pages: n as u32,
                        })
                        .collect(),
                )
            })
            .collect()
    }
}

/// Builds a host share descriptor (tests and the kernel use the same shape).
pub fn share_descriptor(v: Version, receiver: u16, constituents: Vec<Constituent>) -> Vec<u8> {
    ffa_abi::mem::build(
        v,
        &MemTxn {
            sender: NS_ID,
            attributes: ffa_abi::mem::ATTR_NORMAL_WB_INNER,
            emads: vec![ffa_abi::mem::Emad {
                receiver,
                perms: ffa_abi::mem::DATA_RW | ffa_abi::mem::INSTR_NX,
                flags: 0,
            }],
            constituents,
            ..MemTxn::default()
        },
    )
}

#[cfg(test)]
mod tests;
