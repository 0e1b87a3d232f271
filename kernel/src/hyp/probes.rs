//! The hyp probes (`catena.hyp_probes`, a test hook: built only with the `test-hooks`
//! feature): after finalise, from every online CPU, reach for what the hyp hides. Each access
//! must be stopped, and the result says by whom — `stage2-fault` when the hyp's stage-2 took
//! it (the hyp counted a fault on this CPU at this address), `bus-fault` when something else
//! did (secure memory answers a non-secure access with an external abort whether or not the
//! hyp unmapped it) — or `refused` for calls the hyp or its proxy turned down.

use crate::arch::exceptions;
use crate::hyp::{finalised, hvc_call};
use crate::init::boot::{boot, params};
use crate::{console, mm, smp};
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use hyp_abi::{Hvc, HvcError};
use initcall::InitError;

fn probe_event(target: &str, cpu: u64, result: &str, detail: &str) {
    console::emit(catena_event::Kind::HypProbe, |e| {
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
    let mut t = Vec::new();
    if let Some(h) = crate::hyp::region() {
        // The hyp's own image (its code), its FF-A TX buffer, and the last page of its pool.
        t.push(("hyp-memory", h.region.base + 0x40));
        t.push(("hyp-ffa-buffer", h.region.base + h.header.ffa_buffers));
        t.push(("hyp-pool", h.region.end() - 0x1000));
    }
    let p = &boot().platform;
    if let Some(r) = p.secure_memory.first() {
        t.push(("secure-ram", r.base));
    }
    // The TIS the firmware's TPM service owns (secure-only in the DT); a TIS left to the
    // host (no secure firmware) is the `tpm-tis` driver's, not a probe target.
    let tpm = p
        .devices
        .iter()
        .find(|d| !d.enabled && d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"));
    if let Some(r) = tpm.and_then(|t| t.regions.first()) {
        t.push(("tpm-mmio", r.base + 0xf00));
    }
    // Spin-table release addresses (lib/hyp-policy hides their pages): a write there could
    // send a CPU still in the board's spin loop into EL2 at the host's address.
    if let Some(a) = p.cpus.iter().find_map(|c| p.spin_release_addr(c).ok()) {
        t.push(("spin-release", a));
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
    // The TIS the firmware's TPM service owns (secure-only in the DT); a TIS left to the
    // host (no secure firmware) is the `tpm-tis` driver's, not a probe target.
    let tpm = p
        .devices
        .iter()
        .find(|d| !d.enabled && d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"));
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
    // Releasing a spin-table CPU under the hyp is init-only too.
    if p.cpus.iter().any(|c| p.spin_release_addr(c).is_ok()) {
        let r = crate::hyp::hvc_call3(Hvc::SpinCpu.id(), 1, 0, 0)[0];
        if HvcError::check(r) == Err(Some(HvcError::Denied)) {
            probe_event("hvc-spincpu-after-finalise", me, "refused", "denied");
        } else {
            probe_event(
                "hvc-spincpu-after-finalise",
                me,
                "leaked",
                &format!("x0={r:#x}"),
            );
            ok = false;
        }
    }
    // The firmware's bench-only SMC (a PCR 16 extend at EL3) without the command-line word
    // that turns it on: NOT_SUPPORTED.
    let mut x = [0u64; 18];
    x[0] = u64::from(tpm_service::BENCH_DIRECT_SMC);
    let r = catena_drivers::ffa::conduit::call(x);
    if r[0] == u64::MAX {
        probe_event("bench-smc", me, "refused", "not-supported");
    } else {
        probe_event("bench-smc", me, "leaked", &format!("x0={:#x}", r[0]));
        ok = false;
    }
    // FF-A with a hyp page: refused by the proxy (or FF-A is absent altogether).
    ok &= ffa_probes(crate::hyp::region().map_or(0, |h| h.region.base));
    if ok {
        Ok(())
    } else {
        Err(InitError::fatal("hyp-probe-leaked"))
    }
}

fn ffa_probes(hyp_page: u64) -> bool {
    let me = smp::this_cpu() as u64;
    use ffa_abi::{FfaError, fid};
    let absent = catena_drivers::ffa::with_session(|_| ()).is_none();
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
    let r = catena_drivers::ffa::conduit::call(x);
    if r[0] == u64::from(fid::ERROR) {
        let e = FfaError::try_from(r[2] as u32 as i32)
            .map_or_else(|_| format!("{:#x}", r[2]), |e| format!("{e:?}"));
        probe_event("ffa-rxtx-hyp-page", me, "refused", &e);
    } else {
        probe_event("ffa-rxtx-hyp-page", me, "leaked", "mapped");
        ok = false;
    }
    catena_drivers::ffa::with_session(|f| {
        // A page lent to the secure world is out of the host's reach until reclaimed.
        let page = catena_drivers::kapi::pages(1);
        let pa = catena_drivers::kapi::pa(&page);
        match f.lend(ffa_abi::testsp::ID, pa, 1) {
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
        match f.share(ffa_abi::testsp::ID, hyp_page, 1) {
            Err(ffa_core::client::CallError::Ffa(e)) => {
                probe_event("ffa-share-hyp-page", me, "refused", &format!("{e:?}"))
            }
            Err(e) => {
                probe_event("ffa-share-hyp-page", me, "error", &format!("{e:?}"));
                ok = false;
            }
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
