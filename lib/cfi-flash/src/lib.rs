//! A CFI NOR flash with the Intel/Sharp command set (CFI primary command set 0x0001), as a
//! bank of identical devices side by side on a 32-bit bus — QEMU virt's flash0 is two x16
//! devices (`pflash_cfi01`, bank width 4, device width 2; 256 KiB blocks).
//!
//! Owns: the command sequences (read array 0xFF, CFI query 0x98, read status 0x70, clear
//! status 0x50, word program 0x40, buffered write 0xE8 … 0xD0, block erase 0x20/0xD0), each
//! command written to every device of the bank, the status of every device checked, every
//! wait bounded, and the device left in read-array mode after each operation; the CFI query
//! table validated before anything is written. Must not: touch the bus itself (an [`Io`] does)
//! or know what the bytes mean (the variable store does).
//!
//! Programming only clears bits. A program of bytes that do not fill whole bus words writes
//! the word's current value ANDed with the new bytes, which leaves the other bytes as they
//! are on a real part (programming a 1 is no change) and on QEMU's model (which stores the
//! value written).
#![no_std]
#![forbid(unsafe_code)]

use varstore::{Flash, FlashError};

/// 32-bit accesses to the flash bank, by byte offset from its base.
pub trait Io {
    /// Reads the bus word at `off` (4-byte aligned).
    fn read32(&mut self, off: u32) -> u32;
    /// Writes the bus word at `off` (4-byte aligned).
    fn write32(&mut self, off: u32, v: u32);
}

/// Bus bytes.
const BUS: u32 = 4;

/// Commands, per device; [`lanes`] replicates them across the bank.
mod cmd {
    pub const READ_ARRAY: u32 = 0xff;
    pub const QUERY: u32 = 0x98;
    pub const READ_STATUS: u32 = 0x70;
    pub const CLEAR_STATUS: u32 = 0x50;
    pub const PROGRAM: u32 = 0x40;
    pub const BUFFERED: u32 = 0xe8;
    pub const ERASE: u32 = 0x20;
    pub const CONFIRM: u32 = 0xd0;
}

/// Status register bits (per device).
mod sts {
    /// Write state machine ready.
    pub const READY: u32 = 0x80;
    /// Erase failed.
    pub const ERASE: u32 = 0x20;
    /// Program failed.
    pub const PROGRAM: u32 = 0x10;
    /// Programming voltage low.
    pub const VPP: u32 = 0x08;
    /// Block locked.
    pub const LOCKED: u32 = 0x02;
}

/// The replication pattern of one device's 8- or 16-bit value across the 32-bit bus.
fn lanes(device_width: u32) -> u32 {
    match device_width {
        1 => 0x0101_0101,
        2 => 0x0001_0001,
        _ => 1,
    }
}

/// What the CFI query said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of the bank.
    pub size: u32,
    /// Bytes of an erase block of the bank (all devices together).
    pub block: u32,
    /// Bytes of the bank's write buffer.
    pub buffer: u32,
}

/// Why the probe refused the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// No "QRY" at the query address: not a CFI device (or another width).
    NotCfi,
    /// Not the Intel/Sharp command set.
    CommandSet(u16),
    /// The table's sizes make no sense or disagree with the region (the description).
    Table(&'static str),
}

/// How many status reads before an operation counts as hung.
pub const POLLS: u32 = 1_000_000;

/// The flash bank.
pub struct Cfi<I: Io> {
    io: I,
    lanes: u32,
    geometry: Geometry,
}

impl<I: Io> Cfi<I> {
    /// Probes the bank: two x16 devices on the 32-bit bus (QEMU virt, and the common
    /// board layout), the CFI table read back and checked against `size` (the DT's region).
    pub fn probe(mut io: I, size: u32) -> Result<Cfi<I>, ProbeError> {
        const DEVICE_WIDTH: u32 = 2;
        let l = lanes(DEVICE_WIDTH);
        io.write32(0, cmd::QUERY * l);
        // CFI offsets are in device words; each is one bus word here.
        let mut q = |i: u32| -> Option<u16> {
            let v = io.read32(i * BUS);
            // Every device must answer the same.
            let one = v & 0xffff;
            (v >> 16 == one).then_some(one as u16)
        };
        let table = (|| -> Option<Result<_, ProbeError>> {
            if (q(0x10)?, q(0x11)?, q(0x12)?) != (u16::from(b'Q'), u16::from(b'R'), u16::from(b'Y'))
            {
                return Some(Err(ProbeError::NotCfi));
            }
            let set = q(0x13)? | q(0x14)? << 8;
            let byte = |v: u16| v as u32 & 0xff;
            let dev_size = byte(q(0x27)?);
            let buf = byte(q(0x2a)?) | byte(q(0x2b)?) << 8;
            let regions = byte(q(0x2c)?);
            let blocks = (byte(q(0x2d)?) | byte(q(0x2e)?) << 8) + 1;
            let block = (byte(q(0x2f)?) | byte(q(0x30)?) << 8) * 256;
            Some(Ok((set, dev_size, buf, regions, blocks, block)))
        })();
        io.write32(0, cmd::READ_ARRAY * l);
        let (set, dev_size, buf, regions, blocks, block) = match table {
            None => return Err(ProbeError::NotCfi),
            Some(Err(e)) => return Err(e),
            Some(Ok(t)) => t,
        };
        if set != 0x0001 {
            return Err(ProbeError::CommandSet(set));
        }
        let devices = BUS / DEVICE_WIDTH;
        if regions != 1 {
            return Err(ProbeError::Table("not one uniform erase-block region"));
        }
        if !(4..=31).contains(&dev_size) || !(1..=16).contains(&buf) || block == 0 {
            return Err(ProbeError::Table("sizes out of range"));
        }
        let bank_block = block * devices;
        let bank_size = (1u64 << dev_size) * u64::from(devices);
        if u64::from(blocks) * u64::from(bank_block) != bank_size || bank_size != u64::from(size) {
            return Err(ProbeError::Table("the table's size is not the region's"));
        }
        Ok(Cfi {
            io,
            lanes: l,
            geometry: Geometry {
                size,
                block: bank_block,
                buffer: (1 << buf) * devices,
            },
        })
    }

    /// The bank's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Waits for every device's ready bit; then checks the error bits, clears them and puts
    /// the bank back in read-array mode either way.
    fn finish(&mut self, at: u32) -> Result<(), FlashError> {
        let ready = sts::READY * self.lanes;
        let mut s = 0;
        let mut done = false;
        for _ in 0..POLLS {
            s = self.io.read32(at);
            if s & ready == ready {
                done = true;
                break;
            }
        }
        let errors = (sts::ERASE | sts::PROGRAM | sts::VPP | sts::LOCKED) * self.lanes;
        let r = if !done {
            Err(FlashError::Device("timeout"))
        } else if s & errors == 0 {
            Ok(())
        } else if s & (sts::LOCKED * self.lanes) != 0 {
            Err(FlashError::Device("block locked"))
        } else if s & (sts::VPP * self.lanes) != 0 {
            Err(FlashError::Device("programming voltage low"))
        } else if s & (sts::ERASE * self.lanes) != 0 {
            Err(FlashError::Device("erase failed"))
        } else {
            Err(FlashError::Device("program failed"))
        };
        if r.is_err() {
            self.io.write32(at, cmd::CLEAR_STATUS * self.lanes);
        }
        self.io.write32(at, cmd::READ_ARRAY * self.lanes);
        r
    }

    fn check(&self, off: u32, len: u32) -> Result<(), FlashError> {
        match off.checked_add(len) {
            Some(e) if e <= self.geometry.size => Ok(()),
            _ => Err(FlashError::Range),
        }
    }

    /// Reads bytes (read-array mode).
    pub fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.check(off, buf.len() as u32)?;
        let mut i = 0usize;
        while i < buf.len() {
            let a = off + i as u32;
            let w = self.io.read32(a & !(BUS - 1)).to_le_bytes();
            let k = (a % BUS) as usize;
            let n = (BUS as usize - k).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&w[k..k + n]);
            i += n;
        }
        Ok(())
    }

    /// Programs `data` at `off`: whole bus words, each the current value ANDed with the new
    /// bytes; one buffered write per write-buffer window, a word program for a single word.
    pub fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError> {
        self.check(off, data.len() as u32)?;
        if data.is_empty() {
            return Ok(());
        }
        let first = off & !(BUS - 1);
        let end = off + data.len() as u32;
        let mut w = first;
        while w < end {
            // This window: up to the end of the data or of the write buffer.
            let window_end = ((w / self.geometry.buffer) + 1) * self.geometry.buffer;
            let stop = window_end.min(end.next_multiple_of(BUS));
            let mut words = [0u32; 64];
            let mut n = 0usize;
            let mut a = w;
            while a < stop && n < words.len() {
                let mut b = self.io.read32(a).to_le_bytes();
                for (k, byte) in b.iter_mut().enumerate() {
                    let x = a + k as u32;
                    if x >= off && x < end {
                        *byte &= data[(x - off) as usize];
                    }
                }
                words[n] = u32::from_le_bytes(b);
                n += 1;
                a += BUS;
            }
            if n == 1 {
                self.io.write32(w, cmd::PROGRAM * self.lanes);
                self.io.write32(w, words[0]);
            } else {
                self.io.write32(w, cmd::BUFFERED * self.lanes);
                // The count is in device words: bus words - 1, given to every device.
                self.io.write32(w, (n as u32 - 1) * self.lanes);
                for (i, v) in words[..n].iter().enumerate() {
                    self.io.write32(w + i as u32 * BUS, *v);
                }
                self.io.write32(w, cmd::CONFIRM * self.lanes);
            }
            self.finish(w)?;
            w = a;
        }
        Ok(())
    }

    /// Erases the block at `off` (block-aligned).
    pub fn erase(&mut self, off: u32) -> Result<(), FlashError> {
        if !off.is_multiple_of(self.geometry.block) {
            return Err(FlashError::Range);
        }
        self.check(off, self.geometry.block)?;
        self.io.write32(off, cmd::ERASE * self.lanes);
        self.io.write32(off, cmd::CONFIRM * self.lanes);
        self.finish(off)
    }

    /// Reads the status register (for reports).
    pub fn status(&mut self) -> u32 {
        self.io.write32(0, cmd::READ_STATUS * self.lanes);
        let s = self.io.read32(0);
        self.io.write32(0, cmd::READ_ARRAY * self.lanes);
        s
    }
}

/// A block-aligned part of the bank, as the variable store's [`Flash`].
pub struct Window<I: Io> {
    cfi: Cfi<I>,
    base: u32,
    size: u32,
}

impl<I: Io> Window<I> {
    /// `size` bytes from `base`, both whole blocks of the bank.
    pub fn new(cfi: Cfi<I>, base: u32, size: u32) -> Option<Window<I>> {
        let g = cfi.geometry();
        let aligned = base.is_multiple_of(g.block) && size.is_multiple_of(g.block) && size > 0;
        let inside = base.checked_add(size).is_some_and(|e| e <= g.size);
        (aligned && inside).then_some(Window { cfi, base, size })
    }
}

impl<I: Io> Flash for Window<I> {
    fn size(&self) -> u32 {
        self.size
    }

    fn block_size(&self) -> u32 {
        self.cfi.geometry().block
    }

    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        match off.checked_add(buf.len() as u32) {
            Some(e) if e <= self.size => self.cfi.read(self.base + off, buf),
            _ => Err(FlashError::Range),
        }
    }

    fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError> {
        match off.checked_add(data.len() as u32) {
            Some(e) if e <= self.size => self.cfi.program(self.base + off, data),
            _ => Err(FlashError::Range),
        }
    }

    fn erase(&mut self, off: u32) -> Result<(), FlashError> {
        if off >= self.size {
            return Err(FlashError::Range);
        }
        self.cfi.erase(self.base + off)
    }
}

#[cfg(test)]
mod tests;
