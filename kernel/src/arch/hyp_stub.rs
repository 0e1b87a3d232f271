//! The kernel's EL2 boot stub: the EL2 set-up every CPU entered at EL2 needs before it drops
//! to EL1, and the vectors left at VBAR_EL2 that answer one HVC — install the hyp
//! ([`hyp_abi::HVC_STUB_INSTALL`]: branch, MMU off, to the hyp image's install entry, which
//! turns on its own MMU). The hyp is a separate image with its own copy of this set-up for the
//! CPUs it starts; the two share only `hyp_abi`'s layouts.

use core::arch::global_asm;
use hyp_abi::HVC_STUB_INSTALL;

global_asm!(
    r#"
// el2_setup: EL2 configuration every CPU needs before the host runs at EL1. Clobbers x9, x10.
//   HCR_EL2.RW (EL1 is AArch64), nothing trapped yet; EL1 may use the physical counter and
//   timer (CNTHCTL_EL2.EL1PCTEN|EL1PCEN), CNTVOFF_EL2 = 0; GICv3 system registers usable
//   from EL1 (ICC_SRE_EL2.SRE|Enable) when the CPU has a GICv3 interface; no FP/SIMD or
//   CP15 traps (CPTR_EL2, HSTR_EL2); EL1 reads of MIDR/MPIDR see the real values.
.section .text, "ax"
.global el2_setup
el2_setup:
    mov     x9, #(1 << 31)
    msr     hcr_el2, x9
    mov     x9, #3
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4
    cbz     x9, 1f
    mrs     x9, S3_4_C12_C9_5
    mov     x10, #0x9
    orr     x9, x9, x10
    msr     S3_4_C12_C9_5, x9
    isb
    msr     S3_4_C12_C11_0, xzr
1:  mov     x9, #0x33ff
    msr     cptr_el2, x9
    msr     hstr_el2, xzr
    mrs     x9, midr_el1
    msr     vpidr_el2, x9
    mrs     x9, mpidr_el1
    msr     vmpidr_el2, x9
    isb
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
