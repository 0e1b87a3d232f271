//! Catena's kernel: a Rust unikernel for arm64.
//!
//! The image is a Linux arm64 `Image` (QEMU `-kernel`, U-Boot `booti`). [`boot::kernel_main`]
//! is the whole boot sequence in one function; everything after the first page table and the
//! heap runs as initcalls, level by level (`init.rs`), through the device model.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod console;
mod entry;
mod exceptions;
mod gic;
mod heap;
#[cfg(feature = "test-hooks")]
mod hyp_probes;
mod hyp_stub;
mod hypctl;
mod init;
mod kapi;
mod mm;
mod psci;
mod smp;
mod time;

/// Entered from `entry.rs` on the boot CPU at EL1, MMU off, on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(dtb: usize, entry_el: u64, load_base: usize, bad_relocs: u64) -> ! {
    boot::kernel_main(dtb, entry_el, load_base, bad_relocs)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    exceptions::fatal_panic(info)
}
