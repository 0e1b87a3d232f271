//! The TPM's FIFO interface (TCG PC Client Platform TPM Profile (PTP) 1.05, §6.3 and §6.5 "TIS"),
//! as a protocol over a register trait: request a locality, send a command in bursts, start it,
//! read the response, give the locality back.
//!
//! Owns: the order of register accesses and every check on what the TPM reports (status
//! validity, `Expect`, burst counts, the response's own length against the caller's buffer),
//! each wait bounded by a PTP timeout. Must not: touch MMIO itself (the firmware's TPM service
//! and the kernel's `tpm-tis` driver give it a [`Io`]; tests give it a fake TIS), or interpret
//! TPM commands beyond the 10-byte header's length field.
#![no_std]
#![forbid(unsafe_code)]

/// Register offsets within a locality's 4 KiB page (PTP §6.5.2, Table 19).
pub mod reg {
    /// TPM_ACCESS_x (8 bits).
    pub const ACCESS: u32 = 0x00;
    /// TPM_INT_ENABLE_x.
    pub const INT_ENABLE: u32 = 0x08;
    /// TPM_INTF_CAPABILITY_x.
    pub const INTF_CAPABILITY: u32 = 0x14;
    /// TPM_STS_x (32 bits: status in 7:0, burstCount in 23:8).
    pub const STS: u32 = 0x18;
    /// TPM_DATA_FIFO_x.
    pub const DATA_FIFO: u32 = 0x24;
    /// TPM_DID_VID_x: vendor ID in 15:0, device ID in 31:16.
    pub const DID_VID: u32 = 0xf00;
    /// TPM_RID_x (8 bits).
    pub const RID: u32 = 0xf04;
}

/// TPM_ACCESS bits (PTP Table 20).
pub mod access {
    /// tpmRegValidSts: the other bits are valid.
    pub const VALID: u8 = 1 << 7;
    /// activeLocality (read); writing 1 relinquishes.
    pub const ACTIVE: u8 = 1 << 5;
    /// requestUse.
    pub const REQUEST_USE: u8 = 1 << 1;
}

/// TPM_STS bits (PTP Table 22).
pub mod sts {
    /// stsValid: dataAvail and Expect are valid.
    pub const VALID: u32 = 1 << 7;
    /// commandReady (read: ready for a command; write: abort / go to Ready).
    pub const COMMAND_READY: u32 = 1 << 6;
    /// tpmGo: execute the command in the FIFO.
    pub const GO: u32 = 1 << 5;
    /// dataAvail: response bytes are waiting.
    pub const DATA_AVAIL: u32 = 1 << 4;
    /// Expect: the TPM expects more command bytes.
    pub const EXPECT: u32 = 1 << 3;
}

/// The five localities, one page each.
pub const LOCALITIES: u8 = 5;
/// The smallest TPM 2.0 response (tag, size, code).
pub const HEADER: usize = 10;

/// Register and clock access for one TIS (offsets from the first locality's page).
pub trait Io {
    /// An 8-bit register read.
    fn read8(&mut self, off: u32) -> u8;
    /// An 8-bit register write.
    fn write8(&mut self, off: u32, v: u8);
    /// A 32-bit register read.
    fn read32(&mut self, off: u32) -> u32;
    /// A 32-bit register write.
    fn write32(&mut self, off: u32, v: u32);
    /// A monotonic clock in microseconds.
    fn now_us(&mut self) -> u64;
    /// Called with `true` before waiting for the TPM to execute a command and `false` after:
    /// a benchmark leaves that wait (host time, not guest work) out of its count.
    fn waiting(&mut self, _on: bool) {}
}

/// The PTP's timeouts (PTP Table 17), and how long a command may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TIMEOUT_A: locality and access changes (750 ms).
    pub a_us: u64,
    /// TIMEOUT_B: commandReady after an abort (2 s).
    pub b_us: u64,
    /// TIMEOUT_C: stsValid and burstCount (200 ms).
    pub c_us: u64,
    /// The longest command (TPM2 key generation on swtpm; PTP leaves it to the vendor: 2 min,
    /// Linux's `TPM2_DURATION_LONG_LONG` is 300 s).
    pub command_us: u64,
}

impl Timeouts {
    /// The PTP's values.
    pub const PTP: Timeouts = Timeouts {
        a_us: 750_000,
        b_us: 2_000_000,
        c_us: 200_000,
        command_us: 120_000_000,
    };
}

/// What went wrong, named by the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TisError {
    /// The locality is outside 0..=4.
    BadLocality,
    /// TPM_ACCESS never became valid (no TPM answering at this address).
    NotPresent,
    /// The locality was not granted within TIMEOUT_A.
    LocalityTimeout,
    /// commandReady did not come within TIMEOUT_B.
    NotReady,
    /// burstCount stayed 0 for TIMEOUT_C.
    BurstTimeout,
    /// The TPM stopped expecting bytes before the command's end, or still expects some after it.
    Expect,
    /// No response within the command timeout.
    CommandTimeout,
    /// The command is shorter than a header, or its header length disagrees with its bytes.
    BadCommand,
    /// The response header's length is below 10 or above the caller's buffer.
    BadResponseLength,
    /// The TPM reported more data after the response's last byte, or less than its length.
    ResponseOverrun,
}

impl TisError {
    /// A short, stable name (event fields).
    pub fn name(self) -> &'static str {
        match self {
            TisError::BadLocality => "bad-locality",
            TisError::NotPresent => "not-present",
            TisError::LocalityTimeout => "locality-timeout",
            TisError::NotReady => "not-ready",
            TisError::BurstTimeout => "burst-timeout",
            TisError::Expect => "expect",
            TisError::CommandTimeout => "command-timeout",
            TisError::BadCommand => "bad-command",
            TisError::BadResponseLength => "bad-response-length",
            TisError::ResponseOverrun => "response-overrun",
        }
    }
}

/// The identity registers of locality 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    /// Vendor ID.
    pub vid: u16,
    /// Device ID.
    pub did: u16,
    /// Revision.
    pub rid: u8,
}

/// One TIS.
#[derive(Debug)]
pub struct Tis<I: Io> {
    io: I,
    t: Timeouts,
}

fn page(loc: u8) -> u32 {
    u32::from(loc) * 0x1000
}

impl<I: Io> Tis<I> {
    /// A TIS reached through `io`, waiting at most `t`.
    pub fn new(io: I, t: Timeouts) -> Tis<I> {
        Tis { io, t }
    }

    /// The register access, back.
    pub fn into_io(self) -> I {
        self.io
    }

    /// Vendor, device and revision; [`TisError::NotPresent`] when locality 0's access register
    /// is not valid or the IDs read as all ones (nothing decodes the address).
    pub fn ids(&mut self) -> Result<Ids, TisError> {
        let a = self.io.read8(reg::ACCESS);
        let dv = self.io.read32(reg::DID_VID);
        if a & access::VALID == 0 || a == 0xff || dv == u32::MAX || dv == 0 {
            return Err(TisError::NotPresent);
        }
        Ok(Ids {
            vid: dv as u16,
            did: (dv >> 16) as u16,
            rid: self.io.read8(reg::RID),
        })
    }

    /// Polls `f` until it is true or `us` pass; true if it became true.
    fn wait(&mut self, us: u64, mut f: impl FnMut(&mut I) -> bool) -> bool {
        let start = self.io.now_us();
        loop {
            if f(&mut self.io) {
                return true;
            }
            if self.io.now_us().saturating_sub(start) > us {
                // One last look: the deadline may have passed while we were descheduled.
                return f(&mut self.io);
            }
            core::hint::spin_loop();
        }
    }

    /// Requests `loc` and waits for it (PTP §6.5.2.4).
    pub fn request_locality(&mut self, loc: u8) -> Result<(), TisError> {
        if loc >= LOCALITIES {
            return Err(TisError::BadLocality);
        }
        let off = page(loc) + reg::ACCESS;
        let held = |io: &mut I| {
            let a = io.read8(off);
            a != 0xff && a & (access::VALID | access::ACTIVE) == access::VALID | access::ACTIVE
        };
        if held(&mut self.io) {
            return Ok(());
        }
        // All ones is a bus with nothing on it, not a valid register.
        let valid = |io: &mut I| {
            let a = io.read8(off);
            a != 0xff && a & access::VALID != 0
        };
        if !self.wait(self.t.a_us, valid) {
            return Err(TisError::NotPresent);
        }
        self.io.write8(off, access::REQUEST_USE);
        if self.wait(self.t.a_us, held) {
            Ok(())
        } else {
            Err(TisError::LocalityTimeout)
        }
    }

    /// Gives `loc` back (writing activeLocality).
    pub fn relinquish(&mut self, loc: u8) {
        if loc < LOCALITIES {
            self.io.write8(page(loc) + reg::ACCESS, access::ACTIVE);
        }
    }

    fn sts(&mut self, loc: u8) -> u32 {
        self.io.read32(page(loc) + reg::STS)
    }

    fn set_sts(&mut self, loc: u8, v: u32) {
        self.io.write32(page(loc) + reg::STS, v);
    }

    /// burstCount, waiting up to TIMEOUT_C for it to be non-zero.
    fn burst(&mut self, loc: u8) -> Result<usize, TisError> {
        let off = page(loc) + reg::STS;
        let mut count = 0;
        let ok = self.wait(self.t.c_us, |io| {
            count = ((io.read32(off) >> 8) & 0xffff) as usize;
            count != 0
        });
        if ok {
            Ok(count)
        } else {
            Err(TisError::BurstTimeout)
        }
    }

    /// stsValid, then the status byte; TIMEOUT_C.
    fn valid_sts(&mut self, loc: u8) -> Result<u32, TisError> {
        let off = page(loc) + reg::STS;
        let mut s = 0;
        if self.wait(self.t.c_us, |io| {
            s = io.read32(off);
            s & sts::VALID != 0
        }) {
            Ok(s)
        } else {
            Err(TisError::BurstTimeout)
        }
    }

    /// Runs `cmd` at `loc` (which the caller holds) and reads the response into `rsp`; returns
    /// its length. The TPM is left Ready-then-Idle (commandReady written) whatever happens.
    pub fn transmit(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TisError> {
        if loc >= LOCALITIES {
            return Err(TisError::BadLocality);
        }
        if cmd.len() < HEADER
            || u32::from_be_bytes([cmd[2], cmd[3], cmd[4], cmd[5]]) as usize != cmd.len()
        {
            return Err(TisError::BadCommand);
        }
        let r = self.exchange(loc, cmd, rsp);
        // Abort anything left (a partial command, an unread response): PTP §6.5.2.7.
        self.set_sts(loc, sts::COMMAND_READY);
        r
    }

    fn exchange(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TisError> {
        let fifo = page(loc) + reg::DATA_FIFO;
        if self.sts(loc) & sts::COMMAND_READY == 0 {
            self.set_sts(loc, sts::COMMAND_READY);
            let off = page(loc) + reg::STS;
            if !self.wait(self.t.b_us, |io| io.read32(off) & sts::COMMAND_READY != 0) {
                return Err(TisError::NotReady);
            }
        }
        // All bytes but the last, in bursts; the TPM must keep expecting more.
        let (body, last) = cmd.split_at(cmd.len() - 1);
        let mut sent = 0;
        while sent < body.len() {
            let n = self.burst(loc)?.min(body.len() - sent);
            for &b in &body[sent..sent + n] {
                self.io.write8(fifo, b);
            }
            sent += n;
            if self.valid_sts(loc)? & sts::EXPECT == 0 {
                return Err(TisError::Expect);
            }
        }
        self.burst(loc)?;
        self.io.write8(fifo, last[0]);
        if self.valid_sts(loc)? & sts::EXPECT != 0 {
            return Err(TisError::Expect);
        }
        self.set_sts(loc, sts::GO);
        let off = page(loc) + reg::STS;
        let want = sts::VALID | sts::DATA_AVAIL;
        self.io.waiting(true);
        let done = self.wait(self.t.command_us, |io| io.read32(off) & want == want);
        self.io.waiting(false);
        if !done {
            return Err(TisError::CommandTimeout);
        }
        // The header first: its length bounds the rest.
        if rsp.len() < HEADER {
            return Err(TisError::BadResponseLength);
        }
        self.read_fifo(loc, &mut rsp[..HEADER])?;
        let len = u32::from_be_bytes([rsp[2], rsp[3], rsp[4], rsp[5]]) as usize;
        if len < HEADER || len > rsp.len() {
            return Err(TisError::BadResponseLength);
        }
        self.read_fifo(loc, &mut rsp[HEADER..len])?;
        // Every byte read: dataAvail must be clear now.
        if self.valid_sts(loc)? & sts::DATA_AVAIL != 0 {
            return Err(TisError::ResponseOverrun);
        }
        Ok(len)
    }

    /// Reads exactly `buf.len()` response bytes; the TPM must have them.
    fn read_fifo(&mut self, loc: u8, buf: &mut [u8]) -> Result<(), TisError> {
        let fifo = page(loc) + reg::DATA_FIFO;
        let mut got = 0;
        while got < buf.len() {
            let s = self.valid_sts(loc)?;
            if s & sts::DATA_AVAIL == 0 {
                return Err(TisError::ResponseOverrun);
            }
            let n = self.burst(loc)?.min(buf.len() - got);
            for b in &mut buf[got..got + n] {
                *b = self.io.read8(fifo);
            }
            got += n;
        }
        Ok(())
    }

    /// Requests `loc`, runs `cmd`, gives `loc` back.
    pub fn execute(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TisError> {
        self.request_locality(loc)?;
        let r = self.transmit(loc, cmd, rsp);
        self.relinquish(loc);
        r
    }
}

/// The TIS as the TPM core's transport: whole exchanges at locality 0 (the OS's and the
/// firmware's), failures by name.
impl<I: Io> tpm_core::Transport for Tis<I> {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        self.execute(0, cmd, rsp).map_err(TisError::name)
    }
}

#[cfg(test)]
mod tests;
