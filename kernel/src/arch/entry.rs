//! Image header and the first instructions: from the loader's hand-off to Rust.
//!
//! Boot protocol (Linux `Documentation/arch/arm64/booting.rst`): x0 = physical address of the
//! DTB, x1–x3 = 0, MMU off, entered at EL2 or EL1 anywhere on a 2 MiB boundary. The header says
//! text_offset 0, 4 KiB pages, "place anywhere" (flags bit 3).
//!
//! The primary path: mask exceptions, note the entry EL, drop from EL2 to EL1 if needed
//! (minimal EL2 set-up; the hyp issue replaces this with the real EL2 component), install the
//! vectors, set up the boot stack, zero .bss, apply our own R_AARCH64_RELATIVE relocations for
//! the load address, and call [`crate::kernel_main`].
//!
//! Secondary CPUs enter at `secondary_entry` from PSCI CPU_ON with x0 = a [`SecondaryBoot`]
//! that the boot CPU cleaned to the point of coherency; they drop to EL1 the same way, switch
//! on the MMU with the boot CPU's tables and call [`crate::smp::secondary_main`].

use core::arch::global_asm;

/// What a secondary CPU needs before it can run Rust: read with the MMU off.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SecondaryBoot {
    /// Top of this CPU's stack.
    pub stack_top: u64,
    /// TTBR0_EL1 to load.
    pub ttbr0: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// SCTLR_EL1 (MMU and caches on).
    pub sctlr: u64,
    /// Linear CPU index.
    pub cpu: u64,
    /// MPIDR of the CPU (as the DT says).
    pub mpidr: u64,
}

/// R_AARCH64_RELATIVE (ELF for the Arm 64-bit Architecture, table "Dynamic relocations").
pub const R_AARCH64_RELATIVE: u64 = 1027;

// Drop from EL2 to EL1: the EL2 set-up every CPU needs (`hyp_stub.rs` `el2_setup`), the
// hyp's boot stub at VBAR_EL2 (it will install the hyp when asked), SCTLR_EL1 in its reset
// state with the MMU off, then ERET to EL1h with DAIF masked. Clobbers x9, x10, x30.
global_asm!(
    r#"
.macro el2_to_el1
    bl      el2_setup
    adrp    x9, hyp_stub_vectors
    add     x9, x9, :lo12:hyp_stub_vectors
    msr     vbar_el2, x9
    ldr     x9, =0x30d00800
    msr     sctlr_el1, x9
    mov     x9, #0x3c5
    msr     spsr_el2, x9
    adr     x9, 2f
    msr     elr_el2, x9
    eret
2:
.endm
// EL1 with the MMU off in a known state, and our vectors. Clobbers x9.
.macro el1_reset
    ldr     x9, =0x30d00800
    msr     sctlr_el1, x9
    isb
    adrp    x9, exception_vectors
    add     x9, x9, :lo12:exception_vectors
    msr     vbar_el1, x9
.endm
"#
);

global_asm!(
    r#"
.section .head.text, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size (includes .bss and the boot stack)
    .quad   0xa                     // flags: LE, 4K pages (1 << 1), anywhere (1 << 3)
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE header)

.section .text.entry, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // DTB
    mrs     x21, CurrentEL
    lsr     x21, x21, #2            // entry EL
    cmp     x21, #2
    b.ne    3f
    el2_to_el1
3:
    // At EL1, MMU off (we may have been entered at EL1 in any state).
    el1_reset
    adrp    x20, _start
    add     x20, x20, :lo12:_start  // load address = relocation delta (linked at 0)
    adrp    x9, __boot_stack_top
    add     x9, x9, :lo12:__boot_stack_top
    mov     sp, x9
    // Zero .bss (16-byte aligned both ends).
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
4:  cmp     x9, x10
    b.hs    5f
    stp     xzr, xzr, [x9], #16
    b       4b
5:
    // Apply relocations: *(delta + r_offset) = delta + r_addend. Others are counted.
    adrp    x9, __rela_start
    add     x9, x9, :lo12:__rela_start
    adrp    x10, __rela_end
    add     x10, x10, :lo12:__rela_end
    mov     x22, #0
6:  cmp     x9, x10
    b.hs    8f
    ldp     x11, x12, [x9], #16
    ldr     x13, [x9], #8
    and     x12, x12, #0xffffffff
    cmp     x12, #{relative}
    b.ne    7f
    add     x13, x13, x20
    str     x13, [x11, x20]
    b       6b
7:  add     x22, x22, #1
    b       6b
8:
    mov     x0, x19                 // dtb
    mov     x1, x21                 // entry EL
    mov     x2, x20                 // load address
    mov     x3, x22                 // relocations we could not apply
    bl      kernel_main
9:  wfe
    b       9b

// spin_table_entry: a spin-table CPU released without a hyp (x0 = 0 from the board's spin
// loop, MMU off). The CPU whose MPIDR is in SPIN_MPIDR takes its boot block from SPIN_CTX
// (both cleaned to PoC by the boot CPU); any other CPU waits here.
.global spin_table_entry
spin_table_entry:
    msr     daifset, #0xf
    mrs     x1, mpidr_el1
    ldr     x2, =0xff00ffffff
    and     x1, x1, x2
1:  adrp    x2, SPIN_MPIDR
    add     x2, x2, :lo12:SPIN_MPIDR
    ldr     x3, [x2]
    cmp     x3, x1
    b.eq    2f
    wfe
    b       1b
2:  adrp    x2, SPIN_CTX
    add     x2, x2, :lo12:SPIN_CTX
    ldr     x0, [x2]
    b       secondary_entry

.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // SecondaryBoot, read with the MMU off
    mrs     x21, CurrentEL
    lsr     x21, x21, #2
    cmp     x21, #2
    b.ne    3f
    el2_to_el1
3:
    el1_reset
    ldr     x9, [x19, #0]
    mov     sp, x9
    ldr     x9, [x19, #24]
    msr     mair_el1, x9
    ldr     x9, [x19, #16]
    msr     tcr_el1, x9
    ldr     x9, [x19, #8]
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x9, [x19, #32]
    msr     sctlr_el1, x9
    isb
    mov     x0, x19
    mov     x1, x21                 // entry EL
    bl      secondary_main
9:  wfe
    b       9b
"#,
    relative = const R_AARCH64_RELATIVE,
);
