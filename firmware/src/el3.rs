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
/// SPSR for the normal-world entry: EL2h, DAIF masked.
const SPSR_EL2H_MASKED: u64 = 0x3c9;

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an ID/system register has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

fn has_pauth() -> bool {
    let isar1 = read_sysreg!("id_aa64isar1_el1");
    // APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
    (isar1 >> 4) & 0xff != 0 || (isar1 >> 24) & 0xff != 0
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
    // SAFETY: these registers configure how lower ELs run; none of them changes EL3's own
    // memory view. ZCR_EL3 (S3_6_C1_C2_0) is written only when SVE exists.
    unsafe {
        asm!(
            "msr cptr_el3, {cptr}",
            "isb",
            "msr scr_el3, {scr}",
            "msr sctlr_el2, {sctlr2}",
            "msr cptr_el2, {cptr2}",
            "msr hcr_el2, {hcr2}",
            "msr cnthctl_el2, {cnthctl}",
            "msr cntvoff_el2, xzr",
            "isb",
            cptr = in(reg) cptr,
            scr = in(reg) scr,
            sctlr2 = in(reg) SCTLR_EL2_RES1,
            cptr2 = in(reg) CPTR_EL2_RES1,
            hcr2 = in(reg) 1u64 << 31,
            cnthctl = in(reg) 3u64,
            options(nostack)
        );
        if cptr & CPTR_EZ != 0 {
            asm!("msr S3_6_C1_C2_0, {}", "isb", in(reg) 0xfu64, options(nostack));
        }
    }
    crate::gic::init_cpu(index);
}

global_asm!(
    r#"
// enter_ns_asm(entry, x0, stack_top): reset SP_EL3, ERET to NS EL2 with clean registers.
.global enter_ns_asm
enter_ns_asm:
    mov     sp, x2
    msr     elr_el3, x0
    mov     x9, #{spsr}
    msr     spsr_el3, x9
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
    spsr = const SPSR_EL2H_MASKED,
);

unsafe extern "C" {
    fn enter_ns_asm(entry: u64, x0: u64, stack_top: u64) -> !;
    static __stacks_top: u8;
}

/// Enters the normal world at EL2 on CPU `index`: PC = `entry`, x0 = `x0`, other GPRs 0.
/// EL3's stack for this CPU starts over, ready for the first SMC.
pub fn enter_ns(index: usize, entry: u64, x0: u64) -> ! {
    let top = &raw const __stacks_top as u64 - (index * STACK_SIZE) as u64;
    // SAFETY: `init_cpu` configured SCR_EL3 (NS, RW, HCE) and EL2's reset state; `entry` was
    // validated against normal-world RAM by the caller (payload loader or PSCI CPU_ON); the
    // stack top is this CPU's own, and nothing on the current stack is needed again.
    unsafe { enter_ns_asm(entry, x0, top) }
}
