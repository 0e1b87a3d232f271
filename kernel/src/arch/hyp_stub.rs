//! The kernel's EL2 boot stub: the EL2 set-up every CPU entered at EL2 needs before it drops
//! to EL1, and the vectors left at VBAR_EL2 that answer one HVC — install the hyp
//! ([`hyp_abi::HVC_STUB_INSTALL`]: branch, MMU off, to the hyp image's install entry, which
//! turns on its own MMU). The hyp is a separate image that assembles the same set-up
//! (`lib/hyp-abi/src/el2_setup.S`) for the CPUs it starts; the two images share that source
//! and `hyp_abi`'s layouts, no code.

use core::arch::global_asm;
use hyp_abi::HVC_STUB_INSTALL;

global_asm!(
    include_str!("../../../lib/hyp-abi/src/el2_setup.S"),
    r#"
// el2_setup: see el2_setup.S.
.section .text, "ax"
.global el2_setup
el2_setup:
    el2_setup_body
    ret

// The boot stub: VBAR_EL2 while the kernel runs at EL1 before the hyp is installed.
.section .text.hyp_stub, "ax"
.balign 0x800
.global hyp_stub_vectors
hyp_stub_vectors:
    .rept 8
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       hyp_stub_sync
    .rept 7
    .balign 0x80
    b       .
    .endr

// x0 = HVC_STUB_INSTALL, x1 = InstallParams, x2 = the hyp's install entry: the hyp image
// turns its own MMU on (the stub's code is the kernel's, which the hyp does not map), so the
// stub only branches there with the MMU still off.
hyp_stub_sync:
    mrs     x9, esr_el2
    lsr     x9, x9, #26
    cmp     x9, #0x16               // HVC64
    b.ne    3f
    ldr     x9, ={install}
    cmp     x0, x9
    b.ne    3f
    mov     x0, x1
    br      x2
3:  mov     x0, #-1                 // SMCCC NOT_SUPPORTED
    eret
"#,
    install = const HVC_STUB_INSTALL,
);
