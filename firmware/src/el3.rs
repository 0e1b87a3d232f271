//! Per-CPU EL3 set-up and the way into the normal world.

use crate::platform::STACK_SIZE;
use arm_sysregs::el0::accessors::{read_cntfrq_el0, read_cntpct_el0};
use arm_sysregs::el1::accessors::{
    read_id_aa64isar1_el1, read_id_aa64pfr0_el1, read_id_aa64pfr1_el1, write_sctlr_el1,
};
use arm_sysregs::el1::registers::SctlrEl1;
use arm_sysregs::el2::accessors::{
    write_cnthctl_el2, write_cntvoff_el2, write_cptr_el2, write_hcr_el2, write_sctlr_el2,
};
use arm_sysregs::el2::registers::{CnthctlEl2, CntvoffEl2, CptrEl2, HcrEl2, SctlrEl2};
use arm_sysregs::el3::accessors::{write_cptr_el3, write_scr_el3, write_zcr_el3};
use arm_sysregs::el3::registers::{CptrEl3, ScrEl3, ZcrEl3};
use core::arch::global_asm;

/// SCR_EL3 (Arm ARM D24.2.150): NS, RES1 [5:4], HCE (HVC enabled), RW (lower ELs AArch64);
/// SMD clear (SMC enabled); IRQ/FIQ/EA not routed to EL3.
const SCR_BASE: u64 = 1 | (3 << 4) | (1 << 8) | (1 << 10);
const SCR_APK: u64 = 1 << 16;
const SCR_API: u64 = 1 << 17;
/// CPTR_EL3: EZ (SVE not trapped), ESM (SME not trapped); TFP clear (FP not trapped).
const CPTR_EZ: u64 = 1 << 8;
const CPTR_ESM: u64 = 1 << 12;
/// SCTLR_EL2 reset state with the MMU and caches off: RES1 bits only (ARMv8.0).
const SCTLR_EL2_RES1: u64 = 0x30c5_0830;
/// CPTR_EL2 with its RES1 bits and no traps.
const CPTR_EL2_RES1: u64 = 0x33ff;
/// SPSR for the normal-world entry: EL2h (or EL1h on a CPU without EL2), DAIF masked.
const SPSR_EL2H_MASKED: u64 = 0x3c9;
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// The physical counter, after an ISB (read after the code before it).
pub fn counter() -> u64 {
    arch::isb();
    read_cntpct_el0().bits()
}

/// Microseconds since reset, from the physical counter (QEMU starts it at 0 at reset).
pub fn now_us() -> u64 {
    catena_event::ticks_to_us(counter(), read_cntfrq_el0().bits())
}

fn has_pauth() -> bool {
    let isar1 = read_id_aa64isar1_el1().bits();
    // APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
    (isar1 >> 4) & 0xff != 0 || (isar1 >> 24) & 0xff != 0
}

/// Whether the CPU implements EL2 (ID_AA64PFR0_EL1.EL2, bits 11:8).
pub fn has_el2() -> bool {
    (read_id_aa64pfr0_el1().bits() >> 8) & 0xf != 0
}

fn has_sve() -> bool {
    (read_id_aa64pfr0_el1().bits() >> 32) & 0xf != 0
}

fn has_sme() -> bool {
    (read_id_aa64pfr1_el1().bits() >> 24) & 0xf != 0
}

/// EL3 state for a normal world at EL2 on this CPU, and its GIC CPU interface.
pub fn init_cpu(index: usize) {
    let mut scr = SCR_BASE;
    if has_pauth() {
        scr |= SCR_APK | SCR_API;
    }
    let mut cptr = 0;
    if has_sve() {
        cptr |= CPTR_EZ;
    }
    if has_sme() {
        cptr |= CPTR_ESM;
    }
    if !has_el2() {
        scr &= !(1 << 8); // HCE is RES0 without EL2
    }
    // SAFETY: these registers configure how lower ELs run; none of them changes EL3's own
    // memory view. ZCR_EL3 is written only when SVE exists.
    unsafe {
        write_cptr_el3(CptrEl3::from_bits_retain(cptr));
        arch::isb();
        write_scr_el3(ScrEl3::from_bits_retain(scr));
        arch::isb();
        if cptr & CPTR_EZ != 0 {
            write_zcr_el3(ZcrEl3::from_bits_retain(0xf));
            arch::isb();
        }
    }
    if has_el2() {
        // SAFETY: EL2's reset state for a normal world entered at EL2 (EL2 exists): MMU off,
        // no traps, EL1 AArch64 (HCR_EL2.RW), EL1 may use the physical counter and timer,
        // CNTVOFF 0.
        unsafe {
            write_sctlr_el2(SctlrEl2::from_bits_retain(SCTLR_EL2_RES1));
            write_cptr_el2(CptrEl2::from_bits_retain(CPTR_EL2_RES1));
            write_hcr_el2(HcrEl2::RW);
        }
        write_cnthctl_el2(CnthctlEl2::from_bits_retain(3));
        write_cntvoff_el2(CntvoffEl2::from_bits_retain(0));
        arch::isb();
    } else {
        // SAFETY: EL1's MMU-off reset state for a normal world entered at EL1.
        unsafe { write_sctlr_el1(SctlrEl1::from_bits_retain(0x30d0_0800)) };
        arch::isb();
    }
    crate::gic::init_cpu(index);
}

global_asm!(
    r#"
// enter_ns_asm(entry, x0, stack_top, spsr): reset SP_EL3, ERET to the normal world with
// clean registers.
.global enter_ns_asm
enter_ns_asm:
    mov     sp, x2
    msr     elr_el3, x0
    msr     spsr_el3, x3
    mov     x0, x1
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    mov     x4, xzr
    mov     x5, xzr
    mov     x6, xzr
    mov     x7, xzr
    mov     x8, xzr
    mov     x9, xzr
    mov     x10, xzr
    mov     x11, xzr
    mov     x12, xzr
    mov     x13, xzr
    mov     x14, xzr
    mov     x15, xzr
    mov     x16, xzr
    mov     x17, xzr
    mov     x18, xzr
    mov     x19, xzr
    mov     x20, xzr
    mov     x21, xzr
    mov     x22, xzr
    mov     x23, xzr
    mov     x24, xzr
    mov     x25, xzr
    mov     x26, xzr
    mov     x27, xzr
    mov     x28, xzr
    mov     x29, xzr
    mov     x30, xzr
    eret
"#,
);

unsafe extern "C" {
    fn enter_ns_asm(entry: u64, x0: u64, stack_top: u64, spsr: u64) -> !;
    static __stacks_top: u8;
}

/// Enters the normal world at EL2 (EL1 on a CPU without EL2) on CPU `index`: PC = `entry`,
/// x0 = `x0`, other GPRs 0.
/// EL3's stack for this CPU starts over, ready for the first SMC.
pub fn enter_ns(index: usize, entry: u64, x0: u64) -> ! {
    let top = &raw const __stacks_top as u64 - (index * STACK_SIZE) as u64;
    let spsr = if has_el2() {
        SPSR_EL2H_MASKED
    } else {
        SPSR_EL1H_MASKED
    };
    // SAFETY: `init_cpu` configured SCR_EL3 (NS, RW, and HCE when EL2 exists) and the entry
    // EL's reset state; `entry` was validated against normal-world RAM by the caller (payload
    // loader or PSCI CPU_ON); the stack top is this CPU's own, and nothing on the current
    // stack is needed again.
    unsafe { enter_ns_asm(entry, x0, top, spsr) }
}
