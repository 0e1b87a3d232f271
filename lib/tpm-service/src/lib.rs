//! The TPM service partition (Arm DEN0138 v1.0, "TPM Service Command Response Buffer Interface
//! over FF-A"), as pure logic: the function dispatcher on direct-message registers and the
//! CRB (TCG PC Client Platform TPM Profile, CRB interface) state machine for localities and
//! commands.
//!
//! Owns: every decision about what the normal world wrote in the CRB (addresses, sizes,
//! lengths, control bits are outside input, checked before use) and the DEN0138 status of each
//! call. Must not: touch memory or the TPM itself — the firmware gives it a [`Crb`] (the
//! normal-world pages, by offset) and a [`Tpm`] (swtpm behind the TIS), tests give it fakes.
//! Single-threaded: the caller serialises calls (and answers FF-A BUSY to a second CPU).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

/// A test-only SMC of Catena's firmware (SMC64 fast call, owning entity 2: the SiP service;
/// SMCCC DEN0028 function-ID bits 29:24): one PCR 16 extend through the TIS, done and timed at
/// EL3; w0 = 0 and x1 = its counter ticks, else SMCCC NOT_SUPPORTED. The firmware answers it
/// only when the boot's command line asked for `catena.tpm_bench_pairs=` (`cargo xtask bench
/// tpm`'s time ratio); the kernel's bench hook calls it.
pub const BENCH_DIRECT_SMC: u32 = 0xC200_CA01;

pub mod den0138 {
    //! DEN0138 constants (function IDs and status codes in x4, as Linux `tpm_crb_ffa` and
    //! Trusted Services use them).
    use ffa_abi::Uuid;

    /// The service UUID.
    pub const UUID: Uuid = ffa_abi::uuid("17b862a4-1806-4faf-86b3-089a58353861");
    /// Interface version 1.0 (major in bits 30:16, minor in 15:0).
    pub const INTERFACE_VERSION: u64 = 0x0001_0000;

    /// GET_INTERFACE_VERSION.
    pub const GET_INTERFACE_VERSION: u64 = 0x0f00_0001;
    /// GET_FEATURE_INFO.
    pub const GET_FEATURE_INFO: u64 = 0x0f00_0101;
    /// START.
    pub const START: u64 = 0x0f00_0201;
    /// REGISTER_FOR_NOTIFICATION.
    pub const REGISTER_FOR_NOTIFICATION: u64 = 0x0f00_0301;
    /// UNREGISTER_FROM_NOTIFICATION.
    pub const UNREGISTER_FROM_NOTIFICATION: u64 = 0x0f00_0401;
    /// FINISH_NOTIFIED.
    pub const FINISH_NOTIFIED: u64 = 0x0f00_0501;

    /// START qualifier: a command is ready.
    pub const START_COMMAND: u64 = 0;
    /// START qualifier: a locality request or relinquish.
    pub const START_LOCALITY: u64 = 1;

    /// Status: done.
    pub const OK: u64 = 0x0500_0001;
    /// Status: done, results in x5 onwards.
    pub const OK_RESULTS_RETURNED: u64 = 0x0500_0002;
    /// Status: no such function.
    pub const NOFUNC: u64 = 0x8e00_0001;
    /// Status: not supported.
    pub const NOTSUP: u64 = 0x8e00_0002;
    /// Status: invalid argument.
    pub const INVARG: u64 = 0x8e00_0005;
    /// Status: the CRB's control data is invalid.
    pub const INV_CRB_CTRL_DATA: u64 = 0x8e00_0006;
    /// Status: already done.
    pub const ALREADY: u64 = 0x8e00_0009;
    /// Status: not allowed.
    pub const DENIED: u64 = 0x8e00_000a;
    /// Status: out of memory.
    pub const NOMEM: u64 = 0x8e00_000b;
}

use den0138::*;

pub mod client;
pub mod partition;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

/// The TPM service partition's FF-A ID.
pub const PARTITION_ID: u16 = 0x8002;

/// Localities: 0..=4, one 4 KiB CRB page each.
pub const LOCALITIES: u64 = 5;
/// Bytes per locality page.
pub const PAGE: u64 = 0x1000;
/// The data buffer: from 0x80 to the end of the page.
pub const DATA: u64 = 0x80;
/// Its size.
pub const DATA_SIZE: u64 = PAGE - DATA;

/// CRB register offsets within a locality's page (TCG PTP, CRB; Linux `crb_regs_head/tail`).
pub mod reg {
    /// LOC_STATE: bit 0 tpmEstablished, 1 locAssigned, 4:2 activeLocality, 7 tpmRegValidSts.
    pub const LOC_STATE: u64 = 0x00;
    /// LOC_CTRL: bit 0 requestAccess, 1 relinquish.
    pub const LOC_CTRL: u64 = 0x08;
    /// LOC_STS: bit 0 granted.
    pub const LOC_STS: u64 = 0x0c;
    /// CTRL_REQ: bit 0 cmdReady, 1 goIdle.
    pub const CTRL_REQ: u64 = 0x40;
    /// CTRL_STS: bit 0 tpmSts (error), 1 tpmIdle.
    pub const CTRL_STS: u64 = 0x44;
    /// CTRL_CANCEL: bit 0.
    pub const CTRL_CANCEL: u64 = 0x48;
    /// CTRL_START: bit 0.
    pub const CTRL_START: u64 = 0x4c;
    /// CMD_SIZE.
    pub const CMD_SIZE: u64 = 0x58;
    /// CMD_LADDR.
    pub const CMD_LADDR: u64 = 0x5c;
    /// CMD_HADDR.
    pub const CMD_HADDR: u64 = 0x60;
    /// RSP_SIZE.
    pub const RSP_SIZE: u64 = 0x64;
    /// RSP_ADDR (64-bit).
    pub const RSP_ADDR: u64 = 0x68;
}

const LOC_ASSIGNED: u32 = 1 << 1;
const REG_VALID: u32 = 1 << 7;

/// An access outside the CRB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideCrb;

/// The CRB pages (normal-world memory), by offset from their start.
pub trait Crb {
    /// Reads `buf.len()` bytes at `off`; `Err` outside the pages.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideCrb>;
    /// Writes `data` at `off`; `Err` outside the pages.
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideCrb>;
}

/// Why the TPM did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpmError {
    /// It did not answer in time, or the transport to it failed.
    Failed,
}

/// The TPM behind the service (swtpm behind QEMU's TIS, for Catena).
pub trait Tpm {
    /// Runs one command at `locality`; the response goes to `rsp`, its length is returned.
    fn execute(&mut self, locality: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError>;
}

fn r32(crb: &dyn Crb, off: u64) -> Result<u32, OutsideCrb> {
    let mut b = [0u8; 4];
    crb.read(off, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Register `off` out of `snap`, a copy of the CRB page's registers taken from offset `base`.
/// Both are the crate's own register offsets, `off` inside the copy.
fn snap32(snap: &[u8], base: u64, off: u64) -> u32 {
    let i = (off - base) as usize;
    u32::from_le_bytes([snap[i], snap[i + 1], snap[i + 2], snap[i + 3]])
}

fn w32(crb: &mut dyn Crb, off: u64, v: u32) -> Result<(), OutsideCrb> {
    crb.write(off, &v.to_le_bytes())
}

/// The service's state: which locality is active.
#[derive(Debug)]
pub struct Service {
    /// The physical address of the CRB's first page (commands name buffers by address).
    crb_pa: u64,
    active: Option<u8>,
    /// The command and response copies ([`Service::command`]), allocated once: zero-filling
    /// two stack buffers per command cost more than the rest of the service's work.
    scratch: alloc::boxed::Box<[u8]>,
}

/// A decoded call's reply: the status (x4) and results (x5, x6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// x4.
    pub status: u64,
    /// x5.
    pub result: u64,
}

impl Reply {
    fn status(status: u64) -> Reply {
        Reply { status, result: 0 }
    }
}

impl Service {
    /// A service whose CRB starts at physical `crb_pa`; writes the CRB's reset state: every
    /// locality valid and unassigned, each page's command and response buffer its own data
    /// area.
    pub fn new(crb_pa: u64, crb: &mut dyn Crb) -> Result<Service, OutsideCrb> {
        for l in 0..LOCALITIES {
            let p = l * PAGE;
            crb.write(p, &[0u8; DATA as usize])?;
            w32(crb, p + reg::LOC_STATE, REG_VALID)?;
            w32(crb, p + reg::CTRL_STS, 1 << 1)?;
            let data = crb_pa + p + DATA;
            w32(crb, p + reg::CMD_SIZE, DATA_SIZE as u32)?;
            w32(crb, p + reg::CMD_LADDR, data as u32)?;
            w32(crb, p + reg::CMD_HADDR, (data >> 32) as u32)?;
            w32(crb, p + reg::RSP_SIZE, DATA_SIZE as u32)?;
            crb.write(p + reg::RSP_ADDR, &data.to_le_bytes())?;
        }
        Ok(Service::with_state(crb_pa, None))
    }

    fn with_state(crb_pa: u64, active: Option<u8>) -> Service {
        Service {
            crb_pa,
            active,
            scratch: alloc::vec![0u8; 2 * DATA_SIZE as usize].into_boxed_slice(),
        }
    }

    /// The active locality, if any.
    pub fn active(&self) -> Option<u8> {
        self.active
    }

    /// One call: `x[0]` = x3 (MBZ), `x[1]` = x4 (function), `x[2]` = x5, `x[3]` = x6,
    /// `x[4]` = x7 — the same registers in FFA_MSG_SEND_DIRECT_REQ and REQ2.
    pub fn handle(&mut self, x: [u64; 5], crb: &mut dyn Crb, tpm: &mut dyn Tpm) -> Reply {
        if x[0] != 0 {
            return Reply::status(INVARG);
        }
        match x[1] {
            GET_INTERFACE_VERSION => Reply {
                status: OK_RESULTS_RETURNED,
                result: INTERFACE_VERSION,
            },
            // Notifications are optional (DEN0138 §3.4) and not offered.
            GET_FEATURE_INFO
            | REGISTER_FOR_NOTIFICATION
            | UNREGISTER_FROM_NOTIFICATION
            | FINISH_NOTIFIED => Reply::status(NOTSUP),
            START => Reply::status(self.start(x[2], x[3], x[4], crb, tpm)),
            _ => Reply::status(NOFUNC),
        }
    }

    fn start(&mut self, q: u64, loc: u64, x7: u64, crb: &mut dyn Crb, tpm: &mut dyn Tpm) -> u64 {
        // x5 bits 31:8 and all of x7 are MBZ; localities 0..=4.
        if q >> 8 != 0 || x7 != 0 || loc >= LOCALITIES {
            return INVARG;
        }
        let loc = loc as u8;
        let r = match q {
            START_COMMAND => self.command(loc, crb, tpm),
            START_LOCALITY => self.locality(loc, crb),
            _ => return INVARG,
        };
        // The pages are the normal world's: an access outside them is its control data.
        r.unwrap_or(INV_CRB_CTRL_DATA)
    }

    /// Grants or gives back `loc`, as its LOC_CTRL asks.
    fn locality(&mut self, loc: u8, crb: &mut dyn Crb) -> Result<u64, OutsideCrb> {
        if loc == 4 {
            // Locality 4 belongs to the platform's DRTM, not to an OS.
            return Ok(NOTSUP);
        }
        let p = u64::from(loc) * PAGE;
        let ctrl = r32(crb, p + reg::LOC_CTRL)?;
        let (request, relinquish) = (ctrl & 1 != 0, ctrl & 2 != 0);
        if request == relinquish {
            return Ok(INV_CRB_CTRL_DATA);
        }
        if request {
            match self.active {
                Some(a) if a == loc => return Ok(ALREADY),
                Some(_) => return Ok(DENIED),
                None => {}
            }
            self.active = Some(loc);
        } else {
            if self.active != Some(loc) {
                return Ok(DENIED);
            }
            self.active = None;
        }
        // LOC_STATE is aliased across the pages: every page tells the same story.
        let state = match self.active {
            Some(a) => REG_VALID | LOC_ASSIGNED | (u32::from(a) << 2),
            None => REG_VALID,
        };
        for l in 0..LOCALITIES {
            w32(crb, l * PAGE + reg::LOC_STATE, state)?;
        }
        w32(crb, p + reg::LOC_STS, u32::from(request))?;
        w32(crb, p + reg::LOC_CTRL, 0)?;
        Ok(OK)
    }

    /// The buffer `(addr, size)` must lie inside `loc`'s own data area: its offset from the
    /// CRB's start.
    fn buffer(&self, loc: u8, addr: u64, size: u32) -> Option<u64> {
        let area = self.crb_pa + u64::from(loc) * PAGE + DATA;
        let off = addr.checked_sub(area)?;
        (u64::from(size) <= DATA_SIZE && off.checked_add(u64::from(size))? <= DATA_SIZE)
            .then_some(u64::from(loc) * PAGE + DATA + off)
    }

    /// Runs the command in `loc`'s buffer (Linux sets CTRL_START then calls START).
    fn command(
        &mut self,
        loc: u8,
        crb: &mut dyn Crb,
        tpm: &mut dyn Tpm,
    ) -> Result<u64, OutsideCrb> {
        if self.active != Some(loc) {
            return Ok(DENIED);
        }
        let p = u64::from(loc) * PAGE;
        // The control area, CTRL_REQ through RSP_ADDR, in one read: every value below comes
        // from this one snapshot, taken once per START (the normal world may write the page
        // at any time; nothing is read from it twice).
        let mut ctl = [0u8; (reg::RSP_ADDR + 8 - reg::CTRL_REQ) as usize];
        crb.read(p + reg::CTRL_REQ, &mut ctl)?;
        let c32 = |o: u64| snap32(&ctl, reg::CTRL_REQ, o);
        if c32(reg::CTRL_CANCEL) & 1 != 0 {
            // A cancel: nothing runs; the command, if any, is dropped.
            w32(crb, p + reg::CTRL_CANCEL, 0)?;
            w32(crb, p + reg::CTRL_START, 0)?;
            return Ok(OK);
        }
        // CTRL_REQ: Linux's `tpm_crb` asks for Ready (cmdReady, bit 0) before a command and
        // for Idle (goIdle, bit 1) after, each with START(command) and CTRL_START clear, then
        // polls for the bit to clear (PTP §6.5.3.4). Both at once is not a request.
        let req = c32(reg::CTRL_REQ) & 3;
        let start = c32(reg::CTRL_START) & 1 != 0;
        match req {
            0 => {}
            3 => return Ok(INV_CRB_CTRL_DATA),
            _ => {
                let idle = req == 2;
                w32(crb, p + reg::CTRL_STS, u32::from(idle) << 1)?;
                w32(crb, p + reg::CTRL_REQ, 0)?;
                if !start {
                    return Ok(OK);
                }
            }
        }
        if !start {
            return Ok(INV_CRB_CTRL_DATA);
        }
        let cmd_addr = u64::from(c32(reg::CMD_LADDR)) | (u64::from(c32(reg::CMD_HADDR)) << 32);
        let cmd_size = c32(reg::CMD_SIZE);
        let rsp_addr = u64::from(c32(reg::RSP_ADDR)) | (u64::from(c32(reg::RSP_ADDR + 4)) << 32);
        let rsp_size = c32(reg::RSP_SIZE);
        let (Some(cmd_off), Some(rsp_off)) = (
            self.buffer(loc, cmd_addr, cmd_size),
            self.buffer(loc, rsp_addr, rsp_size),
        ) else {
            return Ok(INV_CRB_CTRL_DATA);
        };
        // The command's own length: bytes 2..6, big-endian (TPM 2.0 Part 1 §18); at least a
        // header (10 bytes), at most the buffer. The header is read once, into the copy the
        // TPM gets, then the rest after it.
        if cmd_size < 10 {
            return Ok(INV_CRB_CTRL_DATA);
        }
        // Both sizes are at most DATA_SIZE (checked by `buffer`), each half of `scratch`.
        let (cmd, out) = self.scratch.split_at_mut(DATA_SIZE as usize);
        crb.read(cmd_off, &mut cmd[..10])?;
        let len = u32::from_be_bytes([cmd[2], cmd[3], cmd[4], cmd[5]]);
        if len < 10 || len > cmd_size {
            return Ok(INV_CRB_CTRL_DATA);
        }
        let cmd = &mut cmd[..len as usize];
        crb.read(cmd_off + 10, &mut cmd[10..])?;
        let out = &mut out[..rsp_size as usize];
        match tpm.execute(loc, cmd, out) {
            Ok(n) if n <= out.len() && n >= 10 => {
                crb.write(rsp_off, &out[..n])?;
                w32(crb, p + reg::CTRL_STS, 0)?;
            }
            // No answer, or one that does not fit: the TPM's error bit, no response.
            _ => w32(crb, p + reg::CTRL_STS, 1)?,
        }
        // Linux polls CTRL_START bit 0 for completion.
        w32(crb, p + reg::CTRL_START, 0)?;
        Ok(OK)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod partition_tests;

#[cfg(test)]
mod client_tests;
