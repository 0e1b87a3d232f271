//! The kernel heap: `linked_list_allocator` over the largest free RAM range.

use crate::console::IrqGuard;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use dtinfo::Range;
use linked_list_allocator::Heap;

struct KernelHeap(spin::Mutex<Heap>);

// SAFETY: allocation is delegated to `linked_list_allocator::Heap` under a spin lock taken with
// IRQs masked, so an interrupt handler cannot re-enter the allocator on the same CPU.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _irq = IrqGuard::new();
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _irq = IrqGuard::new();
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with this layout.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(spin::Mutex::new(Heap::empty()));

/// Hands `region` to the heap.
///
/// # Safety
/// `region` must be RAM that nothing else uses (not the image, the DTB or any reserved range),
/// mapped as normal memory, and this must be called once.
pub unsafe fn init(region: Range) {
    let _irq = IrqGuard::new();
    // SAFETY: forwarded from the caller.
    unsafe {
        HEAP.0
            .lock()
            .init(region.base as usize as *mut u8, region.size as usize)
    };
}

/// (used, free) bytes.
pub fn stats() -> (usize, usize) {
    let _irq = IrqGuard::new();
    let h = HEAP.0.lock();
    (h.used(), h.free())
}
