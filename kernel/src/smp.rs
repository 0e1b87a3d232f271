//! Secondary CPUs: started with PSCI CPU_ON, parked after they report in.

use crate::arch::entry::SecondaryBoot;
use crate::arch::{gic, time};
use crate::{console, mm};
use alloc::boxed::Box;
use alloc::vec;
use arm_sysregs::el1::accessors::{read_mpidr_el1, read_tpidr_el1, write_tpidr_el1};
use arm_sysregs::el1::registers::TpidrEl1;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dtinfo::Range;

/// Per-CPU stack size.
const STACK: usize = 64 * 1024;
/// Bit per CPU index that came online.
static ONLINE: AtomicU64 = AtomicU64::new(1);

unsafe extern "C" {
    fn secondary_entry();
    fn spin_table_entry();
}

/// The spin-table CPU being released without a hyp (see `entry.rs` `spin_table_entry`): its
/// MPIDR (`u64::MAX`: none) and its boot block. Read with the MMU off.
#[unsafe(no_mangle)]
static SPIN_MPIDR: AtomicU64 = AtomicU64::new(u64::MAX);
#[unsafe(no_mangle)]
static SPIN_CTX: AtomicU64 = AtomicU64::new(0);

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// PSCI CPU_ON (trapped and rewritten by the hyp once it is installed).
    Psci,
    /// Spin-table: the entry written to this `cpu-release-addr`, then SEV.
    SpinTable(u64),
}

/// This CPU's linear index (TPIDR_EL1, set at bring-up).
pub fn this_cpu() -> usize {
    read_tpidr_el1().bits() as usize
}

/// Sets this CPU's linear index.
pub fn set_this_cpu(cpu: usize) {
    // SAFETY: TPIDR_EL1 is the kernel's per-CPU index register; nothing else reads it as
    // anything but this CPU's index.
    unsafe { write_tpidr_el1(TpidrEl1::from_bits_retain(cpu as u64)) };
}

/// This CPU's MPIDR affinity bits.
pub fn mpidr() -> u64 {
    read_mpidr_el1().bits() & 0xff_00ff_ffff
}

/// Result of bringing up one CPU.
pub enum Started {
    /// It reported in.
    Online,
    /// PSCI refused CPU_ON.
    Refused(&'static str),
    /// CPU_ON succeeded but the CPU never reported in.
    Timeout,
}

/// Starts CPU `index` with `mpidr` the way `how` says and waits (bounded) for it to report in.
pub fn start(index: usize, mpidr: u64, how: Method) -> Started {
    let Some(mmu) = mm::config() else {
        return Started::Refused("no kernel page table yet");
    };
    if index >= 64 {
        return Started::Refused("more than 64 CPUs");
    }
    let stack = vec![0u8; STACK].leak();
    let boot = Box::leak(Box::new(SecondaryBoot {
        stack_top: stack.as_ptr_range().end as u64 & !0xf,
        ttbr0: mmu.ttbr0,
        tcr: mmu.tcr,
        mair: mmu.mair,
        sctlr: mmu.sctlr,
        cpu: index as u64,
        mpidr,
    }));
    let ctx = boot as *const SecondaryBoot as u64;
    // The secondary reads its boot block with the MMU (and caches) off.
    mm::dcache_clean(Range {
        base: ctx,
        size: size_of::<SecondaryBoot>() as u64,
    });
    let entry = secondary_entry as *const () as u64;
    match how {
        Method::Psci => {
            if let Err(e) = crate::arch::psci::cpu_on(mpidr, entry, ctx) {
                return Started::Refused(match e {
                    smccc::psci::error::Error::AlreadyOn => "already-on",
                    smccc::psci::error::Error::InvalidParameters => "invalid-parameters",
                    smccc::psci::error::Error::NotSupported => "not-supported",
                    _ => "psci-error",
                });
            }
        }
        Method::SpinTable(release) => {
            // Under the hyp, the CPU enters the hyp first (it finds its parameters by MPIDR);
            // without one, our own trampoline hands it its boot block.
            let target = if crate::hyp::installed() {
                let r = crate::hyp::hvc_call3(hyp_abi::Hvc::SpinCpu.id(), mpidr, entry, ctx);
                if hyp_abi::HvcError::check(r[0]).is_err() {
                    return Started::Refused("hyp-refused");
                }
                r[1]
            } else {
                SPIN_CTX.store(ctx, Ordering::Release);
                SPIN_MPIDR.store(mpidr, Ordering::Release);
                for v in [&SPIN_CTX, &SPIN_MPIDR] {
                    mm::dcache_clean(Range {
                        base: v.as_ptr() as u64,
                        size: 8,
                    });
                }
                spin_table_entry as *const () as u64
            };
            // SAFETY: `release` is the DT's cpu-release-addr for this CPU, checked by
            // `Platform::spin_release_addr` (8-byte aligned, in reserved RAM the kernel never
            // allocates, identity mapped); the board's spin loop polls it with its MMU off, so
            // the line is cleaned to the point of coherency before the event that wakes it.
            unsafe { core::ptr::write_volatile(release as *mut u64, target) };
            mm::dcache_clean(Range {
                base: release,
                size: 8,
            });
            arch::dsb_sev();
        }
    }
    let bit = 1u64 << index;
    if time::wait_until(1_000_000, || ONLINE.load(Ordering::Acquire) & bit != 0) {
        Started::Online
    } else {
        Started::Timeout
    }
}

/// How many CPUs are online.
pub fn online_count() -> u32 {
    ONLINE.load(Ordering::Acquire).count_ones()
}

/// Rust entry of a secondary CPU: MMU on, at EL1, on its own stack.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(boot: &SecondaryBoot, entry_el: u64) -> ! {
    let cpu = boot.cpu as usize;
    set_this_cpu(cpu);
    gic::init_secondary(cpu);
    console::emit(catena_event::Kind::Cpu, |e| {
        e.u64("id", cpu as u64)
            .hex("mpidr", mpidr())
            .u64("el", entry_el)
            .str("state", "online")
    });
    ONLINE.fetch_or(1 << cpu, Ordering::Release);
    loop {
        // Parked: interrupts stay masked. Two kinds of work: turning on the hyp's host stage-2
        // on this CPU when the boot CPU finalises (Linux runs __pkvm_prot_finalize on each
        // CPU), and a function another CPU asked this one to run ([`run_on`]).
        if FINALISE_REQ.load(Ordering::Acquire)
            && FINALISE_TRIED.load(Ordering::Acquire) & (1 << cpu) == 0
        {
            let r = crate::hyp::hvc_call(hyp_abi::Hvc::FinaliseCpu.id(), 0)[0];
            match hyp_abi::HvcError::check(r) {
                Ok(()) => {
                    FINALISED_CPUS.fetch_or(1 << cpu, Ordering::Release);
                }
                Err(e) => console::emit(catena_event::Kind::Cpu, |w| {
                    w.u64("id", cpu as u64)
                        .str("state", "finalise-refused")
                        .str("error", e.map_or("unknown", hyp_abi::HvcError::name))
                }),
            }
            FINALISE_TRIED.fetch_or(1 << cpu, Ordering::Release);
        }
        let work = WORK.lock()[cpu].take();
        if let Some(f) = work {
            f();
            WORK_DONE.fetch_or(1 << cpu, Ordering::Release);
        }
        arch::wfe();
    }
}

/// Most CPUs the kernel brings up (the width of its CPU masks).
const MAX_CPUS: usize = 64;
/// A function each parked CPU is asked to run, and which CPUs finished theirs.
/// Per CPU: the function it is asked to run, if any.
type Mailboxes = [Option<fn()>; MAX_CPUS];
static WORK: spin::Mutex<Mailboxes> = spin::Mutex::new([None; MAX_CPUS]);
static WORK_DONE: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "test-hooks")]
/// Runs `f` on parked CPU `cpu` and waits (bounded, 1 s) for it to finish.
pub fn run_on(cpu: usize, f: fn()) -> bool {
    if cpu >= MAX_CPUS || ONLINE.load(Ordering::Acquire) & (1 << cpu) == 0 || cpu == this_cpu() {
        return false;
    }
    WORK_DONE.fetch_and(!(1 << cpu), Ordering::AcqRel);
    WORK.lock()[cpu] = Some(f);
    arch::dsb_sev();
    time::wait_until(1_000_000, || {
        WORK_DONE.load(Ordering::Acquire) & (1 << cpu) != 0
    })
}

#[cfg(feature = "test-hooks")]
/// The online CPUs' indices.
pub fn online_cpus() -> alloc::vec::Vec<usize> {
    let m = ONLINE.load(Ordering::Acquire);
    (0..MAX_CPUS).filter(|i| m & (1 << i) != 0).collect()
}

static FINALISE_REQ: AtomicBool = AtomicBool::new(false);
/// CPUs that asked the hyp for the stage-2, and those the hyp gave it to.
static FINALISE_TRIED: AtomicU64 = AtomicU64::new(0);
static FINALISED_CPUS: AtomicU64 = AtomicU64::new(0);

/// After the hyp finalised on this CPU: ask every parked CPU to do the same, and wait (bounded)
/// until each online CPU has asked. Returns how many CPUs the hyp accepted (this one
/// included); the hyp's own state says whether that is all of them.
pub fn finalise_secondaries() -> u32 {
    let me = 1 << this_cpu();
    FINALISED_CPUS.fetch_or(me, Ordering::Release);
    FINALISE_TRIED.fetch_or(me, Ordering::Release);
    FINALISE_REQ.store(true, Ordering::Release);
    arch::dsb_sev();
    let online = ONLINE.load(Ordering::Acquire);
    time::wait_until(1_000_000, || {
        FINALISE_TRIED.load(Ordering::Acquire) & online == online
    });
    (FINALISED_CPUS.load(Ordering::Acquire) & online).count_ones()
}
