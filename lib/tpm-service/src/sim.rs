//! CRB pages in host memory, for host tests and fuzzing: one type instead of a fake per test
//! file. Clones share the bytes (the service holds one, the test playing the normal world
//! another), and it is `Send`, as a partition's CRB must be.

extern crate std;

use crate::{Crb, LOCALITIES, OutsideCrb, PAGE};
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec;
use std::vec::Vec;

/// The five locality pages, every byte `fill` to start with.
#[derive(Clone)]
pub struct SimCrb(Arc<Mutex<Vec<u8>>>);

impl SimCrb {
    /// Pages filled with `fill`.
    pub fn new(fill: u8) -> SimCrb {
        SimCrb(Arc::new(Mutex::new(vec![
            fill;
            (LOCALITIES * PAGE) as usize
        ])))
    }

    /// The bytes, to look at or change directly.
    pub fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The little-endian register at `off`.
    pub fn u32(&self, off: u64) -> u32 {
        let o = off as usize;
        u32::from_le_bytes(self.bytes()[o..o + 4].try_into().expect("4 bytes"))
    }

    /// Sets the little-endian register at `off`.
    pub fn set(&self, off: u64, v: u32) {
        let o = off as usize;
        self.bytes()[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
}

impl Crb for SimCrb {
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideCrb> {
        let o = usize::try_from(off).map_err(|_| OutsideCrb)?;
        let m = self.bytes();
        let end = o.checked_add(buf.len()).ok_or(OutsideCrb)?;
        buf.copy_from_slice(m.get(o..end).ok_or(OutsideCrb)?);
        Ok(())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideCrb> {
        let o = usize::try_from(off).map_err(|_| OutsideCrb)?;
        let end = o.checked_add(data.len()).ok_or(OutsideCrb)?;
        self.bytes()
            .get_mut(o..end)
            .ok_or(OutsideCrb)?
            .copy_from_slice(data);
        Ok(())
    }
}
