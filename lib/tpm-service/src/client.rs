//! The normal world's side of DEN0138: a CRB client over the same [`Crb`] page model, as
//! Linux's `tpm_crb` + `tpm_crb_ffa` use the interface (locality request through LOC_CTRL and
//! START(locality), a command through CTRL_START and START(command), completion when the
//! service clears CTRL_START, errors in CTRL_STS bit 0).
//!
//! Owns: every check on what the service left in the CRB (buffer addresses and sizes must name
//! the locality's own data area; the response's length must fit the response buffer and the
//! caller's). Must not: make the FF-A call itself (a [`Channel`] does: the kernel's FF-A
//! session, or the service directly in tests).

use crate::{Crb, DATA, DATA_SIZE, LOCALITIES, OutsideCrb, PAGE, den0138::*, reg};

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

fn r32(crb: &dyn Crb, off: u64) -> Result<u32, OutsideCrb> {
    let mut b = [0u8; 4];
    crb.read(off, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// How many times to look at CTRL_START after START returned (the service completes
/// synchronously; a bound keeps a broken one from hanging the kernel).
pub const COMPLETION_POLLS: usize = 1000;

/// A client for one CRB.
pub struct Client<C, F> {
    crb: C,
    ch: F,
    crb_pa: u64,
    /// The locality [`Client::execute`] holds between commands.
    held: Option<u8>,
}

impl<C: Crb, F: Channel> Client<C, F> {
    /// A client for the CRB at physical `crb_pa`, reached through `crb`, calling through `ch`.
    pub fn new(crb_pa: u64, crb: C, ch: F) -> Self {
        Client {
            crb,
            ch,
            crb_pa,
            held: None,
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

    /// Runs `cmd` at `loc` (held) and reads the response into `rsp`; its length.
    pub fn transmit(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, ClientError> {
        let p = Self::page(loc)?;
        let cmd_addr = u64::from(r32(&self.crb, p + reg::CMD_LADDR)?)
            | (u64::from(r32(&self.crb, p + reg::CMD_HADDR)?) << 32);
        let cmd_size = r32(&self.crb, p + reg::CMD_SIZE)?;
        let mut ra = [0u8; 8];
        self.crb.read(p + reg::RSP_ADDR, &mut ra)?;
        let rsp_size = r32(&self.crb, p + reg::RSP_SIZE)?;
        let (cmd_off, cmd_cap) = self.buffer(loc, cmd_addr, cmd_size)?;
        let (rsp_off, rsp_cap) = self.buffer(loc, u64::from_le_bytes(ra), rsp_size)?;
        if cmd.len() > cmd_cap {
            return Err(ClientError::TooLong);
        }
        self.crb.write(cmd_off, cmd)?;
        self.crb.write(p + reg::CTRL_START, &1u32.to_le_bytes())?;
        self.ok(START, START_COMMAND, u64::from(loc))?;
        let mut done = false;
        for _ in 0..COMPLETION_POLLS {
            if r32(&self.crb, p + reg::CTRL_START)? & 1 == 0 {
                done = true;
                break;
            }
            core::hint::spin_loop();
        }
        if !done {
            return Err(ClientError::Timeout);
        }
        if r32(&self.crb, p + reg::CTRL_STS)? & 1 != 0 {
            return Err(ClientError::TpmError);
        }
        let mut head = [0u8; 10];
        if rsp_cap < head.len() {
            return Err(ClientError::Crb("response buffer below a header"));
        }
        self.crb.read(rsp_off, &mut head)?;
        let len = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
        if len < head.len() || len > rsp_cap || len > rsp.len() {
            return Err(ClientError::Crb("response length outside its buffer"));
        }
        self.crb.read(rsp_off, &mut rsp[..len])?;
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
