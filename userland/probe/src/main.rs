//! Hammers the syscall ABI with bad arguments; each must be refused with an error, never
//! fault the kernel: write from an unmapped address, from a kernel address, past the end of a
//! mapping, too long, to a bad descriptor; an unknown syscall. Exits with the number of
//! refusals that came back as expected (6), after one good write.
#![no_std]
#![no_main]

use catena_user_rt::{self as rt, EBADF, EFAULT, ENOSYS, SYS_WRITE, syscall3};

static MSG: [u8; 16] = *b"probe: refusals\n";

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    let good = MSG.as_ptr() as u64;
    let checks = [
        (syscall3(SYS_WRITE, 1, 0x1000, 8), EFAULT),
        (syscall3(SYS_WRITE, 1, 0x4000_0000, 16), EFAULT),
        (syscall3(SYS_WRITE, 1, good + 8, 4096 * 2), EFAULT),
        (syscall3(SYS_WRITE, 1, good, u64::MAX), EFAULT),
        (syscall3(SYS_WRITE, 7, good, 4), EBADF),
        (syscall3(4242, 0, 0, 0), ENOSYS),
    ];
    let ok = checks.iter().filter(|(got, want)| got == want).count() as u64;
    rt::write(1, &MSG);
    rt::exit(ok)
}
