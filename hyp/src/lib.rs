//! Catena's EL2 component, modelled on Linux pKVM's nVHE hyp.
//!
//! Lifecycle (the kernel drives it through hypercalls, at explicit initcall levels):
//! 1. **Boot stub.** A kernel entered at EL2 leaves [`asm`]'s stub at VBAR_EL2 and drops to
//!    EL1. The stub answers one HVC: install the hyp (its stage-1, vectors, stack and HCR_EL2
//!    with **TSC**: from that instant no host SMC reaches EL3 without passing the hyp).
//! 2. **Init** ([`Hvc::Init`], init-only): the hyp copies its configuration, builds page
//!    ownership, and brings up the FF-A proxy (version and RX/TX with the SPMC).
//! 3. **Run.** Host SMCs trap here: PSCI is forwarded (CPU_ON rewritten so the new CPU enters
//!    the hyp first), FF-A goes through [`ffa_proxy`], anything else is forwarded with x0–x17.
//! 4. **Finalise** ([`Hvc::Finalise`], init-only; Linux `finalize_pkvm`): the host stage-2 goes
//!    live — an identity map of host RAM and host MMIO without the hyp's memory or the
//!    secure world's devices — and init-only hypercalls are refused from then on. A host access
//!    outside it is a stage-2 fault: reported (`@event hyp state=fault`) and injected into the
//!    host as a synchronous external abort.
//!
//! The hyp is linked into the kernel image. Its state lives in `.hyp.data`, its allocations in
//! a pool the kernel donates at install; both leave the host's stage-2 at finalise. Kernel
//! text and read-only data stay mapped for the host read-only, so the code the hyp runs cannot
//! be changed under it.
#![no_std]

extern crate alloc;

pub mod asm;
mod console;
mod stage2;

use alloc::vec::Vec;
use arm_sysregs::el1::accessors::{
    read_mpidr_el1, read_vbar_el1, write_elr_el1, write_esr_el1, write_far_el1, write_spsr_el1,
};
use arm_sysregs::el1::registers::{ElrEl1, EsrEl1, FarEl1, SpsrEl1};
use arm_sysregs::el2::accessors::{
    read_esr_el2, read_far_el2, read_hcr_el2, read_hpfar_el2, read_tpidr_el2, write_hcr_el2,
    write_tpidr_el2, write_vtcr_el2, write_vttbr_el2,
};
use arm_sysregs::el2::registers::{HcrEl2, TpidrEl2, VtcrEl2, VttbrEl2};
use core::sync::atomic::{AtomicU64, Ordering};
use ffa_proxy::{Platform, Proxy};
use pageown::Ownership;
use spin::Mutex;

/// Per-CPU hyp stack.
pub const STACK_SIZE: usize = 0x4000;

pub use trapframe::Frame;

/// What the boot stub loads to install the hyp (read with the MMU off: clean it to PoC).
/// Layout shared with [`asm::off`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct InstallParams {
    /// VBAR_EL2.
    pub vbar: u64,
    /// TTBR0_EL2.
    pub ttbr0: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// MAIR_EL2.
    pub mair: u64,
    /// SCTLR_EL2.
    pub sctlr: u64,
    /// HCR_EL2.
    pub hcr: u64,
    /// SP_EL2 for the installing CPU.
    pub sp: u64,
    /// VTCR_EL2 (0 = no stage-2).
    pub vtcr: u64,
    /// VTTBR_EL2.
    pub vttbr: u64,
    /// Host entry (secondary CPUs).
    pub host_entry: u64,
    /// Host context id (secondary CPUs).
    pub host_ctx: u64,
    /// TPIDR_EL2: the CPU's index in the hyp (the hyp sets it; the boot CPU's is checked at
    /// init against its MPIDR).
    pub cpu: u64,
}

/// A memory range.
pub type Range = (u64, u64);

/// What the kernel tells the hyp at [`Hvc::Init`] (copied into hyp memory).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The UART the hyp reports on.
    pub uart: u64,
    /// Host RAM.
    pub ram: Vec<Range>,
    /// RAM that is not the host's: the hyp's data and pool.
    pub hyp: Vec<Range>,
    /// Kernel text and read-only data: the host keeps them, read-only.
    pub kernel_ro: Range,
    /// MMIO the host may use.
    pub host_mmio: Vec<Range>,
    /// MMIO and memory for the secure world only (never mapped for the host).
    pub secure: Vec<Range>,
    /// The CPUs' MPIDRs (index = CPU number).
    pub cpus: Vec<u64>,
    /// The hyp's FF-A TX and RX pages.
    pub ffa_tx: u64,
    /// See `ffa_tx`.
    pub ffa_rx: u64,
    /// HCR_EL2 for the host.
    pub hcr: u64,
    /// The installing CPU's parameters (stage-1, vectors) reused for secondary CPUs.
    pub install: InstallParams,
    /// The hyp's own stage-1 (`IdMap<El2>` in the hyp pool): the hyp maps the host's FF-A
    /// buffers into it when the host names them.
    pub stage1: u64,
}

pub use hyp_abi::{CpuSet, Hvc, HvcError, MAX_CPUS, Progress};

/// The hyp's platform for the proxy: SMC to EL3, memory by physical address (identity map).
struct El3(());

impl El3 {
    /// # Safety
    /// The value must go only to the FF-A proxy, which reads and writes through it only its
    /// own buffers and the host pages it checked (host-owned RAM, mapped in the hyp's stage-1
    /// for exactly as long as the proxy uses them); anything else holding it could touch any
    /// physical address the hyp maps.
    unsafe fn new() -> El3 {
        El3(())
    }
}

impl Platform for El3 {
    fn smc(&mut self, x: [u64; 18]) -> [u64; 18] {
        forward_smc(&x)
    }
    fn read(&self, pa: u64, buf: &mut [u8]) {
        // SAFETY: by `El3::new`'s contract, the proxy's own buffers or host pages it checked,
        // identity mapped in the hyp's stage-1.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) }
    }
    fn write(&mut self, pa: u64, data: &[u8]) {
        // SAFETY: as for `read`: the hyp's TX or the host's RX page.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) }
    }
}

/// Per-CPU boot blocks for CPUs started through the hyp (read with the MMU off).
#[repr(C, align(64))]
struct CpuBoots([InstallParams; MAX_CPUS]);

/// All the hyp's mutable state: in `.hyp.data`, which leaves the host's stage-2 at finalise.
#[unsafe(link_section = ".hyp.data")]
static STATE: Mutex<Option<State>> = Mutex::new(None);
#[unsafe(link_section = ".hyp.data")]
static CPU_BOOTS: Mutex<CpuBoots> = Mutex::new(CpuBoots(
    [InstallParams {
        vbar: 0,
        ttbr0: 0,
        tcr: 0,
        mair: 0,
        sctlr: 0,
        hcr: 0,
        sp: 0,
        vtcr: 0,
        vttbr: 0,
        host_entry: 0,
        host_ctx: 0,
        cpu: 0,
    }; MAX_CPUS],
));
/// Per CPU: stage-2 faults taken, and the IPA of the last (the `LastFault` hypercall).
#[unsafe(link_section = ".hyp.data")]
static FAULTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
#[unsafe(link_section = ".hyp.data")]
static LAST_FAULT_IPA: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// This CPU's index in the hyp (TPIDR_EL2, set when the CPU entered the hyp).
fn this_cpu() -> usize {
    let v = read_tpidr_el2().bits();
    usize::try_from(v).map_or(MAX_CPUS - 1, |i| i.min(MAX_CPUS - 1))
}

struct State {
    cfg: Config,
    /// Which CPUs were started, which run with the stage-2 (all-or-nothing finalise).
    fin: hyp_abi::Finalise,
    proxy: Proxy<El3>,
    stage2: Option<stage2::HostStage2>,
    /// The host pages mapped into the hyp's stage-1 (its RX/TX pair), if any.
    host_pages: Option<(u64, u64)>,
}

/// The hyp's stage-1 attributes for host pages it must touch: normal memory, never executable.
fn map_host_pages(stage1: u64, pages: (u64, u64), map: bool) -> Result<(), &'static str> {
    use aarch64_paging::descriptor::El23Attributes as H;
    use aarch64_paging::idmap::IdMap;
    use aarch64_paging::paging::{El2, MemoryRegion};
    let flags = if map {
        H::VALID | H::ATTRIBUTE_INDEX_1 | H::INNER_SHAREABLE | H::ACCESSED | H::USER_RES1 | H::XN
    } else {
        H::empty()
    };
    // SAFETY: `stage1` is the hyp's own IdMap<El2>, built by the kernel in the hyp pool before
    // install and used by nothing else; the hyp holds its state lock, so there is one user.
    let idmap = unsafe { &mut *(stage1 as *mut IdMap<El2>) };
    for pa in [pages.0, pages.1] {
        // Adding a mapping or removing one on a live table needs no break-before-make;
        // aarch64-paging invalidates the TLB entry of each page it changes.
        idmap
            .map_range(&MemoryRegion::new(pa as usize, pa as usize + 4096), flags)
            .map_err(|_| "aarch64-paging refused a hyp stage-1 change")?;
    }
    Ok(())
}

fn forward_smc(x: &[u64; 18]) -> [u64; 18] {
    let mut a = [0u64; 17];
    a.copy_from_slice(&x[1..]);
    smccc::smc64(x[0] as u32, a)
}

fn mpidr() -> u64 {
    read_mpidr_el1().bits() & 0xff_00ff_ffff
}

fn sysreg_esr_far_hpfar() -> (u64, u64, u64) {
    (
        read_esr_el2().bits(),
        read_far_el2().bits(),
        read_hpfar_el2().bits(),
    )
}

/// EL2 exception classes (Arm ARM D24.2.40).
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
use hyp_abi::{EC_DABT_LOW, EC_IABT_LOW};

/// The hyp's entry for every trap from the host.
#[unsafe(no_mangle)]
extern "C" fn hyp_trap(frame: &mut Frame, _kind: u64) {
    let (esr, far, hpfar) = sysreg_esr_far_hpfar();
    match esr >> 26 {
        EC_HVC64 => hypercall(frame),
        EC_SMC64 => {
            // A trapped SMC returns to the SMC itself (Arm ARM D1.11): step over it.
            frame.elr += 4;
            smc(frame);
        }
        EC_DABT_LOW | EC_IABT_LOW => stage2_fault(frame, esr, far, hpfar),
        ec => {
            console::event(catena_event::Kind::Hyp, |e| {
                e.str("state", "unexpected-trap")
                    .hex("ec", ec)
                    .hex("esr", esr)
                    .hex("elr", frame.elr)
            });
            inject_abort(frame, esr, far);
        }
    }
}

/// An exception taken *in* the hyp: a hyp bug. Report and stop the system.
#[unsafe(no_mangle)]
extern "C" fn hyp_unexpected(frame: &mut Frame, kind: u64) {
    let (esr, far, _) = sysreg_esr_far_hpfar();
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "panic")
            .u64("vector", kind)
            .hex("esr", esr)
            .hex("far", far)
            .hex("elr", frame.elr)
    });
    console::event(catena_event::Kind::Done, |e| {
        e.str("status", "fail").str("reason", "hyp-exception")
    });
    let off = [
        0x8400_0008u64,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    forward_smc(&off);
    loop {
        core::hint::spin_loop();
    }
}

fn ret(frame: &mut Frame, v: &[u64]) {
    frame.x[..v.len()].copy_from_slice(v);
}

fn ret_err(frame: &mut Frame, e: HvcError) {
    ret(frame, &[e.to_x0()]);
}

/// A hypercall handler: runs with the hyp's state lock held, so every check it makes holds
/// until it returns (two CPUs finalising at once cannot both build a stage-2).
type Hcall = fn(&mut Frame, &mut Option<State>) -> Result<(), HvcError>;

/// The handlers, indexed like [`Hvc::ALL`] (whose order is checked at compile time).
const HCALLS: [(Hvc, Hcall); Hvc::ALL.len()] = [
    (Hvc::State, hc_state),
    (Hvc::Init, hc_init),
    (Hvc::Finalise, hc_finalise),
    (Hvc::FinaliseCpu, hc_finalise_cpu),
    (Hvc::LastFault, hc_last_fault),
];
const _: () = {
    let mut i = 0;
    while i < HCALLS.len() {
        assert!(HCALLS[i].0 as u64 == Hvc::ALL[i] as u64);
        i += 1;
    }
};

fn hypercall(frame: &mut Frame) {
    let id = frame.x[0];
    let Some(call) = Hvc::from_id(id) else {
        return ret_err(frame, HvcError::NotSupported);
    };
    let f = HCALLS[call as usize - Hvc::FIRST as usize].1;
    let mut st = STATE.lock();
    if call.init_only() && st.as_ref().is_some_and(|s| !s.fin.allows_init_only()) {
        drop(st);
        console::event(catena_event::Kind::Hyp, |e| {
            e.str("state", "refused")
                .hex("hvc", id)
                .str("reason", "init-only-after-finalise")
        });
        return ret_err(frame, HvcError::Denied);
    }
    if let Err(e) = f(frame, &mut st) {
        drop(st);
        ret_err(frame, e);
    }
}

fn hc_state(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    let (installed, finalised, on) = match st {
        Some(s) => (1, u64::from(s.fin.finalised()), s.fin.on().0),
        None => (0, 0, 0),
    };
    ret(frame, &[0, installed, finalised, on]);
    Ok(())
}

fn hc_last_fault(frame: &mut Frame, _: &mut Option<State>) -> Result<(), HvcError> {
    let cpu = this_cpu();
    ret(
        frame,
        &[
            0,
            FAULTS[cpu].load(Ordering::Relaxed),
            LAST_FAULT_IPA[cpu].load(Ordering::Relaxed),
        ],
    );
    Ok(())
}

unsafe extern "C" {
    static __hyp_start: u8;
    static __hyp_end: u8;
}

/// The hyp's own sections in the image.
fn hyp_image() -> Range {
    let s = &raw const __hyp_start as u64;
    let e = &raw const __hyp_end as u64;
    (s, e - s)
}

fn overlaps(a: Range, b: Range) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// `Init`'s x1: the kernel's `Config`. Before finalise the host is trusted (pKVM's
/// `__pkvm_init` trusts its arguments too), but a pointer that is null, misaligned, wraps or
/// names the hyp's own memory is still refused rather than followed.
fn check_config_ptr(x1: u64) -> Result<(), HvcError> {
    let size = size_of::<Config>() as u64;
    if x1 == 0 || !x1.is_multiple_of(align_of::<Config>() as u64) || x1.checked_add(size).is_none()
    {
        return Err(HvcError::BadAddress);
    }
    if overlaps((x1, size), hyp_image()) {
        return Err(HvcError::BadAddress);
    }
    Ok(())
}

/// The configuration must hold together before the hyp builds anything from it.
fn check_config(cfg: &Config) -> Result<(), &'static str> {
    let fits = |r: &Range| r.1 > 0 && r.0.checked_add(r.1).is_some();
    if cfg.cpus.is_empty() || cfg.cpus.len() > MAX_CPUS {
        return Err("cpus");
    }
    if cfg.ram.is_empty() || !cfg.ram.iter().all(fits) {
        return Err("ram");
    }
    if !cfg
        .hyp
        .iter()
        .chain(&cfg.host_mmio)
        .chain(&cfg.secure)
        .all(fits)
    {
        return Err("range");
    }
    if !fits(&cfg.kernel_ro) {
        return Err("kernel_ro");
    }
    let in_hyp = |pa: u64| {
        pa.is_multiple_of(4096)
            && cfg
                .hyp
                .iter()
                .any(|r| pa >= r.0 && pa.saturating_add(4096) <= r.0.saturating_add(r.1))
    };
    if !in_hyp(cfg.ffa_tx) || !in_hyp(cfg.ffa_rx) || cfg.ffa_tx == cfg.ffa_rx {
        return Err("ffa buffers");
    }
    if cfg.uart == 0 {
        return Err("uart");
    }
    Ok(())
}

fn hc_init(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    if st.is_some() {
        return Err(HvcError::Denied);
    }
    check_config_ptr(frame.x[1])?;
    // SAFETY: before finalise the host is trusted (as in pKVM's __pkvm_init): x1 is the
    // kernel's `Config`, identity mapped, aligned, outside hyp memory (checked above); it is
    // cloned into hyp memory and not read again.
    let cfg: Config = unsafe { (*(frame.x[1] as *const Config)).clone() };
    // Refused without a report: a configuration that does not hold together may not name a
    // UART the hyp can use; the kernel logs the error code.
    check_config(&cfg).map_err(|_| HvcError::BadConfig)?;
    // The CPU installing the hyp is the one the DT lists with this MPIDR.
    let boot = cfg
        .cpus
        .iter()
        .position(|m| *m == mpidr())
        .ok_or(HvcError::BadConfig)?;
    let fin = hyp_abi::Finalise::new(boot)?;
    // SAFETY: TPIDR_EL2 holds this CPU's index for the hyp; nothing else reads it as anything
    // else, and the host cannot reach it.
    unsafe { write_tpidr_el2(TpidrEl2::from_bits_retain(boot as u64)) };
    // SAFETY: before finalise the host is trusted: `cfg.uart` is the console PL011 the kernel
    // mapped into the hyp's stage-1 (`mm::hyp_stage1`), shared with the kernel's driver.
    unsafe { console::set_uart(cfg.uart) };
    let mut carve = cfg.hyp.clone();
    carve.extend(cfg.secure.iter().copied());
    let own = Ownership::new(&cfg.ram, &carve);
    // SAFETY: the proxy is the only holder of this `El3`.
    let proxy = Proxy::init(unsafe { El3::new() }, own, cfg.ffa_tx, cfg.ffa_rx);
    let ffa = match proxy.firmware() {
        Ok(v) => alloc::format!("{v}"),
        Err(e) => alloc::format!("absent:{e:?}"),
    };
    let buffers = match (proxy.firmware(), proxy.buffers()) {
        (Err(_), _) => "none".into(),
        (Ok(_), Ok(())) => alloc::string::String::from("mapped"),
        (Ok(_), Err(e)) => alloc::format!("refused:{e:?}"),
    };
    // Read back from the hardware, not assumed: HCR_EL2.TSC (bit 19) traps host SMCs here.
    let hcr = read_hcr_el2();
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "installed")
            .str(
                "smc_trap",
                if hcr.contains(HcrEl2::TSC) {
                    "on"
                } else {
                    "off"
                },
            )
            .str("ffa", &ffa)
            .str("ffa_buffers", &buffers)
            .u64("cpus", cfg.cpus.len() as u64)
            .u64("cpu", boot as u64)
    });
    *st = Some(State {
        cfg,
        fin,
        proxy,
        stage2: None,
        host_pages: None,
    });
    ret(frame, &[0]);
    Ok(())
}

fn enable_stage2(vtcr: u64, vttbr: u64) {
    // SAFETY: VTCR/VTTBR describe the host stage-2 just built in hyp memory, which stays alive
    // (in the hyp's state) while any CPU uses it; HCR_EL2.VM then makes every host access go
    // through it, and the host's stale translations are dropped.
    unsafe {
        write_vtcr_el2(VtcrEl2::from_bits_retain(vtcr));
        write_vttbr_el2(VttbrEl2::from_bits_retain(vttbr));
    }
    arch::isb();
    // SAFETY: as above; only VM is added to the host's HCR_EL2.
    unsafe { write_hcr_el2(read_hcr_el2() | HcrEl2::VM) };
    arch::isb();
    arch::tlbi_vmalls12e1();
}

/// Reports this CPU's stage-2, and finalise when it is complete.
fn report_progress(st: &State, cpu: usize, p: Progress) {
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "finalised").u64("cpu", cpu as u64)
    });
    if p == Progress::Complete {
        let summary = st.stage2.as_ref().map_or((0, 0, 0), |s| s.summary);
        console::event(catena_event::Kind::Hyp, |e| {
            e.str("state", "finalised")
                .u64("cpus", u64::from(st.fin.on().count()))
                .u64("host_ram_ranges", summary.0)
                .u64("host_mmio_ranges", summary.1)
                .u64("hidden", summary.2)
        });
    }
}

fn hc_finalise(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    let st = st.as_mut().ok_or(HvcError::Denied)?;
    let cpu = this_cpu();
    // Checked under the lock: a second Finalise (from any CPU) is refused here, never builds
    // a second table over the live one.
    if st.stage2.is_some() || !st.fin.started().has(cpu) {
        return Err(HvcError::Denied);
    }
    let s2 = match stage2::HostStage2::build(&st.cfg, st.proxy.ownership()) {
        Ok(s) => s,
        Err(e) => {
            console::event(catena_event::Kind::Hyp, |w| {
                w.str("state", "finalise-failed").str("reason", e)
            });
            return Err(HvcError::Failed);
        }
    };
    let (vtcr, vttbr) = (s2.vtcr, s2.vttbr());
    enable_stage2(vtcr, vttbr);
    // Secondary CPUs started from now on come up with the stage-2 on.
    st.cfg.install.vtcr = vtcr;
    st.cfg.install.vttbr = vttbr;
    st.cfg.install.hcr = st.cfg.hcr | 1;
    st.stage2 = Some(s2);
    let p = st.fin.built_on(cpu)?;
    report_progress(st, cpu, p);
    ret(frame, &[0, u64::from(p == Progress::Complete)]);
    Ok(())
}

fn hc_finalise_cpu(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    let st = st.as_mut().ok_or(HvcError::NotReady)?;
    let cpu = this_cpu();
    st.fin.may_enable(cpu)?;
    let (vtcr, vttbr) = match st.stage2.as_ref() {
        Some(s2) => (s2.vtcr, s2.vttbr()),
        None => return Err(HvcError::NotReady),
    };
    enable_stage2(vtcr, vttbr);
    let p = st.fin.enabled(cpu)?;
    report_progress(st, cpu, p);
    ret(frame, &[0, u64::from(p == Progress::Complete)]);
    Ok(())
}

/// PSCI function IDs the hyp must look inside (DEN0022).
const PSCI_CPU_ON_32: u32 = 0x8400_0003;
const PSCI_CPU_ON_64: u32 = 0xc400_0003;

fn smc(frame: &mut Frame) {
    let mut x = [0u64; 18];
    x.copy_from_slice(&frame.x[..18]);
    let fid = (x[0] as u32) & !(1 << 16);
    if fid == PSCI_CPU_ON_32 || fid == PSCI_CPU_ON_64 {
        return cpu_on(frame, &x);
    }
    let reply = {
        let mut g = STATE.lock();
        match g.as_mut() {
            Some(st) => {
                let r = st.proxy.handle(&x);
                // The only host pages the proxy touches are the host's RX/TX pair: keep the
                // hyp's stage-1 mapping exactly those, following RXTX_MAP and RXTX_UNMAP.
                let now = st.proxy.host_buffers();
                if now != st.host_pages {
                    if let Some(old) = st.host_pages.take() {
                        let _ = map_host_pages(st.cfg.stage1, old, false);
                    }
                    if let Some(new) = now {
                        match map_host_pages(st.cfg.stage1, new, true) {
                            Ok(()) => st.host_pages = Some(new),
                            Err(e) => console::event(catena_event::Kind::Hyp, |w| {
                                w.str("state", "stage1-map-failed").str("reason", e)
                            }),
                        }
                    }
                }
                // Lend takes pages away from the host; reclaim gives them back.
                for c in st.proxy.take_access_changes() {
                    if let Some(s2) = st.stage2.as_mut()
                        && let Err(e) = s2.set_host_access(c.base, c.pages, c.host_access)
                    {
                        console::event(catena_event::Kind::Hyp, |w| {
                            w.str("state", "stage2-update-failed")
                                .str("reason", e)
                                .hex("base", c.base)
                        });
                    }
                }
                r
            }
            None => None,
        }
    };
    let r = match reply {
        Some(r) => r,
        None => forward_smc(&x),
    };
    frame.x[..18].copy_from_slice(&r);
}

/// PSCI CPU_ON from the host: the new CPU enters the hyp first (its own stage-1, vectors,
/// stack, HCR and — after finalise — the stage-2), then the host's entry at EL1.
fn cpu_on(frame: &mut Frame, x: &[u64; 18]) {
    /// PSCI return codes (DEN0022 5.2.2).
    const PSCI_INVALID_PARAMETERS: i64 = -2;
    const PSCI_DENIED: i64 = -3;
    let (target, entry, ctx) = (x[1] & 0xff_00ff_ffff, x[2], x[3]);
    // One hold of the state lock from reading the install parameters to recording the CPU as
    // started: a concurrent Finalise sees either the CPU (and waits for it) or has already
    // put its stage-2 into the parameters the CPU enters with.
    let mut g = STATE.lock();
    let Some(st) = g.as_mut() else {
        // Before Init the hyp cannot account for a CPU: one started now would never run
        // under it. Refused rather than forwarded.
        drop(g);
        return ret(frame, &[PSCI_DENIED as u64]);
    };
    // A CPU the DT does not list, or more CPUs than the hyp has stacks for.
    let Some(idx) = st
        .cfg
        .cpus
        .iter()
        .position(|m| *m == target)
        .filter(|i| *i < MAX_CPUS)
    else {
        drop(g);
        return ret(frame, &[PSCI_INVALID_PARAMETERS as u64]);
    };
    let mut boots = CPU_BOOTS.lock();
    let b = &mut boots.0[idx];
    *b = InstallParams {
        sp: stack_top(idx),
        host_entry: entry,
        host_ctx: ctx,
        cpu: idx as u64,
        ..st.cfg.install
    };
    let pa = b as *const InstallParams as u64;
    arch::clean_to_poc(pa, size_of::<InstallParams>() as u64);
    drop(boots);
    unsafe extern "C" {
        fn hyp_secondary_entry();
    }
    // Reported before the forward: once the CPU runs, its own output may follow at once, and
    // the hyp shares no console lock with the host.
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "cpu-on")
            .hex("target", target)
            .u64("cpu", idx as u64)
            .hex("host_entry", entry)
    });
    let mut fwd = *x;
    fwd[2] = hyp_secondary_entry as *const () as u64;
    fwd[3] = pa;
    let r = forward_smc(&fwd);
    if r[0] == 0 {
        let _ = st.fin.cpu_started(idx);
    }
    drop(g);
    frame.x[..18].copy_from_slice(&r);
}

#[repr(C, align(16))]
struct Stacks([[u8; STACK_SIZE]; MAX_CPUS]);

#[unsafe(link_section = ".hyp.data")]
static STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

/// Top of CPU `i`'s hyp stack.
pub fn stack_top(i: usize) -> u64 {
    let base = &raw const STACKS as u64;
    base + ((i.min(MAX_CPUS - 1) + 1) * STACK_SIZE) as u64
}

/// The hyp's FF-A buffers (one page each), in hyp memory.
#[repr(C, align(4096))]
pub struct FfaBuffers(pub [[u8; 4096]; 2]);

#[unsafe(link_section = ".hyp.data")]
static FFA_BUFFERS: FfaBuffers = FfaBuffers([[0; 4096]; 2]);

/// The hyp's FF-A (TX, RX) physical addresses.
pub fn ffa_buffers() -> (u64, u64) {
    let base = &raw const FFA_BUFFERS as u64;
    (base, base + 4096)
}

/// A stage-2 fault from the host: report it, then give the host a synchronous external abort
/// at the faulting address, as the hardware would without a hyp.
fn stage2_fault(frame: &mut Frame, esr: u64, far: u64, hpfar: u64) {
    let ipa = ((hpfar >> 4) << 12) | (far & 0xfff);
    let cpu = this_cpu();
    FAULTS[cpu].fetch_add(1, Ordering::Relaxed);
    LAST_FAULT_IPA[cpu].store(ipa, Ordering::Relaxed);
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "fault")
            .hex("ipa", ipa)
            .hex("esr", esr)
            .hex("elr", frame.elr)
            .u64("cpu", cpu as u64)
            .hex("mpidr", mpidr())
    });
    inject_abort(frame, esr, far);
}

/// Injects a synchronous external abort into the host at EL1: the exception the host would
/// take, with ESR_EL1 built from the EL2 syndrome (same class, current-EL form, external
/// abort status) and FAR_EL1 = the faulting address.
fn inject_abort(frame: &mut Frame, esr: u64, far: u64) {
    let i = hyp_abi::inject(esr, frame.spsr);
    // SAFETY: writes the EL1 exception registers the host's vector will read (syndrome,
    // address, return address and state of the faulting instruction); the frame's ELR/SPSR
    // then send the host to its sync vector with exceptions masked, exactly as a taken
    // exception would. The host is not running while the hyp handles its trap.
    unsafe {
        write_esr_el1(EsrEl1::from_bits_retain(i.esr_el1));
        write_far_el1(FarEl1::from_bits_retain(far));
        write_elr_el1(ElrEl1::from_bits_retain(frame.elr));
        write_spsr_el1(SpsrEl1::from_bits_retain(frame.spsr));
    }
    frame.elr = read_vbar_el1().bits() + i.vector_offset;
    frame.spsr = i.spsr;
}
