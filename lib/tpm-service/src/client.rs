//! The normal world's side of DEN0138: a CRB client over the same [`Crb`] page model, as
//! Linux's `tpm_crb` + `tpm_crb_ffa` use the interface (locality request through LOC_CTRL and
//! START(locality), a command through CTRL_START and START(command), completion when the
//! service clears CTRL_START, errors in CTRL_STS bit 0).
//!
//! Owns: every check on what the service left in the CRB (buffer addresses and sizes must name
//! the locality's own data area; the response's length must fit the response buffer and the
//! caller's). Must not: make the FF-A call itself (a [`Channel`] does: the kernel's FF-A
//! session, or the service directly in tests).

use crate::{Crb, DATA, DATA_SIZE, LOCALITIES, OutsideCrb, PAGE, den0138::*, r32, reg, snap32};

/// One DEN0138 call: x4 = `func`, x5, x6 (x7 = 0); returns (x4 status, x5 result).
pub trait Channel {
    /// Makes the call; `Err` when the FF-A layer failed (its reason).
    fn call(&mut self, func: u64, x5: u64, x6: u64) -> Result<(u64, u64), &'static str>;
}

/// Why a client operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The FF-A call failed.
    Channel(&'static str),
    /// The service answered with this DEN0138 status.
    Status(u64),
    /// The interface version is not 1.x.
    Version(u64),
    /// The CRB does not say what it must (its description).
    Crb(&'static str),
    /// The command does not fit the command buffer.
    TooLong,
    /// The TPM reported an error (CTRL_STS bit 0) with no response.
    TpmError,
    /// CTRL_START was still set after the call returned and the polls ran out.
    Timeout,
}

impl ClientError {
    /// A short name for events.
    pub fn name(&self) -> &'static str {
        match self {
            ClientError::Channel(r) | ClientError::Crb(r) => r,
            ClientError::Status(s) => status_name(*s),
            ClientError::Version(_) => "interface-version",
            ClientError::TooLong => "command-too-long",
            ClientError::TpmError => "tpm-error",
            ClientError::Timeout => "timeout",
        }
    }
}

/// A DEN0138 status by name.
pub fn status_name(s: u64) -> &'static str {
    match s {
        OK => "ok",
        OK_RESULTS_RETURNED => "ok-results-returned",
        NOFUNC => "nofunc",
        NOTSUP => "notsup",
        INVARG => "invarg",
        INV_CRB_CTRL_DATA => "inv-crb-ctrl-data",
        ALREADY => "already",
        DENIED => "denied",
        NOMEM => "nomem",
        _ => "unknown-status",
    }
}

impl From<OutsideCrb> for ClientError {
    fn from(_: OutsideCrb) -> ClientError {
        ClientError::Crb("access outside the CRB")
    }
}

/// A TPM response's header: tag, size, response code (TPM 2.0 Part 1 §18.10).
const HEADER: usize = 10;

/// How many times to look at CTRL_START after START returned (the service completes
/// synchronously; a bound keeps a broken one from hanging the kernel).
pub const COMPLETION_POLLS: usize = 1000;

/// A locality's command and response buffers, as offsets in the CRB, checked.
#[derive(Clone, Copy, Debug)]
struct Buffers {
    cmd_off: u64,
    cmd_cap: usize,
    rsp_off: u64,
    rsp_cap: usize,
}

/// A client for one CRB.
pub struct Client<C, F> {
    crb: C,
    ch: F,
    crb_pa: u64,
    /// The locality [`Client::execute`] holds between commands.
    held: Option<u8>,
    /// Each locality's buffers, read and checked at its first command and kept: the TPM fixes
    /// them (TCG PTP §6.5.3.8: the CRB's CMD/RSP address and size registers are the TPM's), as
    /// Linux's `tpm_crb` reads them once at probe. A later change to the registers cannot
    /// move where the client writes.
    buffers: [Option<Buffers>; LOCALITIES as usize],
}

impl<C: Crb, F: Channel> Client<C, F> {
    /// A client for the CRB at physical `crb_pa`, reached through `crb`, calling through `ch`.
    pub fn new(crb_pa: u64, crb: C, ch: F) -> Self {
        Client {
            crb,
            ch,
            crb_pa,
            held: None,
            buffers: [None; LOCALITIES as usize],
        }
    }

    /// The locality held between commands, if any.
    pub fn held(&self) -> Option<u8> {
        self.held
    }

    fn call(&mut self, func: u64, x5: u64, x6: u64) -> Result<(u64, u64), ClientError> {
        self.ch.call(func, x5, x6).map_err(ClientError::Channel)
    }

    fn ok(&mut self, func: u64, x5: u64, x6: u64) -> Result<(), ClientError> {
        match self.call(func, x5, x6)?.0 {
            OK => Ok(()),
            s => Err(ClientError::Status(s)),
        }
    }

    /// GET_INTERFACE_VERSION; must be 1.x.
    pub fn version(&mut self) -> Result<(u16, u16), ClientError> {
        match self.call(GET_INTERFACE_VERSION, 0, 0)? {
            (OK_RESULTS_RETURNED, v) if v >> 16 == 1 => Ok(((v >> 16) as u16, v as u16)),
            (OK_RESULTS_RETURNED, v) => Err(ClientError::Version(v)),
            (s, _) => Err(ClientError::Status(s)),
        }
    }

    fn page(loc: u8) -> Result<u64, ClientError> {
        if u64::from(loc) >= LOCALITIES {
            return Err(ClientError::Crb("no such locality"));
        }
        Ok(u64::from(loc) * PAGE)
    }

    /// Requests `loc` (LOC_CTRL requestAccess, START(locality)); granted when LOC_STS says so.
    pub fn request_locality(&mut self, loc: u8) -> Result<(), ClientError> {
        let p = Self::page(loc)?;
        self.crb.write(p + reg::LOC_CTRL, &1u32.to_le_bytes())?;
        match self.ok(START, START_LOCALITY, u64::from(loc)) {
            Ok(()) | Err(ClientError::Status(ALREADY)) => {}
            Err(e) => return Err(e),
        }
        if r32(&self.crb, p + reg::LOC_STS)? & 1 == 0 {
            return Err(ClientError::Crb("locality not granted"));
        }
        Ok(())
    }

    /// Gives `loc` back (LOC_CTRL relinquish, START(locality)).
    pub fn relinquish_locality(&mut self, loc: u8) -> Result<(), ClientError> {
        let p = Self::page(loc)?;
        self.crb.write(p + reg::LOC_CTRL, &2u32.to_le_bytes())?;
        self.ok(START, START_LOCALITY, u64::from(loc))
    }

    /// The buffer (address, size) the CRB names, as an offset inside `loc`'s data area.
    fn buffer(&self, loc: u8, addr: u64, size: u32) -> Result<(u64, usize), ClientError> {
        let area = self.crb_pa + u64::from(loc) * PAGE + DATA;
        let off = addr
            .checked_sub(area)
            .filter(|o| o.saturating_add(u64::from(size)) <= DATA_SIZE)
            .ok_or(ClientError::Crb("buffer outside the locality's data area"))?;
        Ok((u64::from(loc) * PAGE + DATA + off, size as usize))
    }

    /// `loc`'s buffers: read from its CMD_SIZE..RSP_ADDR registers (one read of the 24
    /// contiguous bytes) and checked the first time, then kept.
    fn buffers(&mut self, loc: u8) -> Result<Buffers, ClientError> {
        let p = Self::page(loc)?;
        if let Some(b) = self.buffers[usize::from(loc)] {
            return Ok(b);
        }
        let mut r = [0u8; (reg::RSP_ADDR + 8 - reg::CMD_SIZE) as usize];
        self.crb.read(p + reg::CMD_SIZE, &mut r)?;
        let w = |o: u64| snap32(&r, reg::CMD_SIZE, o);
        let cmd_addr = u64::from(w(reg::CMD_LADDR)) | (u64::from(w(reg::CMD_HADDR)) << 32);
        let rsp_addr = u64::from(w(reg::RSP_ADDR)) | (u64::from(w(reg::RSP_ADDR + 4)) << 32);
        let (cmd_off, cmd_cap) = self.buffer(loc, cmd_addr, w(reg::CMD_SIZE))?;
        let (rsp_off, rsp_cap) = self.buffer(loc, rsp_addr, w(reg::RSP_SIZE))?;
        if rsp_cap < HEADER {
            return Err(ClientError::Crb("response buffer below a header"));
        }
        let b = Buffers {
            cmd_off,
            cmd_cap,
            rsp_off,
            rsp_cap,
        };
        self.buffers[usize::from(loc)] = Some(b);
        Ok(b)
    }

    /// Runs `cmd` at `loc` (held) and reads the response into `rsp`; its length.
    pub fn transmit(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, ClientError> {
        let p = Self::page(loc)?;
        let b = self.buffers(loc)?;
        if cmd.len() > b.cmd_cap {
            return Err(ClientError::TooLong);
        }
        if rsp.len() < HEADER {
            return Err(ClientError::Crb("response length outside its buffer"));
        }
        self.crb.write(b.cmd_off, cmd)?;
        self.crb.write(p + reg::CTRL_START, &1u32.to_le_bytes())?;
        self.ok(START, START_COMMAND, u64::from(loc))?;
        // CTRL_STS..CTRL_START in one read: the service sets CTRL_STS before it clears
        // CTRL_START, so a cleared start bit comes with its command's status.
        let mut ctrl = [0u8; (reg::CTRL_START + 4 - reg::CTRL_STS) as usize];
        let mut done = false;
        for _ in 0..COMPLETION_POLLS {
            self.crb.read(p + reg::CTRL_STS, &mut ctrl)?;
            if ctrl[(reg::CTRL_START - reg::CTRL_STS) as usize] & 1 == 0 {
                done = true;
                break;
            }
            core::hint::spin_loop();
        }
        if !done {
            return Err(ClientError::Timeout);
        }
        if ctrl[0] & 1 != 0 {
            return Err(ClientError::TpmError);
        }
        // The header, then only the rest of the response.
        self.crb.read(b.rsp_off, &mut rsp[..HEADER])?;
        let len = u32::from_be_bytes([rsp[2], rsp[3], rsp[4], rsp[5]]) as usize;
        if len < HEADER || len > b.rsp_cap || len > rsp.len() {
            return Err(ClientError::Crb("response length outside its buffer"));
        }
        self.crb
            .read(b.rsp_off + HEADER as u64, &mut rsp[HEADER..len])?;
        Ok(len)
    }

    /// Runs `cmd` at `loc`, which stays held afterwards: one START per command instead of
    /// three (request, command, relinquish as Linux's `tpm_crb` does per transmit). A
    /// different locality gives the held one back first; a command the service refuses
    /// with DENIED (it no longer counts `loc` as ours) requests it again and retries once.
    pub fn execute(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, ClientError> {
        self.hold(loc)?;
        match self.transmit(loc, cmd, rsp) {
            Err(ClientError::Status(DENIED)) => {
                self.held = None;
                self.hold(loc)?;
                self.transmit(loc, cmd, rsp)
            }
            r => r,
        }
    }

    fn hold(&mut self, loc: u8) -> Result<(), ClientError> {
        if self.held == Some(loc) {
            return Ok(());
        }
        self.release()?;
        self.request_locality(loc)?;
        self.held = Some(loc);
        Ok(())
    }

    /// Gives back the held locality, if any.
    pub fn release(&mut self) -> Result<(), ClientError> {
        match self.held.take() {
            Some(h) => self.relinquish_locality(h),
            None => Ok(()),
        }
    }

    /// The channel (to change how it calls).
    pub fn channel(&mut self) -> &mut F {
        &mut self.ch
    }
}
