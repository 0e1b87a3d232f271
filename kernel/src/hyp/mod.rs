//! The kernel's side of the hyp: install (core), finalise (device_sync), probes (late).
//!
//! Linux's pKVM is installed by `kvm_arm_init` and finalised by `finalize_pkvm`; here the same
//! two steps are explicit initcalls, and every later piece that cares (the FF-A bus) declares
//! it. Entered at EL1 there is no EL2 to install into: the hyp is absent and says why.

#[cfg(feature = "test-hooks")]
pub mod probes;

use crate::init::boot::boot;
use crate::{console, mm, smp};
use core::sync::atomic::{AtomicBool, Ordering};
use dtinfo::Range;
use hyp_abi::{
    BootInfo, HVC_STUB_INSTALL, Hvc, HvcError, HypHeader, InstallParams, Layout, STACK_SIZE, Span,
};
use initcall::InitError;
use spin::Once;

/// The hyp's image, built by `cargo xtask` before the kernel (empty in a plain cargo build).
static HYP_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hyp.bin"));

/// What the kernel gives the hyp for good: its image, then its pool (page tables, its
/// allocations). 2 MiB aligned, so the stub's early tables map it in blocks.
const REGION_SIZE: usize = 8 << 20;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static FINALISED: AtomicBool = AtomicBool::new(false);

/// Where the hyp lives: the region the kernel gave away, and its header (for the probes and
/// the reports; the kernel never touches the region again).
#[derive(Clone, Copy, Debug)]
pub struct HypRegion {
    /// The region.
    pub region: Range,
    /// The image's header.
    pub header: HypHeader,
}

static REGION: Once<HypRegion> = Once::new();

/// The hyp's region, once installed.
pub fn region() -> Option<HypRegion> {
    REGION.get().copied()
}

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

/// A hypercall with three arguments (x1..x3); x0..x3 of the answer.
pub fn hvc_call3(x0: u64, x1: u64, x2: u64, x3: u64) -> [u64; 4] {
    let mut args = [0u64; 17];
    args[..3].copy_from_slice(&[x1, x2, x3]);
    // Hypercall IDs are SMCCC function IDs: 32 bits (lib/hyp-abi keeps them there).
    let r = smccc::hvc64(x0 as u32, args);
    [r[0], r[1], r[2], r[3]]
}

/// HCR_EL2 for the host: RW (EL1 is AArch64) and TSC (every host SMC traps to the hyp).
const HCR_HOST: u64 = (1 << 31) | (1 << 19);

/// Fills `list` (at most `out.len()` entries) and returns the count.
fn spans(list: &[(u64, u64)], out: &mut [Span]) -> Result<u64, &'static str> {
    if list.len() > out.len() {
        return Err("more ranges than the boot-info page holds");
    }
    for (o, &(base, size)) in out.iter_mut().zip(list) {
        *o = Span { base, size };
    }
    Ok(list.len() as u64)
}

/// The boot-info page: what the hyp needs to know of the platform, as flat data.
fn boot_info(p: &dtinfo::Platform, region: Range, uart: u64) -> Result<BootInfo, &'static str> {
    let (start, _, rodata_end, _) = mm::image_layout();
    // What the host may touch after finalise: lib/hyp-policy, host-tested on the DT fixtures.
    let view = hyp_policy::host_view(p);
    let mut bi = BootInfo {
        region: Span {
            base: region.base,
            size: region.size,
        },
        uart,
        hcr: HCR_HOST,
        kernel_ro: Span {
            base: start,
            size: rodata_end - start,
        },
        ..BootInfo::default()
    };
    if p.cpus.len() > bi.cpus.len() {
        return Err("more CPUs than the hyp serves");
    }
    for (o, c) in bi.cpus.iter_mut().zip(&p.cpus) {
        *o = c.mpidr;
    }
    bi.n_cpus = p.cpus.len() as u64;
    let ram: alloc::vec::Vec<(u64, u64)> = p.memory.iter().map(|r| (r.base, r.size)).collect();
    bi.n_ram = spans(&ram, &mut bi.ram)?;
    bi.n_mmio = spans(&view.mmio, &mut bi.mmio)?;
    bi.n_secure = spans(&view.secure, &mut bi.secure)?;
    if p.psci == Some(dtinfo::PsciMethod::Smc) {
        bi.flags |= BootInfo::SMC_FIRMWARE;
    }
    if console::uart_kind() == dtinfo::early::UartKind::Bcm2835Aux {
        bi.flags |= BootInfo::UART_BCM2835_AUX;
    }
    if cfg!(feature = "test-hooks") && crate::init::boot::params().hyp_deny_req2 {
        bi.flags |= BootInfo::DENY_REQ2;
    }
    Ok(bi)
}

fn install() -> Result<(), &'static str> {
    let p = &boot().platform;
    if HYP_IMAGE.is_empty() {
        return Err("this kernel was built without a hyp image (build it with cargo xtask)");
    }
    let header = HypHeader::parse(HYP_IMAGE).map_err(|_| "the embedded hyp image is malformed")?;
    let layout = Layout::new(header.image_size);
    if layout.pool + (1 << 20) > REGION_SIZE as u64 {
        return Err("the hyp image leaves no room for its pool");
    }
    let uart = console::uart_base().ok_or("no console UART for the hyp")? as u64;
    let alloc_layout = core::alloc::Layout::from_size_align(REGION_SIZE, 2 << 20)
        .map_err(|_| "hyp region layout")?;
    // SAFETY: a fresh allocation from the kernel heap, given to the hyp and never freed.
    let base = unsafe { alloc::alloc::alloc_zeroed(alloc_layout) };
    if base.is_null() {
        return Err("no memory for the hyp");
    }
    let region = Range {
        base: base as u64,
        size: REGION_SIZE as u64,
    };
    // SAFETY: the region was just allocated (zeroed) and nothing else refers to it; the kernel
    // writes the hyp's image, boot info and early tables into it, then never touches it again.
    let mem = unsafe { core::slice::from_raw_parts_mut(base, REGION_SIZE) };
    mem[..HYP_IMAGE.len()].copy_from_slice(HYP_IMAGE);
    hyp_abi::relocate(&mut mem[..header.image_size as usize], &header, region.base)
        .map_err(|_| "the hyp image's relocations are malformed")?;
    let bi = boot_info(p, region, uart)?;
    let (l1, l2) = hyp_abi::early_tables(
        Span {
            base: region.base,
            size: region.size,
        },
        uart,
        region.base + layout.early_l2,
    )?;
    for (table, at) in [(&l1, layout.early_l1), (&l2, layout.early_l2)] {
        for (i, e) in table.iter().enumerate() {
            let o = at as usize + i * 8;
            mem[o..o + 8].copy_from_slice(&e.to_le_bytes());
        }
    }
    let bi_at = region.base + layout.boot_info;
    // SAFETY: the boot-info page lies inside the region (checked against REGION_SIZE above),
    // page aligned, and `BootInfo` is plain data; nothing else refers to the region.
    unsafe { core::ptr::write(bi_at as *mut BootInfo, bi) };
    // The stub reads the tables and the parameters with the EL2 MMU off, and the hyp's code
    // must not meet stale instruction-cache lines.
    mm::dcache_clean(region);
    arch::icache_invalidate_all();
    // The hyp's index for this CPU is its place in the DT's CPU list (the hyp checks it).
    let mpidr = smp::mpidr();
    let cpu = p
        .cpus
        .iter()
        .position(|c| c.mpidr == mpidr)
        .ok_or("this CPU is not in the DT")?;
    let params = InstallParams {
        vbar: region.base + header.vectors,
        ttbr0: region.base + layout.early_l1,
        tcr: hyp_abi::el2_tcr(mm::pa_range_bits()),
        mair: hyp_abi::EL2_MAIR,
        sctlr: hyp_abi::EL2_SCTLR,
        hcr: HCR_HOST,
        sp: region.base + header.stacks + ((cpu + 1) * STACK_SIZE) as u64,
        cpu: cpu as u64,
        ..InstallParams::default()
    };
    mm::dcache_clean(Range {
        base: &params as *const _ as u64,
        size: size_of::<InstallParams>() as u64,
    });
    REGION.call_once(|| HypRegion { region, header });
    let mut args = [0u64; 17];
    args[0] = &params as *const _ as u64;
    args[1] = region.base + header.install;
    if smccc::hvc64(HVC_STUB_INSTALL as u32, args)[0] != 0 {
        return Err("the EL2 stub refused the install");
    }
    INSTALLED.store(true, Ordering::Release);
    let r = hvc_call(Hvc::Init.id(), bi_at)[0];
    HvcError::check(r).map_err(|e| {
        log::error!("hyp Init: {}", e.map_or("unknown error", HvcError::name));
        "hyp init refused"
    })
}

/// `core` initcall: install the hyp when entered at EL2.
pub fn hyp_install() -> Result<(), InitError> {
    if crate::init::boot::entry_el() != 2 {
        console::emit(catena_event::Kind::Hyp, |e| {
            e.str("state", "absent").str("reason", "entered-at-el1")
        });
        return Ok(());
    }
    install().map_err(|e| {
        log::error!("hyp install: {e}");
        InitError::fatal("hyp-install")
    })?;
    if let Some(r) = region() {
        log::info!(
            "hyp: its own image ({} KiB) and pool at {:#x}..{:#x}, given away for good",
            r.header.image_size / 1024,
            r.region.base,
            r.region.end()
        );
    }
    // A chain milestone for the measurement list (the hyp prints its own event on the UART).
    catena_drivers::ima::milestone("hyp state=installed");
    Ok(())
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
    // The milestone, with a digest of what the host stage-2 hides (the secure and no-map
    // ranges of the DT, lib/hyp-policy): a verifier can check both the order and the policy.
    let hidden = hyp_policy::host_view(&boot().platform).secure;
    let mut bytes = alloc::vec::Vec::new();
    for (b, n) in &hidden {
        bytes.extend_from_slice(&b.to_le_bytes());
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    let digest = tcglog::digest(tcglog::alg::SHA256, &bytes).unwrap_or_default();
    let hex: alloc::string::String = digest.iter().map(|b| alloc::format!("{b:02x}")).collect();
    catena_drivers::ima::milestone(&alloc::format!(
        "hyp state=finalised cpus={} hidden={} hidden_sha256={hex}",
        on.count_ones(),
        hidden.len()
    ));
    Ok(())
}
