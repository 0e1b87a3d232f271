//! The first user program: `write(1, "hello from EL0\n")`, then `exit(0)`, through Catena's
//! syscall ABI (the AArch64 Linux convention: the number in x8, arguments in x0..x5, `svc #0`,
//! the result in x0; numbers as Linux's generic table: write 64, exit 93).
#![no_std]
#![no_main]

const SYS_WRITE: u64 = 64;
const SYS_EXIT: u64 = 93;

fn syscall3(n: u64, a: u64, b: u64, c: u64) -> u64 {
    let r;
    // SAFETY: a supervisor call into the kernel with the documented registers; the kernel
    // checks every argument against this process's mappings and touches nothing of ours but
    // what the call names.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") a => r, in("x1") b, in("x2") c, in("x8") n, options(nostack));
    }
    r
}

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    let msg = b"hello from EL0\n";
    syscall3(SYS_WRITE, 1, msg.as_ptr() as u64, msg.len() as u64);
    syscall3(SYS_EXIT, 0, 0, 0);
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
