//! Catena's EL2 component, modelled on Linux pKVM's nVHE hyp.
//!
//! Lifecycle (the kernel drives it through hypercalls, at explicit initcall levels):
//! 0. **Its own image.** This is a separate binary (own linker script, allocator, panic
//!    handler, own copies of `core`/`alloc` and the lib crates it uses). `cargo xtask` builds
//!    it first; the kernel embeds it, copies it into memory it gives away for good, zeroes
//!    its .bss, applies its relocations (`hyp_abi::relocate`) and builds the stub's early EL2
//!    tables (the region and the UART's gigabyte only).
//! 1. **Boot stub.** A kernel entered at EL2 leaves its stub at VBAR_EL2 and drops to EL1.
//!    The stub answers one HVC: install the hyp (the early tables, this image's vectors and
//!    stack, HCR_EL2 with **TSC**: from that instant no host SMC reaches EL3 without passing
//!    the hyp).
//! 2. **Init** ([`Hvc::Init`], init-only): the hyp copies and checks the boot-info page
//!    (`hyp_abi::BootInfo`: flat data, no pointers), starts its allocator on its pool, builds
//!    its own stage-1 (this image text RX, read-only data RO, data RW; its pool RW; the UART)
//!    and switches to it, builds page ownership, and brings up the FF-A proxy.
//! 3. **Run.** Host SMCs trap here: PSCI is forwarded (CPU_ON rewritten so the new CPU enters
//!    the hyp first), FF-A goes through [`ffa_proxy`], anything else is forwarded with x0–x17.
//! 4. **Finalise** ([`Hvc::Finalise`], init-only; Linux `finalize_pkvm`): the host stage-2 goes
//!    live — an identity map of host RAM and host MMIO without the hyp's memory or the
//!    secure world's devices — and init-only hypercalls are refused from then on. A host access
//!    outside it is a stage-2 fault: reported (`@event hyp state=fault`) and injected into the
//!    host as a synchronous external abort.
//!
//! The whole region — image and pool — leaves the host's stage-2 at finalise; no kernel code
//! or data is mapped at EL2.
#![no_std]
#![no_main]

extern crate alloc;

mod asm;
mod console;
mod heap;
mod stage2;

use aarch64_paging::descriptor::El23Attributes as H;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{El2, MemoryRegion};
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
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ffa_proxy::{Platform, Proxy};
use pageown::Ownership;
use spin::Mutex;

use hyp_abi::{InstallParams, STACK_SIZE};
pub use trapframe::Frame;

/// A memory range.
pub type Range = (u64, u64);

/// What the hyp knows of the platform: the checked boot-info page, in hyp memory.
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
    /// The parameters secondary CPUs enter with (the hyp's own stage-1, vectors).
    pub install: InstallParams,
    /// The UART is a BCM2835 mini-UART (boot-info flag `UART_BCM2835_AUX`).
    pub uart_aux: bool,
    /// A firmware answers SMCs (boot-info flag `SMC_FIRMWARE`).
    pub smc_firmware: bool,
    /// Test-only: the proxy refuses DIRECT_REQ2 (boot-info flag `DENY_REQ2`).
    pub deny_req2: bool,
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
        let mut r = x;
        forward_smc(&mut r);
        r
    }
    fn smc_in_place(&mut self, x: &mut [u64; 18]) {
        forward_smc(x)
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
static STATE: Mutex<Option<State>> = Mutex::new(None);
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
static FAULTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
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
    /// The hyp's own stage-1 (built from its pool at Init, live on every CPU).
    stage1: IdMap<El2>,
    /// The host pages mapped into the hyp's stage-1 (its RX/TX pair), if any.
    host_pages: Option<(u64, u64)>,
}

/// Normal memory, read-write, never executable (the hyp's data, its pool, host pages).
const S1_DATA: H = H::VALID
    .union(H::ATTRIBUTE_INDEX_1)
    .union(H::INNER_SHAREABLE)
    .union(H::ACCESSED)
    .union(H::USER_RES1)
    .union(H::XN);

/// Maps (or unmaps) host pages the hyp must touch in its stage-1: normal memory, never
/// executable.
fn map_host_pages(
    idmap: &mut IdMap<El2>,
    pages: (u64, u64),
    map: bool,
) -> Result<(), &'static str> {
    let flags = if map { S1_DATA } else { H::empty() };
    for pa in [pages.0, pages.1] {
        // Adding a mapping or removing one on a live table needs no break-before-make;
        // aarch64-paging invalidates the TLB entry of each page it changes.
        idmap
            .map_range(&MemoryRegion::new(pa as usize, pa as usize + 4096), flags)
            .map_err(|_| "aarch64-paging refused a hyp stage-1 change")?;
    }
    Ok(())
}

/// Whether a firmware answers SMCs: the DT's `/psci` says `method = "smc"` (boot-info flag
/// `SMC_FIRMWARE`), the SMCCC conduit rule Linux follows too. Without one (the Raspberry Pi:
/// its CPUs have an EL3 but nothing installed there) an SMC would run into an empty EL3.
static SMC_FIRMWARE: AtomicBool = AtomicBool::new(false);

/// SMCCC's NOT_SUPPORTED (DEN0028 §5.2).
const SMCCC_NOT_SUPPORTED: u64 = u64::MAX;

/// Forwards the SMC in `x` to EL3; its answer replaces `x`.
fn forward_smc(x: &mut [u64; 18]) {
    if !SMC_FIRMWARE.load(Ordering::Relaxed) {
        // Nobody to forward to: every call is unknown to a firmware that is not there (the
        // FF-A proxy then reports FF-A absent, PSCI calls fail).
        *x = [0u64; 18];
        x[0] = SMCCC_NOT_SUPPORTED;
        return;
    }
    let mut a = [0u64; 17];
    a.copy_from_slice(&x[1..]);
    *x = smccc::smc64(x[0] as u32, a);
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
    let mut off = [
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
    forward_smc(&mut off);
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
    (Hvc::SpinCpu, hc_spin_cpu),
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
    static __hyp_image_start: u8;
    static __hyp_text_end: u8;
    static __hyp_rodata_end: u8;
    static __hyp_image_end: u8;
}

unsafe extern "C" {
    fn hyp_vectors();
}

/// The CPU's physical address range (ID_AA64MMFR0_EL1.PARange) for TCR_EL2.PS.
fn pa_range_bits() -> u64 {
    arm_sysregs::el1::accessors::read_id_aa64mmfr0_el1().bits() & 0xf
}

/// This image in memory: (start, end of text, end of read-only data, end).
fn image() -> (u64, u64, u64, u64) {
    (
        &raw const __hyp_image_start as u64,
        &raw const __hyp_text_end as u64,
        &raw const __hyp_rodata_end as u64,
        &raw const __hyp_image_end as u64,
    )
}

/// Reads and checks the boot-info page `Init` names: it must be exactly where
/// `hyp_abi::Layout` puts it, right after this image (the kernel wrote it there before
/// install; any other address is refused, not followed). Starts the allocator on the pool;
/// returns the configuration and the region.
fn read_boot_info(x1: u64) -> Result<(Config, Range), HvcError> {
    let (start, _, _, end) = image();
    let layout = hyp_abi::Layout::new(end - start);
    if x1 != start + layout.boot_info {
        return Err(HvcError::BadAddress);
    }
    // SAFETY: the page right after this image, mapped by the stub's early tables (the whole
    // region is), aligned, written by the kernel before install; copied once.
    let bi: hyp_abi::BootInfo = unsafe { core::ptr::read_volatile(x1 as *const hyp_abi::BootInfo) };
    let c = bi
        .check(start, end - start)
        .map_err(|_| HvcError::BadConfig)?;
    let span = |s: &hyp_abi::Span| (s.base, s.size);
    let region = span(&bi.region);
    if region.1 <= layout.pool {
        return Err(HvcError::BadConfig);
    }
    let pool = (start + layout.pool, region.1 - layout.pool);
    // The configuration below is the first thing the hyp allocates: its pool first.
    // SAFETY: `pool` is the part of the region after this image, its boot-info page and the
    // stub's early tables (`hyp_abi::Layout`): memory the kernel gave away for good, mapped
    // read-write by the early tables, used by nothing else.
    unsafe { heap::init(pool.0, pool.1) };
    let (tx, rx) = ffa_buffers();
    let cfg = Config {
        uart: bi.uart,
        ram: c.ram.iter().map(span).collect(),
        hyp: alloc::vec![region],
        kernel_ro: span(&bi.kernel_ro),
        host_mmio: c.mmio.iter().map(span).collect(),
        secure: c.secure.iter().map(span).collect(),
        cpus: c.cpus.to_vec(),
        ffa_tx: tx,
        ffa_rx: rx,
        hcr: bi.hcr,
        install: InstallParams::default(),
        deny_req2: bi.flags & hyp_abi::BootInfo::DENY_REQ2 != 0,
        uart_aux: bi.flags & hyp_abi::BootInfo::UART_BCM2835_AUX != 0,
        smc_firmware: bi.flags & hyp_abi::BootInfo::SMC_FIRMWARE != 0,
    };
    Ok((cfg, region))
}

/// The hyp's own stage-1, from its pool: this image's text executable and read-only, its
/// read-only data read-only, its data and .bss read-write, the rest of the region (boot info,
/// the stub's early tables, the pool) read-write, the UART as device memory. Nothing of the
/// kernel's.
fn build_stage1(region: Range, uart: u64) -> Result<IdMap<El2>, &'static str> {
    let (start, text_end, rodata_end, end) = image();
    let normal = H::VALID | H::ATTRIBUTE_INDEX_1 | H::INNER_SHAREABLE | H::ACCESSED | H::USER_RES1;
    let device = H::VALID | H::ATTRIBUTE_INDEX_0 | H::ACCESSED | H::XN | H::USER_RES1;
    let mut map = IdMap::new(1, El2);
    let mut put = |s: u64, e: u64, flags: H| {
        map.map_range(&MemoryRegion::new(s as usize, e as usize), flags)
            .map_err(|_| "aarch64-paging refused a hyp mapping")
    };
    put(start, text_end, normal | H::READ_ONLY)?;
    put(text_end, rodata_end, normal | H::READ_ONLY | H::XN)?;
    put(rodata_end, end, S1_DATA)?;
    put(end, region.0 + region.1, S1_DATA)?;
    let page = uart & !0xfff;
    put(page, page + 0x1000, device)?;
    Ok(map)
}

fn hc_init(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    if st.is_some() {
        return Err(HvcError::Denied);
    }
    let (mut cfg, region) = read_boot_info(frame.x[1])?;
    let mut stage1 = build_stage1(region, cfg.uart).map_err(|_| HvcError::Failed)?;
    // SAFETY: the new map translates everything this code touches (its image, stack, pool and
    // UART) to the same addresses as the stub's early tables, so switching TTBR0_EL2 under
    // the running code changes permissions only; the old entries are dropped right after.
    // The map lives in the hyp's state for good, so TTBR0_EL2 never points at freed tables.
    unsafe { stage1.activate() };
    arch::tlbi_alle2();
    cfg.install = InstallParams {
        vbar: hyp_vectors as *const () as u64,
        ttbr0: stage1.root_address().0 as u64,
        tcr: hyp_abi::el2_tcr(pa_range_bits()),
        mair: hyp_abi::EL2_MAIR,
        sctlr: hyp_abi::EL2_SCTLR,
        hcr: cfg.hcr,
        ..InstallParams::default()
    };
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
    // SAFETY: `cfg.uart` is the console UART the boot-info page names (of the kind its flags
    // say), now mapped in the hyp's own stage-1 as device memory (`build_stage1`), shared
    // with the host's console.
    unsafe { console::set_uart(cfg.uart, cfg.uart_aux) };
    SMC_FIRMWARE.store(cfg.smc_firmware, Ordering::Relaxed);
    let mut carve = cfg.hyp.clone();
    carve.extend(cfg.secure.iter().copied());
    let own = Ownership::new(&cfg.ram, &carve);
    // SAFETY: the proxy is the only holder of this `El3`.
    let mut proxy = Proxy::init(unsafe { El3::new() }, own, cfg.ffa_tx, cfg.ffa_rx);
    if cfg.deny_req2 {
        proxy.deny_direct_req2();
    }
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
            // Where its image runs (its stage-1 maps the region at its own address): what
            // `cargo xtask bench --profile` needs to name the hyp's functions.
            .hex("region", region.0)
    });
    *st = Some(State {
        cfg,
        fin,
        proxy,
        stage2: None,
        stage1,
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
    let fid = (frame.x[0] as u32) & !(1 << 16);
    if fid == PSCI_CPU_ON_32 || fid == PSCI_CPU_ON_64 {
        let mut x = [0u64; 18];
        x.copy_from_slice(&frame.x[..18]);
        return cpu_on(frame, &x);
    }
    // The host's x0–x17, answered in place (no copy of the registers on the hot path).
    let Some(x) = frame.x.first_chunk_mut::<18>() else {
        return;
    };
    let handled = {
        let mut g = STATE.lock();
        match g.as_mut() {
            Some(st) => {
                let r = st.proxy.handle_in_place(x);
                // The only host pages the proxy touches are the host's RX/TX pair: keep the
                // hyp's stage-1 mapping exactly those, following RXTX_MAP and RXTX_UNMAP.
                let now = st.proxy.host_buffers();
                if now != st.host_pages {
                    if let Some(old) = st.host_pages.take() {
                        let _ = map_host_pages(&mut st.stage1, old, false);
                    }
                    if let Some(new) = now {
                        match map_host_pages(&mut st.stage1, new, true) {
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
            None => false,
        }
    };
    if !handled {
        forward_smc(x);
    }
}

/// Why a CPU cannot be prepared.
enum PrepareError {
    /// Before Init.
    NotInitialised,
    /// Not one of the DT's CPUs (or more than the hyp has stacks for).
    UnknownCpu,
}

/// Records the parameters CPU `target` enters the hyp with (its own stage-1, vectors, stack,
/// HCR and — after finalise — the stage-2; then the host's `entry` at EL1 with `ctx`), cleaned
/// to the point of coherency for its MMU-off start; returns its index and their address.
/// Runs under the state lock the caller holds.
fn prepare_cpu(
    st: &Option<State>,
    target: u64,
    entry: u64,
    ctx: u64,
) -> Result<(usize, u64), PrepareError> {
    let st = st.as_ref().ok_or(PrepareError::NotInitialised)?;
    let idx = st
        .cfg
        .cpus
        .iter()
        .position(|m| *m == target)
        .filter(|i| *i < MAX_CPUS)
        .ok_or(PrepareError::UnknownCpu)?;
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
    Ok((idx, pa))
}

unsafe extern "C" {
    fn hyp_secondary_entry();
    fn hyp_spin_entry();
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
    let (idx, pa) = match prepare_cpu(&g, target, entry, ctx) {
        Ok(p) => p,
        // Before Init the hyp cannot account for a CPU: one started now would never run
        // under it. Refused rather than forwarded.
        Err(PrepareError::NotInitialised) => {
            drop(g);
            return ret(frame, &[PSCI_DENIED as u64]);
        }
        // A CPU the DT does not list, or more CPUs than the hyp has stacks for.
        Err(PrepareError::UnknownCpu) => {
            drop(g);
            return ret(frame, &[PSCI_INVALID_PARAMETERS as u64]);
        }
    };
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
    forward_smc(&mut fwd);
    let r = fwd;
    if r[0] == 0
        && let Some(st) = g.as_mut()
    {
        let _ = st.fin.cpu_started(idx);
    }
    drop(g);
    frame.x[..18].copy_from_slice(&r);
}

/// The spin-table CPUs the hyp expects, by index: their MPIDR (`u64::MAX`: none expected)
/// and the address of their parameters. `hyp_spin_entry` reads both with the MMU off.
#[unsafe(no_mangle)]
static HYP_SPIN_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
#[unsafe(no_mangle)]
static HYP_SPIN_PARAMS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// `SpinCpu`: a spin-table CPU (no PSCI to trap) is made to enter the hyp first, like CPU_ON:
/// the host writes the returned entry to the CPU's release address and wakes it. The CPU
/// counts as started from here, so finalise waits for it.
fn hc_spin_cpu(frame: &mut Frame, st: &mut Option<State>) -> Result<(), HvcError> {
    let (target, entry, ctx) = (frame.x[1] & 0xff_00ff_ffff, frame.x[2], frame.x[3]);
    if target == mpidr() {
        return Err(HvcError::BadConfig);
    }
    let (idx, pa) = prepare_cpu(st, target, entry, ctx).map_err(|e| match e {
        PrepareError::NotInitialised => HvcError::Denied,
        PrepareError::UnknownCpu => HvcError::BadConfig,
    })?;
    HYP_SPIN_PARAMS[idx].store(pa, Ordering::Release);
    HYP_SPIN_MPIDR[idx].store(target, Ordering::Release);
    for table in [&HYP_SPIN_PARAMS, &HYP_SPIN_MPIDR] {
        arch::clean_to_poc(table[idx].as_ptr() as u64, 8);
    }
    if let Some(st) = st.as_mut() {
        let _ = st.fin.cpu_started(idx);
    }
    console::event(catena_event::Kind::Hyp, |e| {
        e.str("state", "cpu-on")
            .str("method", "spin-table")
            .hex("target", target)
            .u64("cpu", idx as u64)
            .hex("host_entry", entry)
    });
    ret(frame, &[0, hyp_spin_entry as *const () as u64]);
    Ok(())
}

/// Memory written behind Rust's back (by the CPU as a stack, by the SPMC and the proxy through
/// physical addresses): interior-mutable, so it lands in .bss (read-write), never in .rodata.
#[repr(C, align(4096))]
struct Raw<const N: usize>(core::cell::UnsafeCell<[u8; N]>);

// SAFETY: no Rust reference to the contents is ever made; they are only addressed raw.
unsafe impl<const N: usize> Sync for Raw<N> {}

/// The per-CPU stacks; the image header gives their offset (the install uses CPU i's).
#[unsafe(no_mangle)]
static HYP_STACKS: Raw<{ STACK_SIZE * MAX_CPUS }> =
    Raw(core::cell::UnsafeCell::new([0; STACK_SIZE * MAX_CPUS]));

/// Top of CPU `i`'s hyp stack.
fn stack_top(i: usize) -> u64 {
    let base = &raw const HYP_STACKS as u64;
    base + ((i.min(MAX_CPUS - 1) + 1) * STACK_SIZE) as u64
}

/// The hyp's FF-A TX and RX pages; the image header gives their offset (for the probes).
#[unsafe(no_mangle)]
static HYP_FFA_BUFFERS: Raw<8192> = Raw(core::cell::UnsafeCell::new([0; 8192]));

/// The hyp's FF-A (TX, RX) physical addresses.
fn ffa_buffers() -> (u64, u64) {
    let base = &raw const HYP_FFA_BUFFERS as u64;
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::mask_all();
    console::event(catena_event::Kind::Hyp, |e| {
        let e = e.str("state", "panic");
        match info.location() {
            Some(l) => e.str("file", l.file()).u64("line", u64::from(l.line())),
            None => e,
        }
    });
    console::event(catena_event::Kind::Done, |e| {
        e.str("status", "fail").str("reason", "hyp-panic")
    });
    let mut off = [0u64; 18];
    off[0] = 0x8400_0008; // PSCI SYSTEM_OFF
    forward_smc(&mut off);
    loop {
        arch::wfe();
    }
}
