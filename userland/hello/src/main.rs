//! The first user program: `write(1, "hello from EL0\n")`, then `exit(0)`.
#![no_std]
#![no_main]

use catena_user_rt as rt;

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    rt::write(1, b"hello from EL0\n");
    rt::exit(0)
}
