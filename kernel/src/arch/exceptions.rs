//! EL1 exception vectors, the IRQ path, and the fatal-report path.
//!
//! Every vector saves the full register file (x0–x30, ELR, SPSR) into a [`Frame`] on the
//! current stack and calls [`exception_handler`]. IRQs go to the GIC; everything else is
//! unexpected in this kernel and ends the boot: a decoded report (class by name, ESR, FAR, ELR,
//! the EL, the offset in the image for `addr2line`) and `@event done status=fail
//! reason=exception:<class>` on the lock-free console path, then power off.

use crate::console::{self, Emergency};
use core::arch::global_asm;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use trapframe::Frame;

global_asm!(
    include_str!("../../../lib/trapframe/src/frame.S"),
    r#"
.section .text.vectors, "ax"
.balign 0x800
.global exception_vectors
exception_vectors:
    trap_table exception_handler, exception_handler, el1
"#,
);

/// Vector index → (taken from, type).
const VECTOR_NAMES: [&str; 16] = [
    "current-el-sp0-sync",
    "current-el-sp0-irq",
    "current-el-sp0-fiq",
    "current-el-sp0-serror",
    "current-el-spx-sync",
    "current-el-spx-irq",
    "current-el-spx-fiq",
    "current-el-spx-serror",
    "lower-el-a64-sync",
    "lower-el-a64-irq",
    "lower-el-a64-fiq",
    "lower-el-a64-serror",
    "lower-el-a32-sync",
    "lower-el-a32-irq",
    "lower-el-a32-fiq",
    "lower-el-a32-serror",
];
use trapframe::vector::{IRQ_CURRENT_SPX, SYNC_CURRENT_SPX};

/// Per CPU: the PC of the one access that may fault (0: none armed) and where it resumes,
/// and what the fault was. A fault at any other PC, or on another CPU, is not excused.
#[repr(C)]
struct Fixup {
    pc: AtomicU64,
    resume: AtomicU64,
    esr: AtomicU64,
}
const MAX_CPUS: usize = 64;
static FIXUP: [Fixup; MAX_CPUS] = [const {
    Fixup {
        pc: AtomicU64::new(0),
        resume: AtomicU64::new(0),
        esr: AtomicU64::new(0),
    }
}; MAX_CPUS];

fn fixup_slot() -> &'static Fixup {
    &FIXUP[crate::smp::this_cpu().min(MAX_CPUS - 1)]
}

#[unsafe(no_mangle)]
extern "C" fn exception_handler(frame: &mut Frame, kind: u64) {
    if kind == trapframe::vector::SYNC_LOWER_A64 {
        // A process at EL0: a syscall, or its fault (crate::user ends it).
        crate::user::trap(frame);
        return;
    }
    if kind == trapframe::vector::IRQ_LOWER_A64 {
        // A process at EL0 was interrupted (the tick may take the CPU from it).
        crate::user::irq(frame);
        return;
    }
    if kind == IRQ_CURRENT_SPX {
        handle_irq();
        return;
    }
    let slot = fixup_slot();
    let pc = slot.pc.load(Ordering::SeqCst);
    if kind == SYNC_CURRENT_SPX && pc != 0 && pc == frame.elr {
        // The armed access faulted (a probe): note it and resume at its recovery point.
        slot.pc.store(0, Ordering::SeqCst);
        slot.esr.store(read_esr_far().0, Ordering::SeqCst);
        frame.elr = slot.resume.load(Ordering::SeqCst);
        return;
    }
    if kind == SYNC_CURRENT_SPX {
        // A copy to or from a process's memory faulted on a user address: the copy fails
        // with EFAULT (crate::user::uaccess), the kernel goes on.
        let (esr, far) = read_esr_far();
        if esr >> 26 == 0x25
            && let Some(resume) = crate::user::uaccess::fixup(frame.elr, far)
        {
            frame.elr = resume;
            return;
        }
    }
    unexpected(frame, kind)
}

/// Handles the interrupts pending on this CPU (from the IRQ vector, IRQs masked).
pub fn handle_irq() {
    if !crate::arch::gic::handle_irq() {
        crate::arch::bcm2836::handle_irq();
    }
}

#[cfg(feature = "test-hooks")]
/// Reads 4 bytes at `addr` (a width every device register answers: the TPM TIS refuses wider
/// reads), expecting that it may fault: `Err(ESR)` if it did.
/// Used only by probes that prove memory is out of reach.
pub fn probe_read(addr: u64) -> Result<u64, u64> {
    let val: u64;
    let faulted: u64;
    let slot = fixup_slot();
    // SAFETY: the load at label 1 may fault; this CPU's fixup slot names exactly that PC and
    // the recovery point (label 2), so the handler resumes there instead of failing the boot.
    // The address is deliberately not known to be mapped; nothing is written but the slot
    // (`Fixup` is repr(C): pc at +0, resume at +8).
    unsafe {
        core::arch::asm!(
            "adr {tmp}, 1f",
            "str {tmp}, [{slot}]",
            "adr {tmp}, 2f",
            "str {tmp}, [{slot}, #8]",
            "mov {flt}, #0",
            "1:",
            "ldr {val:w}, [{addr}]",
            "b 3f",
            "2:",
            "mov {flt}, #1",
            "mov {val}, #0",
            "3:",
            "str xzr, [{slot}]",
            tmp = out(reg) _,
            slot = in(reg) slot as *const Fixup,
            addr = in(reg) addr,
            val = out(reg) val,
            flt = out(reg) faulted,
            options(nostack)
        )
    };
    if faulted == 0 {
        Ok(val)
    } else {
        Err(slot.esr.load(Ordering::SeqCst))
    }
}

pub fn read_esr_far() -> (u64, u64) {
    use arm_sysregs::el1::accessors::{read_esr_el1, read_far_el1};
    (read_esr_el1().bits(), read_far_el1().bits())
}

/// Set once the kernel is failing, so a fault inside the failure path does not recurse.
static FAILING: AtomicBool = AtomicBool::new(false);

fn unexpected(frame: &Frame, kind: u64) -> ! {
    let (esr, far) = read_esr_far();
    let syn = esr::Syndrome::new(esr);
    let vector = VECTOR_NAMES.get(kind as usize).copied().unwrap_or("?");
    let (image_start, ..) = crate::mm::image_layout();
    if FAILING.swap(true, Ordering::SeqCst) {
        halt();
    }
    let _ = writeln!(
        Emergency,
        "\n*** unexpected exception: {} ({vector}) ESR={esr:#x} FAR={far:#x} ELR={:#x} (image+{:#x}) EL1 cpu {}",
        syn.class_name(),
        frame.elr,
        frame.elr.wrapping_sub(image_start),
        crate::smp::this_cpu(),
    );
    if let Some(fs) = syn.fault_status() {
        let _ = write!(Emergency, "    {fs}");
        if let Some(level) = syn.fault_level() {
            let _ = write!(Emergency, " at level {level}");
        }
        let _ = writeln!(
            Emergency,
            " on {}",
            if syn.is_write() { "write" } else { "read" }
        );
    }
    console::emit_emergency(catena_event::Kind::Fault, |e| {
        let e = e
            .str("class", syn.class_name())
            .str("vector", vector)
            .hex("esr", esr)
            .hex("far", far)
            .hex("elr", frame.elr)
            .hex("elr_offset", frame.elr.wrapping_sub(image_start))
            .u64("el", 1);
        match syn.fault_status() {
            Some(fs) => e.str("fault", fs),
            None => e,
        }
    });
    let mut reason = heapless_reason();
    let _ = write!(reason, "exception:{}", syn.class_name());
    finish_fail(reason.as_str())
}

/// A small fixed buffer for a failure reason (the heap may be what failed).
struct Reason {
    buf: [u8; 64],
    len: usize,
}

impl Reason {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Reason {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn heapless_reason() -> Reason {
    Reason {
        buf: [0; 64],
        len: 0,
    }
}

/// Ends the boot as failed: the `done` event, then power off.
pub fn finish_fail(reason: &str) -> ! {
    console::emit_emergency(catena_event::Kind::Done, |e| {
        e.str("status", "fail").str("reason", reason)
    });
    crate::init::boot::power_off()
}

/// The panic path: report on the lock-free console and fail the boot.
pub fn fatal_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::mask_all();
    if FAILING.swap(true, Ordering::SeqCst) {
        halt();
    }
    let mut msg = heapless_reason();
    let _ = write!(msg, "{}", info.message());
    let _ = writeln!(Emergency, "\n*** kernel panic: {info}");
    console::emit_emergency(catena_event::Kind::Panic, |e| {
        let e = e.str("msg", msg.as_str());
        match info.location() {
            Some(l) => e.str("file", l.file()).u64("line", u64::from(l.line())),
            None => e,
        }
    });
    finish_fail("panic")
}

/// Stops this CPU for good.
pub fn halt() -> ! {
    loop {
        arch::mask_all();
        arch::wfe();
    }
}

/// Enables IRQs on this CPU.
pub fn irq_enable() {
    // Handlers are installed: VBAR_EL1 is set in entry, the GIC in the irqchip initcall.
    arch::irq_enable();
}
