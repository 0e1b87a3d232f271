//! The kernel heap: one `linked_list_allocator` heap over the largest free RAM range, under
//! a spin lock taken with IRQs masked. Memory the kernel gives away for good is allocated
//! here like any other and never freed.

use crate::console::IrqGuard;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use dtinfo::Range;
use linked_list_allocator::Heap;

static KERNEL: spin::Mutex<Heap> = spin::Mutex::new(Heap::empty());

struct KernelHeap;

// SAFETY: every allocation comes from the one `Heap` under its spin lock, taken with IRQs
// masked (no re-entry from a handler on this CPU), and goes back to it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _irq = IrqGuard::new();
        KERNEL
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _irq = IrqGuard::new();
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with this layout.
            unsafe { KERNEL.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: KernelHeap = KernelHeap;

/// Hands `region` to the kernel heap.
///
/// # Safety
/// `region` must be RAM that nothing else uses (not the image, the DTB or any reserved range),
/// mapped as normal memory, and this must be called once.
pub unsafe fn init(region: Range) {
    let _irq = IrqGuard::new();
    // SAFETY: forwarded from the caller.
    unsafe {
        KERNEL
            .lock()
            .init(region.base as usize as *mut u8, region.size as usize)
    };
}

/// (used, free) bytes of the kernel heap.
pub fn stats() -> (usize, usize) {
    let _irq = IrqGuard::new();
    let h = KERNEL.lock();
    (h.used(), h.free())
}
