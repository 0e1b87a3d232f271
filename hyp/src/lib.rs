//! Catena's EL2 component, modelled on Linux pKVM's nVHE hyp.
//!
//! Lifecycle (the kernel drives it through hypercalls, at explicit initcall levels):
//! 1. **Boot stub.** A kernel entered at EL2 leaves [`asm`]'s stub at VBAR_EL2 and drops to
//!    EL1. The stub answers one HVC: install the hyp (its stage-1, vectors, stack and HCR_EL2
//!    with **TSC**: from that instant no host SMC reaches EL3 without passing the hyp).
//! 2. **Init** ([`hvc::INIT`], init-only): the hyp copies its configuration, builds page
//!    ownership, and brings up the FF-A proxy (version and RX/TX with the SPMC).
//! 3. **Run.** Host SMCs trap here: PSCI is forwarded (CPU_ON rewritten so the new CPU enters
//!    the hyp first), FF-A goes through [`ffa_proxy`], anything else is forwarded with x0–x17.
//! 4. **Finalise** ([`hvc::FINALISE`], init-only; Linux `finalize_pkvm`): the host stage-2 goes
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
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ffa_proxy::{Platform, Proxy};
use pageown::Ownership;
use spin::Mutex;

/// Most CPUs the hyp serves.
pub const MAX_CPUS: usize = 8;
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
}

/// A memory range.
pub type Range = (u64, u64);

/// What the kernel tells the hyp at [`hvc::INIT`] (copied into hyp memory).
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

/// Hypercall IDs (HVC, x0). A dense table: the ID is the index.
pub mod hvc {
    /// Report the hyp's state: x1 = 1 installed, x2 = 1 finalised.
    pub const STATE: u64 = 0xc600_0000;
    /// Init-only: x1 = &Config. Brings up ownership and the FF-A proxy.
    pub const INIT: u64 = 0xc600_0001;
    /// Init-only: build and enable the host stage-2 on this CPU; refuse init-only calls after.
    pub const FINALISE: u64 = 0xc600_0002;
    /// Enable the (already built) host stage-2 on this CPU (secondary CPUs after finalise).
    pub const FINALISE_CPU: u64 = 0xc600_0003;
    /// First and one-past-last IDs.
    pub const FIRST: u64 = STATE;
    /// See `FIRST`.
    pub const END: u64 = FINALISE_CPU + 1;
    /// Refused: an init-only call after finalise.
    pub const DENIED: u64 = (-3i64) as u64;
    /// Unknown hypercall.
    pub const NOT_SUPPORTED: u64 = u64::MAX;
}

/// The hyp's platform for the proxy: SMC to EL3, memory by physical address (identity map).
struct El3;

impl Platform for El3 {
    fn smc(&mut self, x: [u64; 18]) -> [u64; 18] {
        forward_smc(&x)
    }
    fn read(&self, pa: u64, buf: &mut [u8]) {
        // SAFETY: the proxy reads only its own buffers and host pages it has checked (host
        // RAM), all identity mapped in the hyp's stage-1.
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
static FINALISED: AtomicBool = AtomicBool::new(false);
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
    }; MAX_CPUS],
));
/// Faults reported so far (for the kernel's probes and the report).
#[unsafe(link_section = ".hyp.data")]
static FAULTS: AtomicU64 = AtomicU64::new(0);

struct State {
    cfg: Config,
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
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & 0xff_00ff_ffff
}

fn sysreg_esr_far_hpfar() -> (u64, u64, u64) {
    let (esr, far, hpfar): (u64, u64, u64);
    // SAFETY: reading the EL2 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el2", "mrs {}, far_el2", "mrs {}, hpfar_el2",
             out(reg) esr, out(reg) far, out(reg) hpfar, options(nomem, nostack))
    };
    (esr, far, hpfar)
}

/// EL2 exception classes (Arm ARM D24.2.40).
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_IABT_LOW: u64 = 0x20;
const EC_DABT_LOW: u64 = 0x24;

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
            console::event("hyp", |e| {
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
    console::event("hyp", |e| {
        e.str("state", "panic")
            .u64("vector", kind)
            .hex("esr", esr)
            .hex("far", far)
            .hex("elr", frame.elr)
    });
    console::event("done", |e| {
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

/// The hypercall table: (ID, init-only, handler). Dense: the ID minus [`hvc::FIRST`] indexes it.
type Hcall = fn(&mut Frame);
const HCALLS: [(u64, bool, Hcall); 4] = [
    (hvc::STATE, false, hc_state),
    (hvc::INIT, true, hc_init),
    (hvc::FINALISE, true, hc_finalise),
    (hvc::FINALISE_CPU, false, hc_finalise_cpu),
];

fn hypercall(frame: &mut Frame) {
    let id = frame.x[0];
    let Some(&(hid, init_only, f)) = id
        .checked_sub(hvc::FIRST)
        .and_then(|i| HCALLS.get(i as usize))
    else {
        return ret(frame, &[hvc::NOT_SUPPORTED]);
    };
    debug_assert_eq!(hid, id);
    if init_only && FINALISED.load(Ordering::Acquire) {
        console::event("hyp", |e| {
            e.str("state", "refused")
                .hex("hvc", id)
                .str("reason", "init-only-after-finalise")
        });
        return ret(frame, &[hvc::DENIED]);
    }
    f(frame)
}

fn hc_state(frame: &mut Frame) {
    let installed = STATE.lock().is_some();
    ret(
        frame,
        &[
            0,
            u64::from(installed),
            u64::from(FINALISED.load(Ordering::Acquire)),
            FAULTS.load(Ordering::Relaxed),
        ],
    );
}

fn hc_init(frame: &mut Frame) {
    let mut st = STATE.lock();
    if st.is_some() {
        return ret(frame, &[hvc::DENIED]);
    }
    // SAFETY: before finalise the host is trusted (as in pKVM's __pkvm_init): x1 is the
    // kernel's `Config`, identity mapped; it is cloned into hyp memory and not read again.
    let cfg: Config = unsafe { (*(frame.x[1] as *const Config)).clone() };
    console::set_uart(cfg.uart);
    let mut carve = cfg.hyp.clone();
    carve.extend(cfg.secure.iter().copied());
    let own = Ownership::new(&cfg.ram, &carve);
    let proxy = Proxy::init(El3, own, cfg.ffa_tx, cfg.ffa_rx);
    let ffa = match proxy.firmware() {
        Ok(v) => alloc::format!("{v}"),
        Err(e) => alloc::format!("absent:{e:?}"),
    };
    let buffers = match (proxy.firmware(), proxy.buffers()) {
        (Err(_), _) => "none".into(),
        (Ok(_), Ok(())) => alloc::string::String::from("mapped"),
        (Ok(_), Err(e)) => alloc::format!("refused:{e:?}"),
    };
    console::event("hyp", |e| {
        e.str("state", "installed")
            .str("smc_trap", "on")
            .str("ffa", &ffa)
            .str("ffa_buffers", &buffers)
            .u64("cpus", cfg.cpus.len() as u64)
    });
    *st = Some(State {
        cfg,
        proxy,
        stage2: None,
        host_pages: None,
    });
    ret(frame, &[0]);
}

fn enable_stage2(vtcr: u64, vttbr: u64) {
    // SAFETY: VTCR/VTTBR describe the host stage-2 just built in hyp memory; setting HCR_EL2.VM
    // makes every host access go through it; the TLB is invalidated for the host's VMID.
    unsafe {
        asm!(
            "msr vtcr_el2, {vtcr}",
            "msr vttbr_el2, {vttbr}",
            "isb",
            "mrs {t}, hcr_el2",
            "orr {t}, {t}, #1",
            "msr hcr_el2, {t}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            vtcr = in(reg) vtcr,
            vttbr = in(reg) vttbr,
            t = out(reg) _,
            options(nostack)
        )
    };
}

fn hc_finalise(frame: &mut Frame) {
    let mut guard = STATE.lock();
    let Some(st) = guard.as_mut() else {
        return ret(frame, &[hvc::DENIED]);
    };
    let s2 = match stage2::HostStage2::build(&st.cfg, st.proxy.ownership()) {
        Ok(s) => s,
        Err(e) => {
            console::event("hyp", |w| {
                w.str("state", "finalise-failed").str("reason", e)
            });
            return ret(frame, &[hvc::NOT_SUPPORTED]);
        }
    };
    let (vtcr, vttbr) = (s2.vtcr, s2.vttbr());
    enable_stage2(vtcr, vttbr);
    // Secondary CPUs started from now on come up with the stage-2 on.
    st.cfg.install.vtcr = vtcr;
    st.cfg.install.vttbr = vttbr;
    st.cfg.install.hcr = st.cfg.hcr | 1;
    let summary = s2.summary;
    st.stage2 = Some(s2);
    FINALISED.store(true, Ordering::Release);
    console::event("hyp", |e| {
        e.str("state", "finalised")
            .u64("host_ram_ranges", summary.0)
            .u64("host_mmio_ranges", summary.1)
            .u64("hidden", summary.2)
    });
    ret(frame, &[0]);
}

fn hc_finalise_cpu(frame: &mut Frame) {
    if !FINALISED.load(Ordering::Acquire) {
        return ret(frame, &[hvc::DENIED]);
    }
    let (vtcr, vttbr) = {
        let g = STATE.lock();
        match g.as_ref().and_then(|s| s.stage2.as_ref()) {
            Some(s2) => (s2.vtcr, s2.vttbr()),
            None => return ret(frame, &[hvc::DENIED]),
        }
    };
    let on: u64;
    // SAFETY: reading HCR_EL2 has no side effects.
    unsafe { asm!("mrs {}, hcr_el2", out(reg) on, options(nomem, nostack)) };
    if on & 1 != 0 {
        return ret(frame, &[hvc::DENIED]);
    }
    enable_stage2(vtcr, vttbr);
    ret(frame, &[0]);
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
                            Err(e) => console::event("hyp", |w| {
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
                        console::event("hyp", |w| {
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
    let (target, entry, ctx) = (x[1] & 0xff_00ff_ffff, x[2], x[3]);
    let (idx, params) = {
        let g = STATE.lock();
        let Some(st) = g.as_ref() else {
            frame.x[..18].copy_from_slice(&forward_smc(x));
            return;
        };
        // A CPU the DT does not list, or more CPUs than the hyp has stacks for.
        let Some(i) = st
            .cfg
            .cpus
            .iter()
            .position(|m| *m == target)
            .filter(|i| *i < MAX_CPUS)
        else {
            return ret(frame, &[(-2i64) as u64]); // PSCI INVALID_PARAMETERS
        };
        (i, st.cfg.install)
    };
    let mut boots = CPU_BOOTS.lock();
    let b = &mut boots.0[idx];
    *b = InstallParams {
        sp: stack_top(idx),
        host_entry: entry,
        host_ctx: ctx,
        ..params
    };
    let pa = b as *const InstallParams as u64;
    clean_to_poc(pa, size_of::<InstallParams>() as u64);
    drop(boots);
    unsafe extern "C" {
        fn hyp_secondary_entry();
    }
    // Reported before the forward: once the CPU runs, its own output may follow at once, and
    // the hyp shares no console lock with the host.
    console::event("hyp", |e| {
        e.str("state", "cpu-on")
            .hex("target", target)
            .hex("host_entry", entry)
    });
    let mut fwd = *x;
    fwd[2] = hyp_secondary_entry as *const () as u64;
    fwd[3] = pa;
    let r = forward_smc(&fwd);
    frame.x[..18].copy_from_slice(&r);
}

fn clean_to_poc(base: u64, len: u64) {
    let mut a = base & !63;
    while a < base + len {
        // SAFETY: DC CVAC writes a cache line back; memory contents are unchanged.
        unsafe { asm!("dc cvac, {}", in(reg) a, options(nostack)) };
        a += 64;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
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
    FAULTS.fetch_add(1, Ordering::Relaxed);
    console::event("hyp", |e| {
        e.str("state", "fault")
            .hex("ipa", ipa)
            .hex("esr", esr)
            .hex("elr", frame.elr)
            .hex("cpu", mpidr())
    });
    inject_abort(frame, esr, far);
}

/// Injects a synchronous external abort into the host at EL1: the exception the host would
/// take, with ESR_EL1 built from the EL2 syndrome (same class, current-EL form, external
/// abort status) and FAR_EL1 = the faulting address.
fn inject_abort(frame: &mut Frame, esr: u64, far: u64) {
    let ec = match esr >> 26 {
        EC_IABT_LOW => 0x21,
        _ => 0x25,
    };
    // IL from the trap; ISS: WnR kept for data aborts, DFSC/IFSC = 0x10 (synchronous external
    // abort).
    let il = esr & (1 << 25);
    let wnr = if ec == 0x25 { esr & (1 << 6) } else { 0 };
    let esr1 = (ec << 26) | il | wnr | 0x10;
    let vbar: u64;
    // SAFETY: writes the EL1 exception registers the host's vector will read, and reads
    // VBAR_EL1; the frame's ELR/SPSR then send the host to its current-EL sync vector with
    // exceptions masked, exactly as a taken exception would.
    unsafe {
        asm!(
            "msr esr_el1, {esr}",
            "msr far_el1, {far}",
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "mrs {vbar}, vbar_el1",
            esr = in(reg) esr1,
            far = in(reg) far,
            elr = in(reg) frame.elr,
            spsr = in(reg) frame.spsr,
            vbar = out(reg) vbar,
            options(nostack)
        )
    };
    // From EL1h (SPSR.M = 0b0101) the vector is "current EL with SPx" (+0x200); from EL1t +0.
    let offset = if frame.spsr & 0xf == 0b0101 {
        0x200
    } else {
        0x0
    };
    frame.elr = vbar + offset;
    frame.spsr = 0x3c5;
}
