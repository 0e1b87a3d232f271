//! Per-CPU EL3 set-up and the way into the normal world.

use crate::platform::STACK_SIZE;
use core::arch::{asm, global_asm};

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

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an ID/system register has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Microseconds since reset, from the physical counter (QEMU starts it at 0 at reset).
pub fn now_us() -> u64 {
    catena_event::ticks_to_us(read_sysreg!("cntpct_el0"), read_sysreg!("cntfrq_el0"))
}

fn has_pauth() -> bool {
    let isar1 = read_sysreg!("id_aa64isar1_el1");
    // APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
    (isar1 >> 4) & 0xff != 0 || (isar1 >> 24) & 0xff != 0
}

/// Whether the CPU implements EL2 (ID_AA64PFR0_EL1.EL2, bits 11:8).
pub fn has_el2() -> bool {
    (read_sysreg!("id_aa64pfr0_el1") >> 8) & 0xf != 0
}

fn has_sve() -> bool {
    (read_sysreg!("id_aa64pfr0_el1") >> 32) & 0xf != 0
}

fn has_sme() -> bool {
    (read_sysreg!("id_aa64pfr1_el1") >> 24) & 0xf != 0
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
    // memory view. ZCR_EL3 (S3_6_C1_C2_0) is written only when SVE exists.
    unsafe {
        asm!(
            "msr cptr_el3, {cptr}",
            "isb",
            "msr scr_el3, {scr}",
            "isb",
            cptr = in(reg) cptr,
            scr = in(reg) scr,
            options(nostack)
        );
        if cptr & CPTR_EZ != 0 {
            asm!("msr S3_6_C1_C2_0, {}", "isb", in(reg) 0xfu64, options(nostack));
        }
    }
    if has_el2() {
        // SAFETY: EL2's reset state for a normal world entered at EL2 (EL2 exists).
        unsafe {
            asm!(
                "msr sctlr_el2, {sctlr2}",
                "msr cptr_el2, {cptr2}",
                "msr hcr_el2, {hcr2}",
                "msr cnthctl_el2, {cnthctl}",
                "msr cntvoff_el2, xzr",
                "isb",
                sctlr2 = in(reg) SCTLR_EL2_RES1,
                cptr2 = in(reg) CPTR_EL2_RES1,
                hcr2 = in(reg) 1u64 << 31,
                cnthctl = in(reg) 3u64,
                options(nostack)
            );
        }
    } else {
        // SAFETY: EL1's MMU-off reset state for a normal world entered at EL1.
        unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) 0x30d0_0800u64, options(nostack)) };
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
