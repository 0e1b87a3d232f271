//! Memory allocation: the kernel heap, and the hyp's pool.
//!
//! One `#[global_allocator]` serves two worlds. Code running at EL2 (the hyp) allocates from
//! the hyp pool, memory the kernel donated at install and which leaves the host's stage-2 at
//! finalise; code at EL1 allocates from the kernel heap, except while the kernel builds the
//! hyp's own structures before install ([`with_hyp_pool`]). Frees go back to the heap that
//! holds the address (at EL2: always the pool). The hyp pool's allocator state is in
//! `.hyp.data`.

use crate::console::IrqGuard;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dtinfo::Range;
use linked_list_allocator::Heap;

static KERNEL: spin::Mutex<Heap> = spin::Mutex::new(Heap::empty());
#[unsafe(link_section = ".hyp.data")]
static HYP: spin::Mutex<Heap> = spin::Mutex::new(Heap::empty());
/// The hyp pool's range as the kernel knows it, for routing EL1 frees (EL1 never reads hyp
/// memory after finalise; the hyp always frees to its own pool).
static HYP_POOL: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Set while the kernel builds hyp structures at EL1.
static BUILDING_HYP: AtomicBool = AtomicBool::new(false);

fn at_el2() -> bool {
    (arm_sysregs::el0::accessors::read_currentel().bits() >> 2) & 3 == 2
}

fn in_hyp_pool(p: usize) -> bool {
    let (b, s) = (
        HYP_POOL[0].load(Ordering::Relaxed),
        HYP_POOL[1].load(Ordering::Relaxed),
    );
    (p as u64) >= b && (p as u64) < b + s
}

fn heap_for_alloc() -> &'static spin::Mutex<Heap> {
    if at_el2() || BUILDING_HYP.load(Ordering::Relaxed) {
        &HYP
    } else {
        &KERNEL
    }
}

struct Dispatch;

// SAFETY: every allocation comes from one linked_list_allocator::Heap under its spin lock,
// taken with IRQs masked (no re-entry from a handler on this CPU), and is freed to the heap
// whose range holds it.
unsafe impl GlobalAlloc for Dispatch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _irq = IrqGuard::new();
        heap_for_alloc()
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _irq = IrqGuard::new();
        let heap = if at_el2() || in_hyp_pool(ptr as usize) {
            &HYP
        } else {
            &KERNEL
        };
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with this layout,
            // from the heap that owns its address.
            unsafe { heap.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: Dispatch = Dispatch;

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

/// Gives `region` (taken from the kernel heap, never freed) to the hyp's pool.
///
/// # Safety
/// `region` must be memory the kernel owns exclusively and gives up for good.
pub unsafe fn init_hyp_pool(region: Range) {
    let _irq = IrqGuard::new();
    HYP_POOL[0].store(region.base, Ordering::Relaxed);
    HYP_POOL[1].store(region.size, Ordering::Relaxed);
    // SAFETY: forwarded from the caller.
    unsafe {
        HYP.lock()
            .init(region.base as usize as *mut u8, region.size as usize)
    };
}

/// Runs `f` with EL1 allocations going to the hyp pool (building the hyp's page tables).
pub fn with_hyp_pool<R>(f: impl FnOnce() -> R) -> R {
    BUILDING_HYP.store(true, Ordering::Relaxed);
    let r = f();
    BUILDING_HYP.store(false, Ordering::Relaxed);
    r
}

/// (used, free) bytes of the kernel heap.
pub fn stats() -> (usize, usize) {
    let _irq = IrqGuard::new();
    let h = KERNEL.lock();
    (h.used(), h.free())
}
