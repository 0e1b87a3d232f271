//! A simulated normal-world RAM for running the SPMC off the hardware (host tests, fuzzing,
//! and the hyp proxy's tests, which put the real SPMC behind a fake EL3).

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::NsMemory;

/// `size` bytes of RAM at `base`, shared between clones (the SPMC holds one, the test that
/// plays the normal world holds another). An access outside the range panics: the SPMC must
/// never make one, and a fuzzer then reports it.
#[derive(Clone)]
pub struct SimRam {
    base: u64,
    bytes: Rc<RefCell<Vec<u8>>>,
}

impl SimRam {
    /// Zeroed RAM.
    pub fn new(base: u64, size: usize) -> SimRam {
        SimRam {
            base,
            bytes: Rc::new(RefCell::new(vec![0; size])),
        }
    }

    fn offset(&self, pa: u64, len: usize) -> core::ops::Range<usize> {
        let start = pa
            .checked_sub(self.base)
            .unwrap_or_else(|| panic!("access at {pa:#x} below the simulated RAM"));
        let start = start as usize;
        start..start + len
    }
}

impl NsMemory for SimRam {
    fn read(&self, pa: u64, buf: &mut [u8]) {
        let r = self.offset(pa, buf.len());
        buf.copy_from_slice(&self.bytes.borrow()[r]);
    }

    fn write(&mut self, pa: u64, data: &[u8]) {
        let r = self.offset(pa, data.len());
        self.bytes.borrow_mut()[r].copy_from_slice(data);
    }
}
