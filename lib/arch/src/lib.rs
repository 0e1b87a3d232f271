//! aarch64 instructions shared by the firmware (EL3), the hyp (EL2) and the kernel (EL1)
//! that are not system-register reads or writes (those go through `arm-sysregs`): barriers,
//! cache maintenance by VA, TLB invalidation, and the wait/wake hints.
//!
//! Owns: one `asm!` per instruction, each with the claim that makes it sound. Must not: hold
//! policy. On other architectures (host builds and tests of crates that depend on it) every
//! function is a no-op, so logic that calls them still runs under test.
#![no_std]

#[cfg(target_arch = "aarch64")]
macro_rules! insn {
    ($(#[$m:meta])* $vis:vis fn $name:ident() = $text:literal) => {
        $(#[$m])*
        #[inline(always)]
        $vis fn $name() {
            // SAFETY: see the function's documentation: the instruction changes no memory that
            // Rust code can observe and leaves every register but the flags it names alone.
            unsafe { core::arch::asm!($text, options(nostack, preserves_flags)) };
        }
    };
}

#[cfg(not(target_arch = "aarch64"))]
macro_rules! insn {
    ($(#[$m:meta])* $vis:vis fn $name:ident() = $text:literal) => {
        $(#[$m])*
        #[inline(always)]
        $vis fn $name() {}
    };
}

insn!(
    /// ISB: later instructions see earlier system-register writes.
    pub fn isb() = "isb");
insn!(
    /// DSB SY: earlier memory accesses complete, full system.
    pub fn dsb_sy() = "dsb sy");
insn!(
    /// DSB ISH: earlier memory accesses complete, inner shareable domain.
    pub fn dsb_ish() = "dsb ish");
insn!(
    /// DSB ISHST: earlier stores complete, inner shareable domain.
    pub fn dsb_ishst() = "dsb ishst");
insn!(
    /// DSB NSH: earlier memory accesses complete, this CPU.
    pub fn dsb_nsh() = "dsb nsh");
insn!(
    /// SEV after DSB SY: every CPU waiting in WFE wakes and sees the stores before it.
    pub fn dsb_sev() = "dsb sy\nsev");
insn!(
    /// WFE: wait for an event (or an interrupt); may return at any time.
    pub fn wfe() = "wfe");
insn!(
    /// WFI: wait for an interrupt; may return at any time.
    pub fn wfi() = "wfi");
insn!(
    /// HINT #0x7e, an unallocated hint (a NOP to the CPU): where the instruction counter
    /// (`tools/qemu-plugin`, `cargo xtask bench`) starts its window.
    pub fn count_start() = "hint #0x7e");
insn!(
    /// HINT #0x7f (a NOP): where the counter's window ends.
    pub fn count_end() = "hint #0x7f");
insn!(
    /// HINT #0x7c (a NOP): the counter pauses (a wait on something outside the guest).
    pub fn count_pause() = "hint #0x7c");
insn!(
    /// HINT #0x7d (a NOP): the counter resumes.
    pub fn count_resume() = "hint #0x7d");
insn!(
    /// IC IALLUIS + DSB ISH + ISB: every CPU's instruction caches forget their lines, so code
    /// just written (and cleaned to the point of coherency) is fetched fresh.
    pub fn icache_invalidate_all() = "ic ialluis\ndsb ish\nisb");
insn!(
    /// TLBI VMALLE1 + DSB NSH + ISB: this CPU forgets its EL1&0 translations.
    pub fn tlbi_vmalle1() = "tlbi vmalle1\ndsb nsh\nisb");
insn!(
    /// TLBI VMALLS12E1 + DSB NSH + ISB: this CPU forgets stage-1 and stage-2 translations of
    /// the current VMID (EL2 only).
    pub fn tlbi_vmalls12e1() = "tlbi vmalls12e1\ndsb nsh\nisb");
insn!(
    /// DSB ISHST + TLBI VMALLS12E1IS + DSB ISH + ISB: every CPU forgets stage-1 and stage-2
    /// translations of the current VMID (EL2 only), after earlier table writes are visible.
    pub fn tlbi_vmalls12e1is() = "dsb ishst\ntlbi vmalls12e1is\ndsb ish\nisb");
insn!(
    /// TLBI ALLE2 + DSB NSH + ISB: this CPU forgets its EL2 translations (EL2 only).
    pub fn tlbi_alle2() = "tlbi alle2\ndsb nsh\nisb");

/// The smallest data cache line of any cache this CPU maintains (4 << CTR_EL0.DminLine
/// bytes): maintenance by VA steps by this, so it touches every line. (Host tests read
/// arm-sysregs' fake CTR_EL0.)
pub fn dcache_line() -> u64 {
    #[cfg(any(target_arch = "aarch64", test))]
    {
        4 << arm_sysregs::el0::accessors::read_ctr_el0().dminline()
    }
    #[cfg(not(any(target_arch = "aarch64", test)))]
    64
}

/// Every data-cache line address in `[base, base + len)`, in order.
fn lines(base: u64, len: u64) -> impl Iterator<Item = u64> {
    let line = dcache_line();
    let end = base.saturating_add(len);
    let first = base & !(line - 1);
    (0..)
        .map(move |i| first + i * line)
        .take_while(move |a| *a < end)
}

/// DC CVAC over `[base, base + len)`, then DSB SY: the range's dirty lines reach the point of
/// coherency, for a reader with its MMU or caches off. Memory contents do not change.
pub fn clean_to_poc(base: u64, len: u64) {
    for _a in lines(base, len) {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: DC CVAC writes a dirty line back; it changes no memory contents and faults
        // only on an unmapped VA, which the caller's range is not (it names memory it holds).
        unsafe {
            core::arch::asm!("dc cvac, {}", in(reg) _a, options(nostack, preserves_flags))
        };
    }
    dsb_sy();
}

/// DC IVAC over `[base, base + len)`, then DSB SY: the range's lines are discarded, so later
/// reads see what a non-coherent writer (the MMU-off boot path, a device) put in memory.
///
/// # Safety
/// Dirty data in the range is lost: nothing may have written it through the cache that must
/// survive, and `base`/`len` must be line-aligned or the caller must own the partial lines at
/// both ends.
pub unsafe fn invalidate(base: u64, len: u64) {
    for _a in lines(base, len) {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: forwarded from the caller (losing dirty lines in the range is allowed).
        unsafe {
            core::arch::asm!("dc ivac, {}", in(reg) _a, options(nostack, preserves_flags))
        };
    }
    dsb_sy();
}

/// The DAIF bits as they were, to give back to [`irq_restore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Daif(u64);

/// Masks IRQs on this CPU (DAIFSet #2) and returns what DAIF was.
#[inline(always)]
pub fn irq_save() -> Daif {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reads DAIF and masks IRQs on this CPU; masking only delays interrupts. Not
        // `nomem`: the compiler must not move the critical section's memory accesses (a lock
        // taken after this) to before the mask.
        unsafe {
            core::arch::asm!("mrs {}, daif", "msr daifset, #2", out(reg) v,
                options(nostack, preserves_flags))
        };
        Daif(v)
    }
    #[cfg(not(target_arch = "aarch64"))]
    Daif(0)
}

/// Puts DAIF back as [`irq_save`] found it.
#[inline(always)]
pub fn irq_restore(d: Daif) {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: DAIF returns to a value this CPU had before (`Daif` comes only from `irq_save`).
    // Not `nomem`, like `irq_save`: the critical section's accesses stay before it.
    unsafe {
        core::arch::asm!("msr daif, {}", in(reg) d.0, options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    let _ = d;
}

/// Unmasks IRQs on this CPU (DAIFClr #2); the caller has installed its vectors and GIC.
#[inline(always)]
pub fn irq_enable() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: IRQs are taken through the vectors the image installed before calling this.
    unsafe {
        core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags))
    };
}

/// Masks every exception this CPU can mask (DAIFSet #0xf): the failure and halt paths.
#[inline(always)]
pub fn mask_all() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: masking only delays asynchronous exceptions.
    unsafe {
        core::arch::asm!(
            "msr daifset, #0xf",
            options(nomem, nostack, preserves_flags)
        )
    };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use arm_sysregs::el0::fake::SYSREGS;
    use arm_sysregs::el0::registers::CtrEl0;

    #[test]
    fn the_line_size_comes_from_ctr_el0() {
        SYSREGS.lock().unwrap().ctr_el0 = CtrEl0::empty().with_dminline(4);
        assert_eq!(dcache_line(), 64);
        // Every line the range touches, from the one holding its first byte.
        let l: std::vec::Vec<u64> = lines(0x1030, 0x51).collect();
        assert_eq!(l, [0x1000, 0x1040, 0x1080]);
        assert_eq!(lines(0x1000, 0).count(), 0);
        SYSREGS.lock().unwrap().ctr_el0 = CtrEl0::empty().with_dminline(3);
        assert_eq!(
            dcache_line(),
            32,
            "a CPU with 32-byte lines is stepped by 32"
        );
        SYSREGS.lock().unwrap().reset();
    }
}

/// Reads `buf.len()` bytes at physical-or-virtual address `addr` with volatile accesses,
/// eight bytes at a time between the unaligned ends (memory another agent writes
/// concurrently: each byte is read exactly once, none is cached in a register across reads).
///
/// # Safety
/// `[addr, addr + buf.len())` must be mapped, readable memory (RAM, not device registers
/// with read side effects) for the duration of the call.
pub unsafe fn read_shared(addr: usize, buf: &mut [u8]) {
    if buf.len() < 16 {
        // A register-sized access: no word loop to set up.
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: a byte inside the range the caller vouched for.
            *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
        }
        return;
    }
    let head = (addr.next_multiple_of(8) - addr).min(buf.len());
    let (h, rest) = buf.split_at_mut(head);
    for (i, b) in h.iter_mut().enumerate() {
        // SAFETY: a byte inside the range the caller vouched for.
        *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
    }
    let mut words = rest.chunks_exact_mut(8);
    let mut a = addr + head;
    for w in &mut words {
        // SAFETY: an aligned word inside the range the caller vouched for.
        let v = unsafe { core::ptr::read_volatile(a as *const u64) };
        w.copy_from_slice(&v.to_ne_bytes());
        a += 8;
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        // SAFETY: a byte inside the range the caller vouched for.
        *b = unsafe { core::ptr::read_volatile((a + i) as *const u8) };
    }
}

/// Writes `data` at `addr` with volatile accesses, eight bytes at a time between the
/// unaligned ends.
///
/// # Safety
/// `[addr, addr + data.len())` must be mapped, writable memory that no Rust reference
/// covers, for the duration of the call.
pub unsafe fn write_shared(addr: usize, data: &[u8]) {
    if data.len() < 16 {
        for (i, b) in data.iter().enumerate() {
            // SAFETY: a byte inside the range the caller vouched for.
            unsafe { core::ptr::write_volatile((addr + i) as *mut u8, *b) };
        }
        return;
    }
    let head = (addr.next_multiple_of(8) - addr).min(data.len());
    let (h, rest) = data.split_at(head);
    for (i, b) in h.iter().enumerate() {
        // SAFETY: a byte inside the range the caller vouched for.
        unsafe { core::ptr::write_volatile((addr + i) as *mut u8, *b) };
    }
    let mut words = rest.chunks_exact(8);
    let mut a = addr + head;
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // SAFETY: an aligned word inside the range the caller vouched for.
        unsafe { core::ptr::write_volatile(a as *mut u64, v) };
        a += 8;
    }
    for (i, b) in words.remainder().iter().enumerate() {
        // SAFETY: a byte inside the range the caller vouched for.
        unsafe { core::ptr::write_volatile((a + i) as *mut u8, *b) };
    }
}

#[cfg(test)]
mod shared_tests {
    extern crate std;
    use super::*;

    #[test]
    fn shared_copies_move_every_byte_at_any_alignment() {
        let mut src = [0u8; 64];
        for (i, b) in src.iter_mut().enumerate() {
            *b = i as u8 ^ 0xa5;
        }
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 17, 40] {
                let mut out = [0u8; 48];
                // SAFETY: both ranges are inside the local arrays.
                unsafe { read_shared(src.as_ptr() as usize + start, &mut out[..len]) };
                assert_eq!(&out[..len], &src[start..start + len]);
                let mut dst = [0u8; 64];
                // SAFETY: as above.
                unsafe { write_shared(dst.as_mut_ptr() as usize + start, &src[..len]) };
                assert_eq!(&dst[start..start + len], &src[..len]);
                assert!(dst[..start].iter().all(|&b| b == 0));
                assert!(dst[start + len..].iter().all(|&b| b == 0));
            }
        }
    }
}

/// Reads the 32-bit word at physical address `addr` with one `ldr` — for device memory that
/// may sit at address 0 (QEMU virt's flash0), where a Rust pointer read would be a null
/// dereference the compiler may assume never happens.
///
/// # Safety
/// `addr` must be 4-byte aligned and name mapped memory or a device register that may be
/// read (with whatever side effect the device gives a read).
#[inline(always)]
pub unsafe fn read32_at(addr: usize) -> u32 {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u32;
        // SAFETY: forwarded from the caller: an aligned, readable address; `ldr` touches only it.
        unsafe {
            core::arch::asm!("ldr {v:w}, [{a}]", v = out(reg) v, a = in(reg) addr,
                options(nostack, preserves_flags, readonly))
        };
        v
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        // SAFETY: forwarded from the caller (host builds never pass address 0).
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }
}

/// Writes the 32-bit word at physical address `addr` with one `str` (see [`read32_at`]).
///
/// # Safety
/// `addr` must be 4-byte aligned and name mapped memory or a device register that may be
/// written, which no Rust reference covers.
#[inline(always)]
pub unsafe fn write32_at(addr: usize, v: u32) {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: forwarded from the caller: an aligned, writable address; `str` touches only it.
    unsafe {
        core::arch::asm!("str {v:w}, [{a}]", v = in(reg) v, a = in(reg) addr,
            options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: forwarded from the caller (host builds never pass address 0).
    unsafe {
        core::ptr::write_volatile(addr as *mut u32, v)
    };
}
