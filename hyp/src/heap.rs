//! The hyp's allocator: its own pool (the region the kernel gave it, after the image), apart
//! from anything of the kernel's.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

static POOL: Mutex<Heap> = Mutex::new(Heap::empty());

struct Pool;

// SAFETY: every allocation comes from the one `Heap` under its spin lock and goes back to it.
// The hyp runs with exceptions masked (it is entered from the host's traps, which mask DAIF),
// so a CPU never re-enters the lock from a handler.
unsafe impl GlobalAlloc for Pool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        POOL.lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with this layout.
            unsafe { POOL.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: Pool = Pool;

/// Gives the pool to the allocator (once, at Init).
///
/// # Safety
/// `[base, base + size)` must be memory the hyp owns for good, mapped read-write, used by
/// nothing else.
pub unsafe fn init(base: u64, size: u64) {
    let mut h = POOL.lock();
    if h.size() == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { h.init(base as usize as *mut u8, size as usize) };
    }
}
