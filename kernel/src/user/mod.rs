//! Processes at EL0: address spaces, the scheduler loop, and the way in and out of EL0.
//!
//! Linux's order: when every initcall has run, the kernel starts `/bin/init` from the
//! initramfs as pid 1 ([`run_init`]) and from then on runs processes until one of them powers
//! the machine off (or none is left).
//!
//! - **Address space**: each process has a translation table of its own in TTBR0_EL1 with an
//!   ASID of its own: the kernel's regions mapped identically to the kernel's table (global,
//!   privileged-only, never executable at EL0), its segments (from `lib/elf-load`) copied into
//!   fresh pages (non-global, W^X, never executable at EL1) and a 64 KiB stack at the top of
//!   the user range, its argument string at the stack's top.
//! - **Scheduling**: round robin over `lib/sched`'s table on the boot CPU (the others stay
//!   idle under the hyp). A process runs at EL0 with IRQs unmasked; the timer tick takes the
//!   CPU from it after [`SLICE`] ticks (the lower-EL IRQ vector, [`irq`]). The loop is the
//!   kernel's one context: a trap saves the process's registers in its [`Task`] and, when the
//!   process cannot go on (blocked, yielded, preempted, ended), returns to the loop through
//!   `user_return`, abandoning the trap's stack (nothing is live on it).
//! - **System calls** ([`syscall`]): a call that must wait (read, wait4, nanosleep) blocks the
//!   process; when what it waits for may have happened the process becomes runnable and the
//!   same call runs again, with its own table active, before it returns to EL0.
//! - **Faults**: a data abort, an instruction abort or an undefined instruction ends the
//!   process with a decoded reason (wait status 9, as SIGKILL) and the system goes on.

pub mod query;
mod syscall;
pub mod uaccess;

use crate::console;
use aarch64_paging::Mapping;
use aarch64_paging::descriptor::El1Attributes as A;
use aarch64_paging::descriptor::PhysicalAddress;
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{Constraints, El1And0, MemoryRegion, VaRange};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use sched::{Pid, State, Wait};

/// User stack size; it ends at the top of the user range.
const STACK: u64 = 64 * 1024;
/// Ticks a process may run before the tick takes the CPU from it.
pub const SLICE: u64 = 2;
/// Longest argument string a process is started with.
pub const ARG_MAX: usize = 1024;
/// Console input kept for readers.
const INPUT_MAX: usize = 4096;

/// A process's registers while it does not run: x0-x30, PC, PSTATE, SP_EL0 (the offsets
/// `user_resume` uses).
#[repr(C)]
#[derive(Clone, Default)]
pub struct Regs {
    /// x0-x30.
    pub x: [u64; 31],
    /// Where it resumes.
    pub elr: u64,
    /// Its PSTATE (EL0t).
    pub spsr: u64,
    /// Its stack pointer.
    pub sp: u64,
}

/// The kernel's callee-saved registers and stack pointer while a process runs: where
/// `user_return` goes back to (the scheduler loop).
#[repr(C)]
#[derive(Default)]
struct KernelCtx {
    regs: [u64; 13], // x19..x30, sp
}

// user_resume(regs, ctx): saves x19-x30 and sp into ctx, loads every register of `regs`
// (Regs: x at 0, elr at 248, spsr at 256, sp at 264) and ERETs to EL0. Returns (in x0) what
// user_return passes.
// user_return(ctx, code): restores what user_resume saved and returns `code` from it.
global_asm!(
    r#"
.global user_resume
user_resume:
    stp     x19, x20, [x1, #0]
    stp     x21, x22, [x1, #16]
    stp     x23, x24, [x1, #32]
    stp     x25, x26, [x1, #48]
    stp     x27, x28, [x1, #64]
    stp     x29, x30, [x1, #80]
    mov     x9, sp
    str     x9, [x1, #96]
    ldr     x9, [x0, #264]
    msr     sp_el0, x9
    ldp     x9, x10, [x0, #248]
    msr     elr_el1, x9
    msr     spsr_el1, x10
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
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
    fn user_resume(regs: *const Regs, ctx: *mut KernelCtx) -> i64;
    fn user_return(ctx: *mut KernelCtx, code: i64) -> !;
}

type Table = Mapping<IdTranslation<A>, El1And0>;

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

// SAFETY: the pages are owned by one process's task; only the boot CPU touches them.
unsafe impl Send for Pages {}

impl Pages {
    fn new(bytes: u64) -> Result<Pages, &'static str> {
        let layout =
            core::alloc::Layout::from_size_align(bytes as usize, 4096).map_err(|_| "bad layout")?;
        // SAFETY: a non-zero, page-aligned layout.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err("out of memory");
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

/// The kernel's part of a process.
pub struct Task {
    regs: Regs,
    table: Box<Table>,
    /// Its segments and stack (owned: freed with the task).
    _pages: Vec<Pages>,
    /// Bytes of its image (for `ps`).
    pub size: u64,
    /// Run its system call again before it returns to EL0 (it was blocked in one).
    retry: bool,
    /// `nanosleep`'s deadline (microseconds), while it sleeps.
    sleep_until: Option<u64>,
    /// Successful writes.
    pub writes: u64,
}

static SCHED: spin::Mutex<sched::Table<Task>> = spin::Mutex::new(sched::Table::new());
/// The pid at EL0 now (0: none).
static CURRENT: AtomicU32 = AtomicU32::new(0);
/// The tick count when it was dispatched.
static DISPATCHED: AtomicU64 = AtomicU64::new(0);
/// The scheduler loop's context (valid while a process runs).
static LOOP_CTX: AtomicPtr<KernelCtx> = AtomicPtr::new(core::ptr::null_mut());
static POWER_OFF: AtomicBool = AtomicBool::new(false);
static INPUT: spin::Mutex<VecDeque<u8>> = spin::Mutex::new(VecDeque::new());
static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
static SWITCHES: AtomicU64 = AtomicU64::new(0);
static PAN: AtomicBool = AtomicBool::new(false);
/// The task of the process that ended while it ran, until its table is switched away from.
static GRAVE: spin::Mutex<Option<Task>> = spin::Mutex::new(None);

/// A program of the initramfs by path (`/bin/x` or `bin/x`).
pub fn find_program(path: &str) -> Option<&'static [u8]> {
    let name = path.strip_prefix('/').unwrap_or(path);
    crate::init::initramfs()
        .iter()
        .find(|e| e.is_file() && e.name == name)
        .map(|e| e.data)
}

/// The programs of the initramfs's `bin/`, in name order.
pub fn programs() -> Vec<String> {
    let mut v: Vec<String> = crate::init::initramfs()
        .iter()
        .filter(|e| e.is_file() && e.name.starts_with("bin/"))
        .map(|e| alloc::format!("/{}", e.name))
        .collect();
    v.sort();
    v
}

/// Builds a process for `elf` (validated here again) with `arg` at the top of its stack
/// (x0 = its address, x1 = its length at entry).
fn load(elf: &[u8], arg: &[u8], asid: usize) -> Result<Task, &'static str> {
    if arg.len() > ARG_MAX {
        return Err("argument too long");
    }
    let prog = elf_load::parse(elf, &elf_load::USER).map_err(|e| e.0)?;
    let platform = &crate::init::boot::boot().platform;
    let mut table = Box::new(Mapping::with_asid_and_va_range(
        IdTranslation::<A>::default(),
        asid,
        1,
        El1And0,
        VaRange::Lower,
    ));
    let (regions, _) = crate::mm::kernel_regions(platform);
    for (s, e, flags) in regions {
        table
            .map_range(
                &MemoryRegion::new(s as usize, e as usize),
                PhysicalAddress(s as usize),
                flags,
                Constraints::empty(),
            )
            .map_err(|_| "kernel region")?;
    }
    let mut pages = Vec::new();
    let mut size = 0;
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
            .map_err(|_| "user segment")?;
        // The instruction fetch of EL0 must see the copied code.
        arch::clean_to_poc(p.ptr as u64, hi - lo);
        size += hi - lo;
        pages.push(p);
    }
    let stack = Pages::new(STACK)?;
    let top = elf_load::USER.end;
    table
        .map_range(
            &MemoryRegion::new((top - STACK) as usize, top as usize),
            PhysicalAddress(stack.ptr as usize),
            USER_PAGE | A::UXN,
            Constraints::empty(),
        )
        .map_err(|_| "stack")?;
    // The argument at the top of the stack, the stack pointer 16-byte aligned below it.
    let arg_at = (STACK as usize - arg.len()) & !15;
    // SAFETY: `arg_at + arg.len() <= STACK`: inside the fresh stack pages.
    unsafe { core::ptr::copy_nonoverlapping(arg.as_ptr(), stack.ptr.add(arg_at), arg.len()) };
    pages.push(stack);
    let sp = top - STACK + arg_at as u64;
    let mut regs = Regs {
        elr: prog.entry,
        // EL0t with D, A, I, F clear: the tick reaches it.
        spsr: 0,
        sp,
        ..Regs::default()
    };
    regs.x[0] = sp;
    regs.x[1] = arg.len() as u64;
    Ok(Task {
        regs,
        table,
        _pages: pages,
        size: size + STACK,
        retry: false,
        sleep_until: None,
        writes: 0,
    })
}

/// Starts `path` from the initramfs as a child of `parent`, measured first (IMA's way:
/// ima-ng, PCR 10). Returns its pid.
pub fn spawn(parent: Pid, path: &str, arg: &[u8]) -> Result<Pid, &'static str> {
    let elf = find_program(path).ok_or("no such program")?;
    let path = if path.starts_with('/') {
        String::from(path)
    } else {
        alloc::format!("/{path}")
    };
    let mut s = SCHED.lock();
    if s.alive() >= sched::MAX_PROCS {
        return Err("too many processes");
    }
    // ASIDs 2..=255 (the kernel's table uses 1); a reused ASID is safe because a table's
    // TLB entries are invalidated each time it is switched away from.
    let next = s.iter().map(|p| p.pid).max().unwrap_or(0) + 1;
    let asid = 2 + (next as usize % 254);
    catena_drivers::ima::program(&path, elf);
    let task = load(elf, arg, asid)?;
    s.spawn(parent, &path, task).map_err(|e| match e {
        sched::SpawnError::TableFull => "too many processes",
        sched::SpawnError::NoParent => "no parent",
    })
}

/// Ends `pid` with `status`, reporting how (`why`: the kernel's reason when it killed it).
fn end(pid: Pid, status: u32, why: Option<&str>) {
    let (name, task) = {
        let mut s = SCHED.lock();
        let name = s.get(pid).map(|p| p.name.clone()).unwrap_or_default();
        (name, s.exit(pid, status))
    };
    let writes = task.as_ref().map_or(0, |t| t.writes);
    if CURRENT.load(Ordering::SeqCst) == pid {
        // Its table is still the active one: freed once the loop has switched away from it.
        *GRAVE.lock() = task;
    } else {
        drop(task);
    }
    console::emit(catena_event::Kind::Process, |e| {
        let e = e
            .str("name", name.trim_start_matches('/'))
            .u64("pid", u64::from(pid));
        match why {
            Some(why) => e.str("state", "killed").str("reason", why),
            None => e
                .str("state", "exited")
                .u64("code", u64::from(status >> 8))
                .u64("writes", writes),
        }
    });
}

/// Takes console input into the buffer readers take from; wakes them if any arrived.
fn poll_input() {
    while let Some(b) = console::read_byte() {
        let mut q = INPUT.lock();
        if q.len() < INPUT_MAX {
            q.push_back(b);
        }
    }
    let now = crate::arch::time::now_us();
    let have_input = !INPUT.lock().is_empty();
    SCHED.lock().wake(|w| match w {
        Wait::Input => have_input,
        Wait::Until(t) => *t <= now,
        Wait::Child(_) => false,
    });
}

/// Bytes typed on the console, at most `max`.
fn take_input(max: usize) -> Vec<u8> {
    let mut q = INPUT.lock();
    let n = q.len().min(max);
    q.drain(..n).collect()
}

/// Saves the trapped registers into the running task.
fn save(pid: Pid, frame: &trapframe::Frame) {
    let sp: u64;
    // SAFETY: reading SP_EL0 (the process's stack pointer) has no side effect.
    unsafe { core::arch::asm!("mrs {}, sp_el0", out(reg) sp, options(nomem, nostack)) };
    if let Some(t) = SCHED.lock().get_mut(pid).and_then(|p| p.data.as_mut()) {
        t.regs.x = frame.x;
        t.regs.elr = frame.elr;
        t.regs.spsr = frame.spsr;
        t.regs.sp = sp;
    }
}

/// Back to the scheduler loop (the process's registers are saved). Nothing may be live on
/// the caller's stack: it is abandoned.
fn switch_out() -> ! {
    let ctx = LOOP_CTX.load(Ordering::SeqCst);
    // SAFETY: `ctx` is the loop's context, saved by `user_resume` when this process was
    // entered on this CPU; the loop's frame is still live below the trap's.
    unsafe { user_return(ctx, 0) }
}

/// The running pid, or the boot fails (a trap from EL0 with no process is a kernel bug).
fn current() -> Pid {
    match CURRENT.load(Ordering::SeqCst) {
        0 => crate::arch::exceptions::finish_fail("trap-from-el0-without-a-process"),
        pid => pid,
    }
}

/// An IRQ while a process ran at EL0.
pub fn irq(frame: &mut trapframe::Frame) {
    let pid = current();
    crate::arch::exceptions::handle_irq();
    let ticks = catena_drivers::armv8_timer::ticks();
    if ticks.wrapping_sub(DISPATCHED.load(Ordering::SeqCst)) >= SLICE {
        save(pid, frame);
        if let Some(p) = SCHED.lock().get_mut(pid) {
            p.preempted += 1;
        }
        PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
        switch_out();
    }
}

/// A synchronous exception from EL0: a system call, or a fault that ends the process.
pub fn trap(frame: &mut trapframe::Frame) {
    let pid = current();
    let (esr, far) = crate::arch::exceptions::read_esr_far();
    save(pid, frame);
    if esr >> 26 != 0x15 {
        let s = esr::Syndrome::new(esr);
        let why = alloc::format!(
            "{} at pc {:#x}, address {far:#x} ({})",
            s.class_name(),
            frame.elr,
            s.fault_status().unwrap_or("-")
        );
        end(pid, sched::KILLED, Some(&why));
        drop(why);
        switch_out();
    }
    let mut regs = frame.x;
    match syscall::dispatch(pid, &mut regs) {
        syscall::Outcome::Ret(v) => frame.x[0] = v,
        other => {
            leave(pid, other);
            switch_out()
        }
    }
}

/// A system call that does not return to the process now.
fn leave(pid: Pid, o: syscall::Outcome) {
    match o {
        syscall::Outcome::Ret(_) => {}
        syscall::Outcome::Block(w) => {
            let mut s = SCHED.lock();
            if let Some(t) = s.get_mut(pid).and_then(|p| p.data.as_mut()) {
                t.retry = true;
            }
            s.block(pid, w);
        }
        syscall::Outcome::Yield => {
            if let Some(t) = SCHED.lock().get_mut(pid).and_then(|p| p.data.as_mut()) {
                t.regs.x[0] = 0;
            }
        }
        syscall::Outcome::Exit(code) => end(pid, sched::exit_status(code), None),
        syscall::Outcome::PowerOff => POWER_OFF.store(true, Ordering::SeqCst),
    }
}

/// Runs one process until it leaves the CPU.
fn dispatch(pid: Pid) {
    let daif = arch::irq_save();
    // The table is boxed (its address is stable while the table of processes changes) and is
    // freed only after it is switched away from (an ending process's task waits in GRAVE).
    let (table, mut regs, retry) = {
        let mut s = SCHED.lock();
        let Some(t) = s.get_mut(pid).and_then(|p| p.data.as_mut()) else {
            arch::irq_restore(daif);
            return;
        };
        (
            &*t.table as *const Table,
            t.regs.clone(),
            core::mem::take(&mut t.retry),
        )
    };
    // SAFETY: the table maps everything the kernel uses identically to its own (same
    // attributes, global), so switching to it on this CPU changes nothing for the kernel; it
    // stays alive until `deactivate` below (see GRAVE).
    let previous = unsafe { (*table).activate() };
    CURRENT.store(pid, Ordering::SeqCst);
    let mut go = true;
    if retry {
        match syscall::dispatch(pid, &mut regs.x) {
            syscall::Outcome::Ret(v) => regs.x[0] = v,
            other => {
                leave(pid, other);
                go = false;
            }
        }
    }
    if go {
        SWITCHES.fetch_add(1, Ordering::Relaxed);
        DISPATCHED.store(catena_drivers::armv8_timer::ticks(), Ordering::SeqCst);
        let mut ctx = KernelCtx::default();
        LOOP_CTX.store(&mut ctx, Ordering::SeqCst);
        // SAFETY: `regs` is the task's EL0 state (PC in its executable segment or after its
        // SVC, SPSR EL0t), its table is active; `ctx` lives on this frame until user_resume
        // returns, which happens only through user_return from this CPU's trap path with this
        // ctx (the trap saves the registers into the task first).
        unsafe { user_resume(&regs, &mut ctx) };
        LOOP_CTX.store(core::ptr::null_mut(), Ordering::SeqCst);
    }
    CURRENT.store(0, Ordering::SeqCst);
    let dead = GRAVE.lock().take();
    // SAFETY: `previous` is the kernel's own TTBR0 value that `activate` returned; the table
    // is the one activated above, alive in its task (in the table of processes, or in GRAVE
    // if the process ended while it ran).
    unsafe { (*table).deactivate(previous) };
    drop(dead);
    arch::irq_restore(daif);
}

/// Whether PAN is on (for `ps` and the start event).
pub fn pan() -> bool {
    PAN.load(Ordering::Relaxed)
}

/// After the initcalls: `/bin/init` as pid 1 with the kernel command line as its argument,
/// then processes until one powers off or none is left. Returns why it ended; `None` if
/// there is no init to run.
pub fn run_init(cmdline: &str) -> Option<&'static str> {
    find_program("/bin/init")?;
    PAN.store(uaccess::enable_pan(), Ordering::Relaxed);
    let pid = match spawn(0, "/bin/init", cmdline.as_bytes()) {
        Ok(p) => p,
        Err(why) => {
            console::emit(catena_event::Kind::Process, |e| {
                e.str("name", "bin/init")
                    .str("state", "refused")
                    .str("reason", why)
            });
            return Some("init-refused");
        }
    };
    console::emit(catena_event::Kind::Sched, |e| {
        e.str("state", "started")
            .u64("init", u64::from(pid))
            .u64("slice_ticks", SLICE)
            .str("pan", if pan() { "on" } else { "absent" })
    });
    let why = loop {
        poll_input();
        if POWER_OFF.load(Ordering::SeqCst) {
            break "poweroff";
        }
        let next = SCHED.lock().pick();
        match next {
            Some(pid) => dispatch(pid),
            None => {
                let s = SCHED.lock();
                if s.get(1).is_none_or(|p| p.data.is_none()) {
                    break "init-ended";
                }
                drop(s);
                // Nothing runnable: sleep until the tick (or a console interrupt).
                arch::wfi();
            }
        }
    };
    // What still runs is ended with the system.
    let left: Vec<Pid> = SCHED
        .lock()
        .iter()
        .filter(|p| p.data.is_some())
        .map(|p| p.pid)
        .collect();
    for pid in left {
        let preempted = SCHED.lock().get(pid).map_or(0, |p| p.preempted);
        let why = alloc::format!("system {why} (preempted {preempted} times)");
        end(pid, sched::KILLED, Some(&why));
    }
    console::emit(catena_event::Kind::Sched, |e| {
        e.str("state", "stopped")
            .str("reason", why)
            .u64("switches", SWITCHES.load(Ordering::Relaxed))
            .u64("preemptions", PREEMPTIONS.load(Ordering::Relaxed))
    });
    Some(why)
}

/// One line per process for `ps`.
pub fn ps() -> String {
    use core::fmt::Write;
    let mut out = String::from("  PID  PPID STATE       RUNS PREEMPTED   SIZE NAME\n");
    for p in SCHED.lock().iter() {
        let state = match p.state {
            State::Runnable if CURRENT.load(Ordering::Relaxed) == p.pid => "running",
            State::Runnable => "runnable",
            State::Blocked(Wait::Child(_)) => "wait-child",
            State::Blocked(Wait::Until(_)) => "sleeping",
            State::Blocked(Wait::Input) => "wait-input",
            State::Zombie(_) => "zombie",
        };
        let size = p.data.as_ref().map_or(0, |t| t.size);
        let _ = writeln!(
            out,
            "{:>5} {:>5} {:<10} {:>5} {:>9} {:>5}K {}",
            p.pid,
            p.parent,
            state,
            p.runs,
            p.preempted,
            size / 1024,
            p.name
        );
    }
    out
}
