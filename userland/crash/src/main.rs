//! A program that faults, for the kernel to contain: by default it writes through a pointer
//! into the kernel's memory (mapped in its table, but privileged-only); with the argument
//! `udf` it executes a permanently undefined instruction. Either way the kernel must end it
//! with a decoded report and go on.
#![no_std]
#![no_main]

use catena_user_rt as _;

/// The program.
#[unsafe(no_mangle)]
fn main(arg: &str) -> u64 {
    if arg == "udf" {
        // SAFETY: none — the undefined instruction is the point.
        unsafe { core::arch::asm!("udf #0") };
    }
    let p = 0x4000_0000 as *mut u64;
    // SAFETY: none — this is the bug the kernel must contain: EL0 may not touch this address.
    unsafe { core::ptr::write_volatile(p, 0xdead) };
    0
}
