//! Hammers the syscall ABI with bad arguments; each must be refused with an error, never
//! fault the kernel: write from an unmapped address, from a kernel address, past the end of a
//! mapping, too long, to a bad descriptor; an unknown syscall. Exits with the number of
//! refusals that came back as expected (6), after one good write.
#![no_std]
#![no_main]

const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;
const EFAULT: u64 = (-14i64) as u64;
const EBADF: u64 = (-9i64) as u64;
const ENOSYS: u64 = (-38i64) as u64;

fn syscall3(n: u64, a: u64, b: u64, c: u64) -> u64 {
    let r;
    // SAFETY: a supervisor call with the documented registers; the kernel must check them.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") a => r, in("x1") b, in("x2") c, in("x8") n, options(nostack));
    }
    r
}

static MSG: [u8; 16] = *b"probe: refusals\n";

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    let mut ok = 0;
    let good = MSG.as_ptr() as u64;
    let checks = [
        (syscall3(SYS_WRITE, 1, 0x1000, 8), EFAULT),
        (syscall3(SYS_WRITE, 1, 0x4000_0000, 16), EFAULT),
        (syscall3(SYS_WRITE, 1, good + 8, 4096 * 2), EFAULT),
        (syscall3(SYS_WRITE, 1, good, u64::MAX), EFAULT),
        (syscall3(SYS_WRITE, 7, good, 4), EBADF),
        (syscall3(4242, 0, 0, 0), ENOSYS),
    ];
    for (got, want) in checks {
        if got == want {
            ok += 1;
        }
    }
    syscall3(SYS_WRITE, 1, good, MSG.len() as u64);
    syscall3(SYS_EXIT, ok, 0, 0);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    syscall3(SYS_EXIT, 101, 0, 0);
    loop {
        core::hint::spin_loop();
    }
}
