//! Copying to and from a process's memory: the only way the kernel touches it.
//!
//! Two checks, either of which alone keeps the kernel safe from a bad pointer:
//! 1. the range must lie inside the user range (`elf_load::USER`, no wrap-around), checked
//!    before any access;
//! 2. every byte is moved with LDTRB/STTRB, the "unprivileged" loads and stores (Arm ARM
//!    C6.2.154, C6.2.317): at EL1 they are checked as if EL0 made them, so a kernel page (mapped
//!    privileged-only in every process table) faults like an unmapped one. A fault there is
//!    fixed up: the exception handler sees the PC inside [`copy`] and resumes at its failure
//!    exit, and the call returns `Err(EFAULT)` instead of ending the boot.
//!
//! Where the CPU has PAN (FEAT_PAN), it is set too (`enable_pan`): then even a plain load of
//! user memory from EL1 faults, so no kernel code can read a process's memory by mistake.

use core::arch::global_asm;

// uaccess_copy(dst, src, len, to_user) -> 0, or 1 when a user access faulted.
// from user: LDTRB from src (user), STRB to dst (kernel); to user: LDRB from src (kernel),
// STTRB to dst (user). Only the unprivileged accesses are between uaccess_start and
// uaccess_end; the handler resumes a fault there at uaccess_fault.
global_asm!(
    r#"
.section .text.uaccess, "ax"
.global uaccess_copy
.global uaccess_start
.global uaccess_end
.global uaccess_fault
uaccess_copy:
    cbz     x2, 3f
    cbnz    x3, 2f
1:
uaccess_start:
    ldtrb   w4, [x1]
    strb    w4, [x0], #1
    add     x1, x1, #1
    subs    x2, x2, #1
    b.ne    1b
    b       3f
2:
    ldrb    w4, [x1], #1
    sttrb   w4, [x0]
uaccess_end:
    add     x0, x0, #1
    subs    x2, x2, #1
    b.ne    2b
3:
    mov     x0, #0
    ret
uaccess_fault:
    mov     x0, #1
    ret
"#
);

unsafe extern "C" {
    fn uaccess_copy(dst: *mut u8, src: *const u8, len: usize, to_user: u64) -> u64;
    static uaccess_start: u8;
    static uaccess_end: u8;
    static uaccess_fault: u8;
}

/// -EFAULT.
pub const EFAULT: u64 = (-14i64) as u64;

/// Whether `[ptr, ptr+len)` is inside the user range (the empty range at a user address too).
pub fn user_range(ptr: u64, len: u64) -> bool {
    elf_load::inside(
        &[(elf_load::USER.base, elf_load::USER.end)],
        ptr,
        len.max(1),
    )
}

/// The exception handler's question: a fault at `elr` on user address `far` inside the copy
/// loop? Then where it resumes.
pub fn fixup(elr: u64, far: u64) -> Option<u64> {
    // Only the symbols' addresses are taken.
    let (start, end, resume) = (
        &raw const uaccess_start as u64,
        &raw const uaccess_end as u64,
        &raw const uaccess_fault as u64,
    );
    ((start..end).contains(&elr) && user_range(far, 1)).then_some(resume)
}

/// Reads `dst.len()` bytes of the running process's memory at `src`.
pub fn copy_in(dst: &mut [u8], src: u64) -> Result<(), u64> {
    if dst.is_empty() {
        // Nothing is read: any pointer will do (Linux's access_ok of a zero length).
        return Ok(());
    }
    if !user_range(src, dst.len() as u64) {
        return Err(EFAULT);
    }
    // SAFETY: `dst` is kernel memory of that length; `src` is a user-range address read only
    // by LDTRB, whose faults `fixup` turns into the error return.
    match unsafe { uaccess_copy(dst.as_mut_ptr(), src as *const u8, dst.len(), 0) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

/// Writes `src` into the running process's memory at `dst`.
pub fn copy_out(dst: u64, src: &[u8]) -> Result<(), u64> {
    if src.is_empty() {
        return Ok(());
    }
    if !user_range(dst, src.len() as u64) {
        return Err(EFAULT);
    }
    // SAFETY: `src` is kernel memory of that length; `dst` is a user-range address written
    // only by STTRB, whose faults `fixup` turns into the error return.
    match unsafe { uaccess_copy(dst as *mut u8, src.as_ptr(), src.len(), 1) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

/// Sets PSTATE.PAN where the CPU has FEAT_PAN (ID_AA64MMFR1_EL1.PAN != 0), and keeps it set
/// on every exception into EL1 (SCTLR_EL1.SPAN = 0). Returns whether it is on.
pub fn enable_pan() -> bool {
    let mmfr1: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack))
    };
    if (mmfr1 >> 20) & 0xf == 0 {
        return false;
    }
    // SAFETY: FEAT_PAN is implemented (checked above). SPAN (bit 23) cleared makes every
    // exception taken to EL1 set PAN; `msr pan, #1` (encoded, for assemblers without the
    // extension enabled) sets it now. The kernel reaches user memory only through LDTR/STTR,
    // which PAN does not restrict.
    unsafe {
        core::arch::asm!(
            "mrs {t}, sctlr_el1",
            "bic {t}, {t}, #(1 << 23)",
            "msr sctlr_el1, {t}",
            "isb",
            ".inst 0xd500419f",
            t = out(reg) _,
            options(nostack)
        )
    };
    true
}
