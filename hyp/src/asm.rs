//! The hyp's assembly: its header (at the image's first byte), its vectors, and the entry a
//! secondary CPU takes under the hyp. The kernel's boot stub (which installs the hyp) is the
//! kernel's own (`kernel/src/arch/hyp_stub.rs`): the two images share no code, only the EL2
//! set-up's source (`lib/hyp-abi/src/el2_setup.S`, assembled into each) and the layout of
//! `hyp_abi::InstallParams`, whose offsets both take from `offset_of!`.

use core::arch::global_asm;
use core::mem::offset_of;
use hyp_abi::{HYP_MAGIC, InstallParams};

global_asm!(
    include_str!("../../lib/hyp-abi/src/el2_setup.S"),
    include_str!("../../lib/trapframe/src/frame.S"),
    r#"
// The image header (hyp_abi::HypHeader): what the kernel needs before relocating the image.
.section .head.text, "ax"
.global hyp_header
hyp_header:
    .quad {magic}
    .quad __hyp_image_size
    .quad __hyp_file_size
    .quad __hyp_rela_offset
    .quad __hyp_rela_size
    .quad hyp_vectors - hyp_header
    .quad HYP_STACKS - hyp_header
    .quad HYP_FFA_BUFFERS - hyp_header
    .quad hyp_install_entry - hyp_header

// hyp_el2_setup: see el2_setup.S.
.section .text, "ax"
hyp_el2_setup:
    el2_setup_body
    ret

// hyp_el2_enable_mmu: x0 = InstallParams. Loads the hyp's stage-1, vectors and the stage-2
// when VTCR is non-zero, then HCR_EL2. Every field is read before the MMU goes on. Clobbers
// x9-x17.
hyp_el2_enable_mmu:
    ic      iallu
    dsb     nsh
    ldr     x9, [x0, #{cpu}]
    msr     tpidr_el2, x9
    ldr     x10, [x0, #{mair}]
    ldr     x11, [x0, #{tcr}]
    ldr     x12, [x0, #{ttbr0}]
    ldr     x13, [x0, #{sctlr}]
    ldr     x14, [x0, #{vbar}]
    ldr     x15, [x0, #{vtcr}]
    ldr     x16, [x0, #{vttbr}]
    ldr     x17, [x0, #{hcr}]
    msr     mair_el2, x10
    msr     tcr_el2, x11
    msr     ttbr0_el2, x12
    isb
    tlbi    alle2
    dsb     nsh
    isb
    msr     sctlr_el2, x13
    isb
    msr     vbar_el2, x14
    cbz     x15, 2f
    msr     vtcr_el2, x15
    msr     vttbr_el2, x16
    isb
    tlbi    vmalls12e1
    dsb     nsh
2:  msr     hcr_el2, x17
    isb
    ret

// hyp_install_entry: the kernel's boot stub branches here at EL2 with the MMU off, x0 = the
// InstallParams, ELR_EL2/SPSR_EL2 still holding the host's return from its HVC. The hyp's
// early stage-1 (this image and its pool), vectors, stack and HCR_EL2 go live, then the host
// continues with x0 = 0.
.global hyp_install_entry
hyp_install_entry:
    mov     x6, x0
    ldr     x5, [x6, #{sp}]
    bl      hyp_el2_enable_mmu
    mov     sp, x5
    mov     x0, #0
    eret

// hyp_secondary_entry: PSCI CPU_ON lands here (EL2, MMU off) for every CPU the host starts
// once the hyp is installed; x0 = this CPU's InstallParams. The hyp comes up, then the host's
// entry runs at EL1 with its context id.
.global hyp_secondary_entry
hyp_secondary_entry:
    msr     daifset, #0xf
    mov     x6, x0
    bl      hyp_el2_setup
    mov     x0, x6
    ldr     x5, [x6, #{sp}]
    ldr     x4, [x6, #{host_entry}]
    ldr     x3, [x6, #{host_ctx}]
    bl      hyp_el2_enable_mmu
    mov     sp, x5
    ldr     x9, =0x30d00800
    msr     sctlr_el1, x9
    mov     x9, #0x3c5
    msr     spsr_el2, x9
    msr     elr_el2, x4
    mov     x0, x3
    // The host sees its context id in x0 and nothing of the hyp in the other registers.
    .irp r, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
    mov     x\r, xzr
    .endr
    eret

// hyp_spin_entry: a spin-table CPU released by the host after the SpinCpu hypercall lands
// here (EL2, MMU off, x0 = 0 from the board's spin loop). It looks up its MPIDR among the CPUs
// the hyp expects (HYP_SPIN_MPIDR, cleaned to PoC) and takes its parameters' address from
// HYP_SPIN_PARAMS; a CPU the hyp does not expect parks here for good.
.global hyp_spin_entry
hyp_spin_entry:
    msr     daifset, #0xf
    mrs     x1, mpidr_el1
    ldr     x2, =0xff00ffffff
    and     x1, x1, x2
    adrp    x2, HYP_SPIN_MPIDR
    add     x2, x2, :lo12:HYP_SPIN_MPIDR
    mov     x3, #0
1:  ldr     x4, [x2, x3, lsl #3]
    cmp     x4, x1
    b.eq    2f
    add     x3, x3, #1
    cmp     x3, #{max_cpus}
    b.lo    1b
3:  wfe
    b       3b
2:  adrp    x2, HYP_SPIN_PARAMS
    add     x2, x2, :lo12:HYP_SPIN_PARAMS
    ldr     x0, [x2, x3, lsl #3]
    cbz     x0, 3b
    b       hyp_secondary_entry

.section .text.vectors, "ax"
.balign 0x800
.global hyp_vectors
hyp_vectors:
    trap_table hyp_trap, hyp_unexpected, el2
"#,
    magic = const HYP_MAGIC,
    // Offsets from the struct itself: a field moved or resized cannot go unnoticed.
    mair = const offset_of!(InstallParams, mair),
    tcr = const offset_of!(InstallParams, tcr),
    ttbr0 = const offset_of!(InstallParams, ttbr0),
    sctlr = const offset_of!(InstallParams, sctlr),
    vbar = const offset_of!(InstallParams, vbar),
    vtcr = const offset_of!(InstallParams, vtcr),
    vttbr = const offset_of!(InstallParams, vttbr),
    hcr = const offset_of!(InstallParams, hcr),
    sp = const offset_of!(InstallParams, sp),
    host_entry = const offset_of!(InstallParams, host_entry),
    host_ctx = const offset_of!(InstallParams, host_ctx),
    cpu = const offset_of!(InstallParams, cpu),
    max_cpus = const crate::MAX_CPUS,
);
