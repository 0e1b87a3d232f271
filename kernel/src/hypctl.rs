//! The kernel's side of the hyp: install (core), finalise (device_sync), probes (late).
//!
//! Linux's pKVM is installed by `kvm_arm_init` and finalised by `finalize_pkvm`; here the same
//! two steps are explicit initcalls, and every later piece that cares (the FF-A bus) declares
//! it. Entered at EL1 there is no EL2 to install into: the hyp is absent and says why.

use crate::boot::{boot, params};
use crate::{console, exceptions, ffa, heap, mm, smp};
use alloc::format;
use alloc::vec::Vec;
use catena_hyp::{Config, Hvc, HvcError, InstallParams, asm::HVC_STUB_INSTALL};
use core::arch::asm;
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

/// A hypercall: x0..x3 in, x0..x3 out.
pub fn hvc_call(x0: u64, x1: u64) -> [u64; 4] {
    let (r0, r1, r2, r3): (u64, u64, u64, u64);
    // SAFETY: HVC traps to the hyp (or its boot stub); the hyp changes no kernel memory and
    // follows SMCCC register use (results in x0-x3, x4-x17 may be clobbered).
    unsafe {
        asm!("hvc #0",
             inout("x0") x0 => r0, inout("x1") x1 => r1, out("x2") r2, out("x3") r3,
             clobber_abi("C"), options(nostack))
    };
    [r0, r1, r2, r3]
}

/// HCR_EL2 for the host: RW (EL1 is AArch64) and TSC (every host SMC traps to the hyp).
const HCR_HOST: u64 = (1 << 31) | (1 << 19);

/// (base, size) ranges.
type Ranges = Vec<(u64, u64)>;

/// The MMIO the host may use, and the regions only the secure world (or the hyp) may.
fn host_mmio(p: &dtinfo::Platform) -> (Ranges, Ranges) {
    let mut mmio = Vec::new();
    // Secure-only memory, and RAM the DT reserves (/memreserve/, /reserved-memory): neither is
    // the host's to use after finalise.
    let mut secure: Vec<(u64, u64)> = p
        .secure_memory
        .iter()
        .chain(&p.reserved)
        .map(|r| (r.base, r.size))
        .collect();
    for d in &p.devices {
        // Devices reserved for the secure world or the hyp: the TPM's MMIO (the firmware's
        // TPM service owns it) and anything the DT gives the secure world only.
        let hidden = d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio")
            || (!d.enabled && d.secure_enabled);
        for r in &d.regions {
            if hidden {
                secure.push((r.base, r.size));
            } else if d.enabled
                && !p
                    .memory
                    .iter()
                    .any(|m| r.base < m.end() && m.base < r.end())
            {
                mmio.push((r.base, r.size));
            }
        }
    }
    match p.gic {
        Some(dtinfo::Gic::V3 { dist, redist }) => {
            mmio.extend([(dist.base, dist.size), (redist.base, redist.size)])
        }
        Some(dtinfo::Gic::V2 { dist, cpu }) => {
            mmio.extend([(dist.base, dist.size), (cpu.base, cpu.size)])
        }
        None => {}
    }
    (mmio, secure)
}

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
        let (host_mmio, secure) = host_mmio(p);
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
        console::emit("hyp", |e| {
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
        console::emit("hyp", |e| {
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

fn probe_event(target: &str, cpu: u64, result: &str, detail: &str) {
    console::emit("hyp-probe", |e| {
        e.str("target", target)
            .u64("cpu", cpu)
            .str("result", result)
            .str("detail", detail)
    });
}

/// Who stopped a probe's access: the hyp's stage-2 (it counted a fault on this CPU at this
/// address), or something else (the bus: secure memory answers a non-secure access with an
/// external abort whether or not the hyp unmapped it).
fn who_stopped(addr: u64, faults_before: u64) -> &'static str {
    let [_, faults, ipa, _] = hvc_call(Hvc::LastFault.id(), 0);
    if faults > faults_before && ipa & !0xfff == addr & !0xfff {
        "stage2-fault"
    } else {
        "bus-fault"
    }
}

/// Reads `addr` on this CPU; the result names who stopped it (`stage2-fault`, `bus-fault`)
/// or says that it leaked. Returns whether the access was stopped.
fn probe_memory(target: &str, addr: u64) -> bool {
    let before = hvc_call(Hvc::LastFault.id(), 0)[1];
    let cpu = smp::this_cpu() as u64;
    match exceptions::probe_read(addr) {
        Ok(v) => {
            probe_event(target, cpu, "leaked", &format!("read {addr:#x} = {v:#x}"));
            false
        }
        Err(esr) => {
            let cls = esr::Syndrome::new(esr);
            let detail = format!(
                "{addr:#x} {} {}",
                cls.class_name(),
                cls.fault_status().unwrap_or("?"),
            );
            probe_event(target, cpu, who_stopped(addr, before), &detail);
            true
        }
    }
}

/// What the memory probes reach for: (target, address), each mapped in the kernel's stage-1
/// first so that only the hyp's stage-2 (or the bus) can stop the access.
fn memory_targets() -> Vec<(&'static str, u64)> {
    let hyp = mm::hyp_range();
    let (tx, _) = catena_hyp::ffa_buffers();
    let mut t = alloc::vec![("hyp-memory", hyp.base + 0x40), ("hyp-ffa-buffer", tx)];
    let p = &boot().platform;
    if let Some(r) = p.secure_memory.first() {
        t.push(("secure-ram", r.base));
    }
    let tpm = p
        .devices
        .iter()
        .find(|d| d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"));
    if let Some(r) = tpm.and_then(|t| t.regions.first()) {
        t.push(("tpm-mmio", r.base + 0xf00));
    }
    t
}

static MEMORY_PROBES_OK: AtomicBool = AtomicBool::new(true);

/// Runs the memory probes on the calling CPU.
fn memory_probes() {
    for (target, addr) in memory_targets() {
        if !probe_memory(target, addr) {
            MEMORY_PROBES_OK.store(false, Ordering::Release);
        }
    }
}

/// `late_sync` initcall (`catena.hyp_probes`): reach for what the hyp hides, from every online
/// CPU (a CPU without the stage-2 would leak); every attempt must fault or be refused, and
/// the boot goes on.
pub fn hyp_probes() -> Result<(), InitError> {
    if !params().hyp_probes {
        return Ok(());
    }
    if !finalised() {
        probe_event(
            "hyp",
            smp::this_cpu() as u64,
            "skipped",
            "no hyp (entered at EL1)",
        );
        return Ok(());
    }
    let p = &boot().platform;
    let mut ok = true;
    if let Some(r) = p.secure_memory.first() {
        ok &= mm::map_extra(*r, false).is_ok();
    }
    let tpm = p
        .devices
        .iter()
        .find(|d| d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"));
    if let Some(r) = tpm.and_then(|t| t.regions.first()) {
        ok &= mm::map_extra(*r, true).is_ok();
    }
    MEMORY_PROBES_OK.store(true, Ordering::Release);
    memory_probes();
    for cpu in smp::online_cpus()
        .into_iter()
        .filter(|c| *c != smp::this_cpu())
    {
        if !smp::run_on(cpu, memory_probes) {
            probe_event("cpu", cpu as u64, "error", "did not run the probes in time");
            ok = false;
        }
    }
    ok &= MEMORY_PROBES_OK.load(Ordering::Acquire);
    let me = smp::this_cpu() as u64;
    // Init-only hypercalls are refused after finalise.
    let r = hvc_call(Hvc::Init.id(), 0)[0];
    if HvcError::check(r) == Err(Some(HvcError::Denied)) {
        probe_event("hvc-init-after-finalise", me, "refused", "denied");
    } else {
        probe_event(
            "hvc-init-after-finalise",
            me,
            "leaked",
            &format!("x0={r:#x}"),
        );
        ok = false;
    }
    // FF-A with a hyp page: refused by the proxy (or FF-A is absent altogether).
    ok &= ffa_probes(mm::hyp_range().base);
    if ok {
        Ok(())
    } else {
        Err(InitError::fatal("hyp-probe-leaked"))
    }
}

fn ffa_probes(hyp_page: u64) -> bool {
    let me = smp::this_cpu() as u64;
    use ffa_abi::{FfaError, fid};
    let absent = crate::ffa_bus::with_session(|_| ()).is_none();
    if absent {
        probe_event("ffa-rxtx-hyp-page", me, "refused", "FF-A absent");
        probe_event("ffa-share-hyp-page", me, "refused", "FF-A absent");
        return true;
    }
    let mut ok = true;
    // A second RX/TX pair naming hyp pages: refused (for the hyp page, before "already mapped").
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::RXTX_MAP64);
    x[1] = hyp_page;
    x[2] = hyp_page + 0x1000;
    x[3] = 1;
    let r = ffa::call(x);
    if r[0] == u64::from(fid::ERROR) {
        let e = FfaError::try_from(r[2] as u32 as i32)
            .map_or_else(|_| format!("{:#x}", r[2]), |e| format!("{e:?}"));
        probe_event("ffa-rxtx-hyp-page", me, "refused", &e);
    } else {
        probe_event("ffa-rxtx-hyp-page", me, "leaked", "mapped");
        ok = false;
    }
    crate::ffa_bus::with_session(|f| {
        // A page lent to the secure world is out of the host's reach until reclaimed.
        let page = ffa::pages(1);
        let pa = ffa::pa(&page);
        match f.lend_raw(ffa_abi::testsp::ID, pa, 1) {
            Ok(h) => {
                ok &= probe_memory("lent-page", pa);
                let back = f.reclaim(h).is_ok() && exceptions::probe_read(pa).is_ok();
                probe_event(
                    "reclaimed-page",
                    me,
                    if back { "readable" } else { "lost" },
                    &format!("{pa:#x}"),
                );
                ok &= back;
            }
            Err(e) => {
                probe_event("lent-page", me, "error", &format!("lend: {e:?}"));
                ok = false;
            }
        }
        // A descriptor naming a hyp page: the proxy must refuse it.
        match f.share_raw(ffa_abi::testsp::ID, hyp_page, 1) {
            Err(e) => probe_event("ffa-share-hyp-page", me, "refused", &format!("{e:?}")),
            Ok(h) => {
                probe_event(
                    "ffa-share-hyp-page",
                    me,
                    "leaked",
                    &format!("handle {h:#x}"),
                );
                ok = false;
            }
        }
    });
    ok
}
