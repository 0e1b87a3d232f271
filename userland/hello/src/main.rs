//! The first user program: `write(1, "hello from EL0\n")`, then exit 0.
#![no_std]
#![no_main]

use catena_user_rt as rt;

/// The program.
#[unsafe(no_mangle)]
fn main(_arg: &str) -> u64 {
    rt::write(1, b"hello from EL0\n");
    0
}
