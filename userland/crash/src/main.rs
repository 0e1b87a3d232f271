//! A program that faults: it writes through a pointer into the kernel's memory (mapped in its
//! table, but privileged-only). The kernel must end it with a decoded report and go on.
#![no_std]
#![no_main]

use catena_user_rt as _;

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    let p = 0x4000_0000 as *mut u64;
    // SAFETY: none — this is the bug the kernel must contain: EL0 may not touch this address.
    unsafe { core::ptr::write_volatile(p, 0xdead) };
    loop {
        core::hint::spin_loop();
    }
}
