//! A NOR flash in host memory that can lose power at any step: each programmed byte is one
//! step, each erase is four (a quarter of the block each), so a cut can tear a program after
//! any byte and an erase part-way.

use crate::{Flash, FlashError};
use alloc::vec;
use alloc::vec::Vec;

/// Erase steps per block.
pub const ERASE_STEPS: u32 = 4;

/// The simulated flash.
#[derive(Clone, Debug)]
pub struct SimFlash {
    /// The bytes.
    pub mem: Vec<u8>,
    block: u32,
    /// Steps left before the cut (`None`: never).
    budget: Option<u64>,
    /// Steps taken.
    pub steps: u64,
    cut: bool,
    /// Programs that asked a 0 bit to become 1 (a store bug on real NOR).
    pub violations: u64,
}

impl SimFlash {
    /// `size` bytes, erased, in blocks of `block`.
    pub fn new(size: u32, block: u32) -> SimFlash {
        SimFlash {
            mem: vec![0xff; size as usize],
            block,
            budget: None,
            steps: 0,
            cut: false,
            violations: 0,
        }
    }

    /// The power goes after `steps` more steps.
    pub fn cut_after(&mut self, steps: u64) {
        self.budget = Some(steps);
    }

    /// Whether the power went.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    /// The same bytes with the power back.
    pub fn reboot(&self) -> SimFlash {
        SimFlash {
            mem: self.mem.clone(),
            block: self.block,
            budget: None,
            steps: 0,
            cut: false,
            violations: 0,
        }
    }

    fn step(&mut self) -> Result<(), FlashError> {
        if self.cut {
            return Err(FlashError::PowerCut);
        }
        if let Some(b) = self.budget {
            if b == 0 {
                self.cut = true;
                return Err(FlashError::PowerCut);
            }
            self.budget = Some(b - 1);
        }
        self.steps += 1;
        Ok(())
    }

    fn range(&self, off: u32, len: usize) -> Result<core::ops::Range<usize>, FlashError> {
        let s = off as usize;
        let e = s.checked_add(len).ok_or(FlashError::Range)?;
        if e > self.mem.len() {
            return Err(FlashError::Range);
        }
        Ok(s..e)
    }
}

impl Flash for SimFlash {
    fn size(&self) -> u32 {
        self.mem.len() as u32
    }

    fn block_size(&self) -> u32 {
        self.block
    }

    fn read(&mut self, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        if self.cut {
            return Err(FlashError::PowerCut);
        }
        let r = self.range(off, buf.len())?;
        buf.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn program(&mut self, off: u32, data: &[u8]) -> Result<(), FlashError> {
        let r = self.range(off, data.len())?;
        for (i, &b) in r.zip(data) {
            self.step()?;
            if b & !self.mem[i] != 0 {
                self.violations += 1;
            }
            self.mem[i] &= b;
        }
        Ok(())
    }

    fn erase(&mut self, off: u32) -> Result<(), FlashError> {
        if !off.is_multiple_of(self.block) {
            return Err(FlashError::Range);
        }
        let r = self.range(off, self.block as usize)?;
        let q = self.block as usize / ERASE_STEPS as usize;
        for k in 0..ERASE_STEPS as usize {
            self.step()?;
            let s = r.start + k * q;
            self.mem[s..s + q].fill(0xff);
        }
        Ok(())
    }
}
