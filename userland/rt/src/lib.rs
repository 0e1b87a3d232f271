//! What every user program links: the entry point, a heap, Catena's system calls (the AArch64
//! Linux convention: the number in x8, arguments in x0..x5, `svc #0`, the result in x0, a
//! negative errno on failure; numbers in `lib/user-abi`, docs/userland.md), `@event` lines
//! for the test harness, and a panic handler that exits 101.
//!
//! A program defines `#[unsafe(no_mangle)] fn main(arg: &str) -> u64`; the kernel starts it at
//! [`_start`] with its argument string (x0 = address, x1 = length) at the top of its stack.
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::fmt::{self, Write};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
pub use user_abi::{errno, error, nr, query as q};

/// Bytes of heap every program has (in its .bss).
const HEAP_SIZE: usize = 256 * 1024;

#[repr(align(4096))]
struct Arena {
    _bytes: [u8; HEAP_SIZE],
}
static mut ARENA: Arena = Arena {
    _bytes: [0; HEAP_SIZE],
};
static HEAP: spin::Mutex<Heap> = spin::Mutex::new(Heap::empty());

struct UserHeap;

// SAFETY: every allocation comes from the one `Heap` under its lock (a process has one
// thread) and goes back to it.
unsafe impl GlobalAlloc for UserHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with this layout.
            unsafe { HEAP.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static ALLOCATOR: UserHeap = UserHeap;

unsafe extern "Rust" {
    /// The program's own entry: its argument, its exit code.
    fn main(arg: &str) -> u64;
}

/// Where the kernel starts every program: the heap, then `main(arg)`, then `exit`.
///
/// # Safety
/// Called only by the kernel's ERET with `arg`/`len` naming the argument it copied to the top
/// of this process's stack.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
pub unsafe extern "C" fn _start(arg: *const u8, len: usize) -> ! {
    // SAFETY: the arena is used only through this heap, initialised once here before any
    // allocation.
    unsafe { HEAP.lock().init((&raw mut ARENA).cast::<u8>(), HEAP_SIZE) };
    // SAFETY: the kernel put `len` bytes at `arg` (see above).
    let bytes = unsafe { core::slice::from_raw_parts(arg, len) };
    let arg = core::str::from_utf8(bytes).unwrap_or("");
    // SAFETY: every program defines `main` with this signature (the crate's contract).
    let code = unsafe { main(arg) };
    exit(code)
}

/// A system call with up to six arguments; the raw result.
pub fn syscall(n: u64, a: [u64; 6]) -> u64 {
    let r;
    // SAFETY: a supervisor call into the kernel with the documented registers; the kernel
    // checks every argument and touches nothing of ours but what the call names.
    unsafe {
        core::arch::asm!(
            "svc #0",
            inlateout("x0") a[0] => r,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            in("x8") n,
            options(nostack)
        );
    }
    r
}

/// A system call with up to three arguments.
pub fn syscall3(n: u64, a: u64, b: u64, c: u64) -> u64 {
    syscall(n, [a, b, c, 0, 0, 0])
}

fn result(r: u64) -> Result<u64, i64> {
    match user_abi::error(r) {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

/// Writes `bytes` to descriptor `fd` (the raw result).
pub fn write(fd: u64, bytes: &[u8]) -> u64 {
    syscall3(nr::WRITE, fd, bytes.as_ptr() as u64, bytes.len() as u64)
}

/// Writes all of `s` to the console, a chunk at a time.
pub fn print(s: &str) {
    for c in s.as_bytes().chunks(user_abi::IO_MAX as usize) {
        write(1, c);
    }
}

/// Reads console input into `buf` (blocks until there is some).
pub fn read(buf: &mut [u8]) -> Result<usize, i64> {
    result(syscall3(
        nr::READ,
        0,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
    ))
    .map(|n| n as usize)
}

/// Ends the process.
pub fn exit(code: u64) -> ! {
    syscall3(nr::EXIT, code, 0, 0);
    loop {
        core::hint::spin_loop();
    }
}

/// Starts the program at `path` (`/bin/NAME`) with `arg`; its pid.
pub fn spawn(path: &str, arg: &str) -> Result<u32, i64> {
    result(syscall(
        nr::SPAWN,
        [
            path.as_ptr() as u64,
            path.len() as u64,
            arg.as_ptr() as u64,
            arg.len() as u64,
            0,
            0,
        ],
    ))
    .map(|p| p as u32)
}

/// Waits for child `pid` (`None`: any); its pid and wait status.
pub fn wait(pid: Option<u32>) -> Result<(u32, u32), i64> {
    let mut status = 0u32;
    let which = pid.map_or(u64::MAX, u64::from);
    let p = result(syscall(
        nr::WAIT4,
        [which, (&raw mut status) as u64, 0, 0, 0, 0],
    ))?;
    Ok((p as u32, status))
}

/// Gives up the CPU.
pub fn yield_now() {
    syscall3(nr::SCHED_YIELD, 0, 0, 0);
}

/// Sleeps `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Result<(), i64> {
    let ts: [i64; 2] = [(ms / 1000) as i64, ((ms % 1000) * 1_000_000) as i64];
    result(syscall3(nr::NANOSLEEP, ts.as_ptr() as u64, 0, 0)).map(|_| ())
}

/// This process's pid.
pub fn getpid() -> u32 {
    syscall3(nr::GETPID, 0, 0, 0) as u32
}

/// Random bytes from the TPM.
pub fn getrandom(buf: &mut [u8]) -> Result<usize, i64> {
    result(syscall3(
        nr::GETRANDOM,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        0,
    ))
    .map(|n| n as usize)
}

/// Powers the system off.
pub fn poweroff() -> i64 {
    let r = syscall3(
        nr::REBOOT,
        user_abi::REBOOT_MAGIC1,
        user_abi::REBOOT_MAGIC2,
        user_abi::REBOOT_CMD_POWER_OFF,
    );
    user_abi::error(r).unwrap_or(0)
}

/// A whole report of the query call.
pub fn query(kind: u64, arg: &str) -> Result<String, i64> {
    let mut out = Vec::new();
    let mut buf = alloc::vec![0u8; 4096];
    loop {
        let n = result(syscall(
            nr::QUERY,
            [
                kind,
                arg.as_ptr() as u64,
                arg.len() as u64,
                buf.as_mut_ptr() as u64,
                buf.len() as u64,
                out.len() as u64,
            ],
        ))? as usize;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n.min(buf.len())]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs the attestation; what happened.
pub fn attest() -> Result<String, i64> {
    let mut buf = alloc::vec![0u8; 4096];
    let n = result(syscall3(
        nr::ATTEST,
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        0,
    ))? as usize;
    Ok(String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned())
}

/// The name of an errno value.
pub fn errno_name(e: i64) -> &'static str {
    match e {
        errno::ENOENT => "ENOENT",
        errno::E2BIG => "E2BIG",
        errno::ENOEXEC => "ENOEXEC",
        errno::EBADF => "EBADF",
        errno::ECHILD => "ECHILD",
        errno::EAGAIN => "EAGAIN",
        errno::ENOMEM => "ENOMEM",
        errno::EFAULT => "EFAULT",
        errno::ENODEV => "ENODEV",
        errno::EINVAL => "EINVAL",
        errno::ENOSYS => "ENOSYS",
        errno::EIO => "EIO",
        _ => "E?",
    }
}

/// The console as a `fmt::Write`.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        print(s);
        Ok(())
    }
}

/// Writes one `@event` line (the kernel's protocol, `lib/event`) to the console.
pub fn event(
    kind: catena_event::Kind,
    f: impl FnOnce(catena_event::EventWriter<'_, String>) -> catena_event::EventWriter<'_, String>,
) {
    let mut line = String::new();
    let _ = f(catena_event::EventWriter::new(&mut line, kind)).finish();
    if !line.ends_with('\n') {
        line.push('\n');
    }
    print(&line);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Console, "panic: {}", info.message());
    exit(101)
}
