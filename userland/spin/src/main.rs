//! A program that never gives up the CPU: it loops without a system call. Everything else
//! still runs only because the timer tick preempts it; it ends when the system powers off.
#![no_std]
#![no_main]

use catena_user_rt as _;

/// The program.
#[unsafe(no_mangle)]
fn main(_arg: &str) -> u64 {
    let mut n: u64 = 0;
    loop {
        n = core::hint::black_box(n.wrapping_add(1));
    }
}
