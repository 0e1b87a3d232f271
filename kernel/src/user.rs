//! EL0 programs, first form: one process at a time, run to completion on the boot CPU.
//!
//! A process gets its own translation table (TTBR0_EL1 with its own ASID): the kernel's
//! regions identity-mapped exactly as in the kernel's table but privileged-only (no EL0
//! access, never executable at EL0), plus the program's segments (from `lib/elf-load`, copied
//! into fresh pages, non-global, W^X, never executable at EL1) and a stack. The kernel enters
//! it with ERET (`user_enter`, which saves the kernel's callee-saved registers); SVCs come back
//! through the lower-EL vector to [`trap`]: `write` and `exit` (Linux's numbers and
//! registers; a pointer and length must lie inside the process's own mappings, checked with
//! `elf_load::inside` before the kernel reads a byte); `exit`, a fault or an undefined
//! instruction end the process with a decoded reason (`user_return` restores the kernel's
//! registers) and the system goes on. IRQs stay masked at EL0 for now (no preemption yet:
//! issue 14's scheduler).

use crate::console;
use aarch64_paging::Mapping;
use aarch64_paging::descriptor::El1Attributes as A;
use aarch64_paging::descriptor::PhysicalAddress;
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, VaRange};
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// The process's ASID (the kernel's table uses 1).
const ASID: usize = 2;
/// User stack size and where it ends (the top of the user range).
const STACK: u64 = 64 * 1024;
/// Syscall numbers (Linux's generic table).
const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;
/// -ENOSYS, -EFAULT, -EBADF, as Linux returns them.
const ENOSYS: u64 = (-38i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
const EBADF: u64 = (-9i64) as u64;
/// Longest single write.
const WRITE_MAX: u64 = 4096;

/// The kernel's callee-saved registers and stack pointer while a process runs.
#[repr(C)]
#[derive(Default)]
struct KernelCtx {
    regs: [u64; 13], // x19..x30, sp
}

// user_enter(entry, sp_el0, ctx): saves x19-x30 and sp into ctx, then ERETs to EL0t at `entry`
// with `sp_el0`, IRQs masked (SPSR_EL1 = EL0t, DAIF set). Returns (in x0) what user_return
// passes.
// user_return(ctx, code): restores what user_enter saved and returns `code` from user_enter.
global_asm!(
    r#"
.global user_enter
user_enter:
    stp     x19, x20, [x2, #0]
    stp     x21, x22, [x2, #16]
    stp     x23, x24, [x2, #32]
    stp     x25, x26, [x2, #48]
    stp     x27, x28, [x2, #64]
    stp     x29, x30, [x2, #80]
    mov     x9, sp
    str     x9, [x2, #96]
    msr     sp_el0, x1
    msr     elr_el1, x0
    mov     x9, #0x3c0
    msr     spsr_el1, x9
    // Nothing of the kernel's registers reaches EL0.
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30
    mov     x\r, xzr
    .endr
    eret

.global user_return
user_return:
    ldp     x19, x20, [x0, #0]
    ldp     x21, x22, [x0, #16]
    ldp     x23, x24, [x0, #32]
    ldp     x25, x26, [x0, #48]
    ldp     x27, x28, [x0, #64]
    ldp     x29, x30, [x0, #80]
    ldr     x9, [x0, #96]
    mov     sp, x9
    mov     x0, x1
    ret
"#
);

unsafe extern "C" {
    fn user_enter(entry: u64, sp: u64, ctx: *mut KernelCtx) -> i64;
    fn user_return(ctx: *mut KernelCtx, code: i64) -> !;
}

/// The running process: where its kernel context is and what it may name.
struct Running {
    ctx: *mut KernelCtx,
    /// User ranges (start, end, writable) a syscall may read.
    ranges: Vec<(u64, u64)>,
    /// Why it ended, if the kernel ended it.
    killed: Option<String>,
}

// SAFETY: only the boot CPU runs processes, with IRQs masked while one runs; the pointer is
// used only by that CPU's trap path.
unsafe impl Send for Running {}

static RUNNING: spin::Mutex<Option<Running>> = spin::Mutex::new(None);
static WRITES: AtomicU64 = AtomicU64::new(0);

const USER_PAGE: A = A::VALID
    .union(A::ATTRIBUTE_INDEX_1)
    .union(A::INNER_SHAREABLE)
    .union(A::ACCESSED)
    .union(A::NON_GLOBAL)
    .union(A::USER)
    .union(A::PXN);

/// Page-aligned zeroed memory for a process, freed when it ends.
struct Pages {
    ptr: *mut u8,
    layout: core::alloc::Layout,
}

impl Pages {
    fn new(bytes: u64) -> Result<Pages, String> {
        let layout = core::alloc::Layout::from_size_align(bytes as usize, 4096)
            .map_err(|_| String::from("bad layout"))?;
        // SAFETY: a non-zero, page-aligned layout.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err("out of memory".into());
        }
        Ok(Pages { ptr, layout })
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the process that used it has ended and
        // its table (the only other view) is no longer active.
        unsafe { alloc::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// How a process ended.
pub enum Ended {
    /// `exit(code)`.
    Exited(i64),
    /// The kernel ended it (the reason).
    Killed(String),
}

/// Runs `elf` (validated here again) at EL0 until it exits or is killed.
pub fn run(elf: &[u8]) -> Result<Ended, String> {
    let prog = elf_load::parse(elf, &elf_load::USER).map_err(|e| String::from(e.0))?;
    let platform = &crate::init::boot::boot().platform;
    let mut table = Mapping::with_asid_and_va_range(
        IdTranslation::<A>::default(),
        ASID,
        1,
        El1And0,
        VaRange::Lower,
    );
    let (regions, _) = crate::mm::kernel_regions(platform);
    for (s, e, flags) in regions {
        table
            .map_range(
                &MemoryRegion::new(s as usize, e as usize),
                PhysicalAddress(s as usize),
                flags,
                Constraints::empty(),
            )
            .map_err(|_| String::from("kernel region"))?;
    }
    let mut pages = Vec::new();
    let mut ranges = Vec::new();
    for seg in &prog.segments {
        let lo = seg.vaddr & !0xfff;
        let hi = (seg.vaddr + seg.memsz).div_ceil(4096) * 4096;
        let p = Pages::new(hi - lo)?;
        let off = (seg.vaddr - lo) as usize;
        // SAFETY: `p` is (hi - lo) fresh bytes; the segment's file bytes fit at `off` (the
        // loader checked filesz <= memsz and both inside [lo, hi)).
        unsafe {
            core::ptr::copy_nonoverlapping(
                elf[seg.file.clone()].as_ptr(),
                p.ptr.add(off),
                seg.file.len(),
            );
        }
        let mut flags = USER_PAGE;
        if !seg.write {
            flags |= A::READ_ONLY;
        }
        if !seg.exec {
            flags |= A::UXN;
        }
        table
            .map_range(
                &MemoryRegion::new(lo as usize, hi as usize),
                PhysicalAddress(p.ptr as usize),
                flags,
                Constraints::empty(),
            )
            .map_err(|_| String::from("user segment"))?;
        ranges.push((seg.vaddr, seg.vaddr + seg.memsz));
        // The instruction fetch of EL0 must see the copied code.
        arch::clean_to_poc(p.ptr as u64, hi - lo);
        pages.push(p);
    }
    let stack = Pages::new(STACK)?;
    let stack_top = elf_load::USER.end;
    table
        .map_range(
            &MemoryRegion::new((stack_top - STACK) as usize, stack_top as usize),
            PhysicalAddress(stack.ptr as usize),
            USER_PAGE | A::UXN,
            Constraints::empty(),
        )
        .map_err(|_| String::from("stack"))?;
    ranges.push((stack_top - STACK, stack_top));
    arch::icache_invalidate_all();
    let mut ctx = KernelCtx::default();
    *RUNNING.lock() = Some(Running {
        ctx: &mut ctx,
        ranges,
        killed: None,
    });
    let daif = arch::irq_save();
    // SAFETY: the table maps everything the kernel uses, identically to its own table (same
    // attributes; the kernel's entries are global), so switching to it on this CPU changes
    // nothing for the kernel; it stays alive until it is switched back below.
    let previous = unsafe { table.activate() };
    // SAFETY: `prog.entry` is inside an executable user segment just mapped, the stack top is
    // the end of the mapped stack; `ctx` lives on this frame until user_enter returns, which
    // happens only through user_return from the trap path with this `ctx`.
    let code = unsafe { user_enter(prog.entry, stack_top, &mut ctx) };
    // SAFETY: `previous` is the kernel's own TTBR0 value that `activate` returned.
    unsafe { table.deactivate(previous) };
    arch::tlbi_vmalle1();
    arch::irq_restore(daif);
    let r = RUNNING.lock().take();
    drop(table);
    drop(stack);
    drop(pages);
    Ok(match r.and_then(|r| r.killed) {
        Some(why) => Ended::Killed(why),
        None => Ended::Exited(code),
    })
}

/// A trap from EL0 (the lower-EL synchronous vector).
pub fn trap(frame: &mut trapframe::Frame) {
    let (esr, far) = crate::arch::exceptions::read_esr_far();
    let ec = esr >> 26;
    let (ctx, ranges) = match RUNNING.lock().as_ref() {
        Some(r) => (r.ctx, r.ranges.clone()),
        None => crate::arch::exceptions::finish_fail("trap-from-el0-without-a-process"),
    };
    if ec != 0x15 {
        // A fault or an undefined instruction: the process ends, the system goes on.
        let s = esr::Syndrome::new(esr);
        let why = alloc::format!(
            "{} at pc {:#x}, address {far:#x} ({})",
            s.class_name(),
            frame.elr,
            s.fault_status().unwrap_or("-")
        );
        if let Some(r) = RUNNING.lock().as_mut() {
            r.killed = Some(why);
        }
        // SAFETY: `ctx` is the running process's saved kernel context (see `run`).
        unsafe { user_return(ctx, -1) };
    }
    match frame.x[8] {
        SYS_WRITE => {
            let (fd, buf, len) = (frame.x[0], frame.x[1], frame.x[2]);
            frame.x[0] = if fd != 1 && fd != 2 {
                EBADF
            } else if len > WRITE_MAX || !elf_load::inside(&ranges, buf, len) {
                EFAULT
            } else {
                let mut bytes = alloc::vec![0u8; len as usize];
                // SAFETY: [buf, buf+len) lies inside one of the running process's mapped
                // ranges (checked above) and its table is active on this CPU.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        buf as *const u8,
                        bytes.as_mut_ptr(),
                        bytes.len(),
                    )
                };
                console::write_str(&String::from_utf8_lossy(&bytes));
                WRITES.fetch_add(1, Ordering::Relaxed);
                len
            };
        }
        // SAFETY: as above.
        SYS_EXIT => unsafe { user_return(ctx, frame.x[0] as i64) },
        _ => frame.x[0] = ENOSYS,
    }
}

/// `late_sync`: every program in the initramfs's `bin/`, in name order, each run to
/// completion; how each ended is reported.
pub fn run_all() {
    let Some(archive) = crate::init::initramfs() else {
        return;
    };
    let Ok(entries) = cpio::parse(archive) else {
        return;
    };
    let mut programs: Vec<&cpio::Entry<'_>> = entries
        .iter()
        .filter(|e| e.is_file() && e.name.starts_with("bin/"))
        .collect();
    programs.sort_by_key(|e| e.name);
    for (pid, f) in programs.into_iter().enumerate() {
        let before = WRITES.load(Ordering::Relaxed);
        // Measured before it runs (IMA's way: ima-ng, PCR 10).
        catena_drivers::ima::program(&alloc::format!("/{}", f.name), f.data);
        let r = run(f.data);
        console::emit(catena_event::Kind::Process, |e| {
            let e = e.str("name", f.name).u64("pid", pid as u64 + 1);
            match &r {
                Ok(Ended::Exited(code)) => e
                    .str("state", "exited")
                    .str("code", &alloc::format!("{code}"))
                    .u64("writes", WRITES.load(Ordering::Relaxed) - before),
                Ok(Ended::Killed(why)) => e.str("state", "killed").str("reason", why),
                Err(why) => e.str("state", "refused").str("reason", why),
            }
        });
    }
}
