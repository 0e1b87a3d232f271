//! The kernel's side of the hyp: install (core), finalise (device_sync), probes (late).
//!
//! Linux's pKVM is installed by `kvm_arm_init` and finalised by `finalize_pkvm`; here the same
//! two steps are explicit initcalls, and every later piece that cares (the FF-A bus) declares
//! it. Entered at EL1 there is no EL2 to install into: the hyp is absent and says why.

use crate::boot::boot;
use crate::{console, heap, mm, smp};
use catena_hyp::{Config, Hvc, HvcError, InstallParams, asm::HVC_STUB_INSTALL};
use core::sync::atomic::{AtomicBool, Ordering};
use dtinfo::Range;
use initcall::InitError;

/// The hyp's pool (its page tables and allocations).
const POOL_SIZE: usize = 4 << 20;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static FINALISED: AtomicBool = AtomicBool::new(false);

/// Whether the hyp is installed (SMCs trap to it).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Whether the hyp is finalised (host stage-2 on).
pub fn finalised() -> bool {
    FINALISED.load(Ordering::Acquire)
}

/// A hypercall (SMCCC HVC64): x0 = the ID, x1 the argument; x0..x3 of the reply.
pub fn hvc_call(x0: u64, x1: u64) -> [u64; 4] {
    let mut args = [0u64; 17];
    args[0] = x1;
    // Hypercall IDs are SMCCC function IDs: 32 bits (lib/hyp-abi keeps them there).
    let r = smccc::hvc64(x0 as u32, args);
    [r[0], r[1], r[2], r[3]]
}

/// HCR_EL2 for the host: RW (EL1 is AArch64) and TSC (every host SMC traps to the hyp).
const HCR_HOST: u64 = (1 << 31) | (1 << 19);

fn install() -> Result<(), &'static str> {
    let p = &boot().platform;
    let layout =
        core::alloc::Layout::from_size_align(POOL_SIZE, 2 << 20).map_err(|_| "pool layout")?;
    // SAFETY: a fresh allocation from the kernel heap, given to the hyp and never freed.
    let pool = unsafe { alloc::alloc::alloc(layout) };
    if pool.is_null() {
        return Err("no memory for the hyp pool");
    }
    let pool = Range {
        base: pool as u64,
        size: POOL_SIZE as u64,
    };
    // SAFETY: `pool` was just taken from the kernel heap for good.
    unsafe { heap::init_hyp_pool(pool) };
    let hyp = mm::hyp_range();
    let mmu = mm::hyp_stage1(console::uart_base(), &[hyp, pool])?;
    unsafe extern "C" {
        fn hyp_vectors();
    }
    let params = InstallParams {
        vbar: hyp_vectors as *const () as u64,
        ttbr0: mmu.ttbr0,
        tcr: mmu.tcr,
        mair: mmu.mair,
        sctlr: mmu.sctlr,
        hcr: HCR_HOST,
        sp: catena_hyp::stack_top(smp::this_cpu()),
        ..InstallParams::default()
    };
    // The stub reads the parameters with the EL2 MMU off.
    mm::dcache_clean(Range {
        base: &params as *const _ as u64,
        size: size_of::<InstallParams>() as u64,
    });
    if hvc_call(HVC_STUB_INSTALL, &params as *const _ as u64)[0] != 0 {
        return Err("the EL2 stub refused the install");
    }
    INSTALLED.store(true, Ordering::Release);
    let (tx, rx) = catena_hyp::ffa_buffers();
    let (start, _, rodata_end, _) = mm::image_layout();
    // Built in the hyp pool: the hyp's stage-1 maps nothing of the kernel's heap.
    let cfg = heap::with_hyp_pool(|| {
        // What the host may touch after finalise: lib/hyp-policy, host-tested on the DT
        // fixtures.
        let hyp_policy::HostView {
            mmio: host_mmio,
            secure,
        } = hyp_policy::host_view(p);
        alloc::boxed::Box::new(Config {
            uart: console::uart_base().unwrap_or(0) as u64,
            ram: p.memory.iter().map(|r| (r.base, r.size)).collect(),
            hyp: alloc::vec![(hyp.base, hyp.size), (pool.base, pool.size)],
            kernel_ro: (start, rodata_end - start),
            host_mmio,
            secure,
            cpus: p.cpus.iter().map(|c| c.mpidr).collect(),
            ffa_tx: tx,
            ffa_rx: rx,
            hcr: HCR_HOST,
            install: params,
            stage1: mmu.map,
        })
    });
    let r = hvc_call(Hvc::Init.id(), &*cfg as *const Config as u64)[0];
    drop(cfg);
    HvcError::check(r).map_err(|e| {
        log::error!("hyp Init: {}", e.map_or("unknown error", HvcError::name));
        "hyp init refused"
    })
}

/// `core` initcall: install the hyp when entered at EL2.
pub fn hyp_install() -> Result<(), InitError> {
    if crate::boot::entry_el() != 2 {
        console::emit(catena_event::Kind::Hyp, |e| {
            e.str("state", "absent").str("reason", "entered-at-el1")
        });
        return Ok(());
    }
    install().map_err(|e| {
        log::error!("hyp install: {e}");
        InitError::fatal("hyp-install")
    })
}

/// `device_sync` initcall: finalise (host stage-2 on, on every CPU). All or nothing: the hyp
/// calls itself finalised only once every CPU it started has the stage-2 on, and a boot where
/// that did not happen stops here.
pub fn hyp_finalise() -> Result<(), InitError> {
    if !installed() {
        return Ok(());
    }
    let r = hvc_call(Hvc::Finalise.id(), 0)[0];
    if let Err(e) = HvcError::check(r) {
        log::error!(
            "hyp Finalise: {}",
            e.map_or("unknown error", HvcError::name)
        );
        return Err(InitError::fatal("hyp-finalise"));
    }
    let asked = smp::finalise_secondaries();
    // The hyp's word, not ours: finalised, and which CPUs have the stage-2.
    let [_, _, done, on] = hvc_call(Hvc::State.id(), 0);
    if done != 1 {
        console::emit(catena_event::Kind::Hyp, |e| {
            e.str("state", "finalise-incomplete")
                .hex("stage2_on", on)
                .u64("cpus_asked", u64::from(asked))
        });
        return Err(InitError::fatal("hyp-finalise-incomplete"));
    }
    FINALISED.store(true, Ordering::Release);
    log::info!(
        "hyp finalised; stage-2 on {} CPU(s) (mask {on:#x})",
        on.count_ones()
    );
    Ok(())
}
