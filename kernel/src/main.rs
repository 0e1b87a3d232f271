//! Catena's kernel: a Rust unikernel for arm64.
//!
//! Grouped by subsystem: `arch` (entry, exceptions, GIC, PSCI, counter, EL2 stub), `mm`
//! (page tables, heap), `init` (the boot sequence and the initcalls), `hyp` (installing and
//! finalising the hyp), `smp`, `console`, and `kapi` (the door drivers use).
//!
//! The image is a Linux arm64 `Image` (QEMU `-kernel`, U-Boot `booti`). [`init::boot::kernel_main`]
//! is the whole boot sequence in one function; everything after the first page table and the
//! heap runs as initcalls, level by level (`init/mod.rs`), through the device model.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod console;
mod hyp;
mod init;
mod kapi;
mod mm;
mod smp;
mod user;

/// Entered from `entry.rs` on the boot CPU at EL1, MMU off, on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(dtb: usize, entry_el: u64, load_base: usize, bad_relocs: u64) -> ! {
    init::boot::kernel_main(dtb, entry_el, load_base, bad_relocs)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::exceptions::fatal_panic(info)
}
