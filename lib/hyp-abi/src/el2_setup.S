// el2_setup_body: the EL2 configuration every CPU needs before the host runs at EL1, used by
// the kernel's boot stub (kernel/src/arch/hyp_stub.rs) and the hyp's secondary entry
// (hyp/src/asm.rs): one source, assembled into each image. Clobbers x9, x10.
//   HCR_EL2.RW (EL1 is AArch64), nothing trapped yet; EL1 may use the physical counter and
//   timer (CNTHCTL_EL2.EL1PCTEN|EL1PCEN), CNTVOFF_EL2 = 0; GICv3 system registers usable
//   from EL1 (ICC_SRE_EL2.SRE|Enable) when the CPU has a GICv3 interface; no FP/SIMD or
//   CP15 traps (CPTR_EL2, HSTR_EL2); EL1 reads of MIDR/MPIDR see the real values.
.macro el2_setup_body
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
.endm
