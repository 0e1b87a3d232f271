//! What every user program links: Catena's syscall ABI (the AArch64 Linux convention: the
//! number in x8, arguments in x0..x5, `svc #0`, the result in x0, negative errno on failure;
//! numbers from Linux's generic table, docs/userland.md) and a panic handler that exits 101.
#![no_std]

/// `write(fd, buf, len)`.
pub const SYS_WRITE: u64 = 64;
/// `exit(code)`.
pub const SYS_EXIT: u64 = 93;
/// -EBADF, -EFAULT, -ENOSYS as the kernel returns them.
pub const EBADF: u64 = (-9i64) as u64;
/// See [`EBADF`].
pub const EFAULT: u64 = (-14i64) as u64;
/// See [`EBADF`].
pub const ENOSYS: u64 = (-38i64) as u64;

/// A system call with up to three arguments.
pub fn syscall3(n: u64, a: u64, b: u64, c: u64) -> u64 {
    let r;
    // SAFETY: a supervisor call into the kernel with the documented registers; the kernel
    // checks every argument against this process's mappings and touches nothing of ours but
    // what the call names.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") a => r, in("x1") b, in("x2") c, in("x8") n, options(nostack));
    }
    r
}

/// Writes `bytes` to descriptor `fd`.
pub fn write(fd: u64, bytes: &[u8]) -> u64 {
    syscall3(SYS_WRITE, fd, bytes.as_ptr() as u64, bytes.len() as u64)
}

/// Ends the process.
pub fn exit(code: u64) -> ! {
    syscall3(SYS_EXIT, code, 0, 0);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}
