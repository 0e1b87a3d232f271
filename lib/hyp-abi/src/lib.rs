//! The hyp's hypercall ABI, shared by the hyp (EL2) and the kernel (EL1), and the hyp's
//! finalise bookkeeping.
//!
//! Owns: hypercall IDs (SMCCC vendor-hypervisor range, fast calls, SMC64: x0 = ID), the error
//! each call can return as a typed value ⇄ x0, which calls are init-only (Linux nVHE
//! `hcall_min`: refused once finalise has begun), and [`Finalise`], the rule that the hyp
//! calls itself finalised only when **every** CPU it started runs with the host stage-2 on
//! (pKVM runs `__pkvm_prot_finalize` on each CPU; a CPU without HCR_EL2.VM after finalise
//! would give an untrusted host the hyp's memory). Must not: touch hardware.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

/// Most CPUs the hyp serves (its stacks, per-CPU state and CPU masks).
pub const MAX_CPUS: usize = 8;

/// A hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Hvc {
    /// x1 = 1 installed, x2 = 1 finalised (every started CPU has stage-2 on), x3 = the mask of
    /// CPUs with stage-2 on. Never fails.
    State = 0xc600_0000,
    /// Init-only. x1 = the kernel's configuration (see the hyp). Errors: `Denied` (already
    /// initialised, or finalise has begun), `BadAddress` (x1 misaligned, null, wrapping or
    /// inside the hyp), `BadConfig` (the configuration does not hold together).
    Init = 0xc600_0001,
    /// Init-only. Builds the host stage-2 and turns it on on the calling CPU. x0 = 0, x1 = 1
    /// when that finished finalise (no other CPU was started), else 0. Errors: `Denied` (not
    /// initialised, or finalise has begun), `Failed` (the stage-2 could not be built).
    Finalise = 0xc600_0002,
    /// Turns the built stage-2 on on the calling CPU. x0 = 0, x1 = 1 when this was the last
    /// CPU. Errors: `NotReady` (no stage-2 built yet), `Denied` (already on for this CPU).
    FinaliseCpu = 0xc600_0003,
    /// This CPU's stage-2 faults: x1 = how many, x2 = the IPA of the last. Never fails.
    LastFault = 0xc600_0004,
    /// Init-only. Prepares a spin-table CPU (no PSCI; DT `enable-method = "spin-table"`) to
    /// enter under the hyp: x1 = its MPIDR, x2 = the host's entry, x3 = its context id (x0 at
    /// the entry, as PSCI CPU_ON). x0 = 0, x1 = the address the host writes to the CPU's
    /// `cpu-release-addr`: the hyp's spin-table entry, which finds the CPU's parameters by its
    /// MPIDR. Errors: `Denied` (not initialised, or finalise has begun: a CPU released after
    /// finalise would enter wherever the then-untrusted host said), `BadConfig` (the MPIDR is
    /// not one of the DT's CPUs, or is the calling CPU's).
    SpinCpu = 0xc600_0005,
}

impl Hvc {
    /// Every hypercall, in ID order: the ID minus [`Hvc::FIRST`] is the index.
    pub const ALL: [Hvc; 6] = [
        Hvc::State,
        Hvc::Init,
        Hvc::Finalise,
        Hvc::FinaliseCpu,
        Hvc::LastFault,
        Hvc::SpinCpu,
    ];
    /// The first ID.
    pub const FIRST: u64 = Hvc::State as u64;

    /// The ID in x0.
    pub const fn id(self) -> u64 {
        self as u64
    }

    /// Refused once finalise has begun.
    pub const fn init_only(self) -> bool {
        matches!(self, Hvc::Init | Hvc::Finalise | Hvc::SpinCpu)
    }

    /// The hypercall with ID `x0`, if any.
    pub fn from_id(x0: u64) -> Option<Hvc> {
        let i = usize::try_from(x0.checked_sub(Self::FIRST)?).ok()?;
        Self::ALL.get(i).copied()
    }
}

// The table is dense and in ID order (checked at compile time, not by a debug assertion).
const _: () = {
    let mut i = 0;
    while i < Hvc::ALL.len() {
        assert!(Hvc::ALL[i] as u64 == Hvc::FIRST + i as u64);
        i += 1;
    }
};

/// Why a hypercall was refused; x0 carries the negative value (SMCCC style: -1 is
/// NOT_SUPPORTED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum HvcError {
    /// No such hypercall.
    NotSupported = -1,
    /// Not allowed now (init-only after finalise began; a call that was already made).
    Denied = -3,
    /// A host address the call may not name.
    BadAddress = -4,
    /// The configuration is inconsistent.
    BadConfig = -5,
    /// The call's precondition is not met yet (finalise before a stage-2 exists).
    NotReady = -6,
    /// The hyp could not do it (out of memory for the stage-2, say).
    Failed = -7,
}

impl HvcError {
    /// Every error.
    pub const ALL: [HvcError; 6] = [
        HvcError::NotSupported,
        HvcError::Denied,
        HvcError::BadAddress,
        HvcError::BadConfig,
        HvcError::NotReady,
        HvcError::Failed,
    ];

    /// As x0.
    pub const fn to_x0(self) -> u64 {
        self as i64 as u64
    }

    /// From x0: `Ok(())` for 0, the error for a known code, `Err(None)` for anything else.
    pub fn check(x0: u64) -> Result<(), Option<HvcError>> {
        if x0 == 0 {
            return Ok(());
        }
        Err(Self::ALL.iter().copied().find(|e| e.to_x0() == x0))
    }

    /// Its name in events.
    pub const fn name(self) -> &'static str {
        match self {
            HvcError::NotSupported => "not-supported",
            HvcError::Denied => "denied",
            HvcError::BadAddress => "bad-address",
            HvcError::BadConfig => "bad-config",
            HvcError::NotReady => "not-ready",
            HvcError::Failed => "failed",
        }
    }
}

/// A set of CPU indices (bit `i` = CPU `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(pub u64);

impl CpuSet {
    /// Whether CPU `i` is in the set.
    pub const fn has(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
    /// How many CPUs.
    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }
    fn with(self, i: usize) -> CpuSet {
        CpuSet(self.0 | (1 << i))
    }
    /// The CPUs of `self` not in `other`.
    pub const fn minus(self, other: CpuSet) -> CpuSet {
        CpuSet(self.0 & !other.0)
    }
}

/// Where finalise stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// CPUs that were started still run without the stage-2.
    Pending(CpuSet),
    /// Every started CPU has the stage-2 on: the hyp is finalised.
    Complete,
}

/// Finalise across CPUs: which CPUs the hyp started, which have the stage-2 on, whether the
/// stage-2 exists. The hyp is finalised exactly when a stage-2 exists and every started CPU
/// has it on; init-only hypercalls are refused as soon as the stage-2 exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Finalise {
    started: CpuSet,
    on: CpuSet,
    built: bool,
}

impl Finalise {
    /// The hyp was installed on CPU `boot` (it runs the host there from now on).
    pub fn new(boot: usize) -> Result<Finalise, HvcError> {
        if boot >= MAX_CPUS {
            return Err(HvcError::BadConfig);
        }
        Ok(Finalise {
            started: CpuSet::default().with(boot),
            ..Finalise::default()
        })
    }

    /// CPU `i` is being started under the hyp (PSCI CPU_ON). After the stage-2 exists it
    /// enters with the stage-2 already on, which this records.
    pub fn cpu_started(&mut self, i: usize) -> Result<(), HvcError> {
        if i >= MAX_CPUS {
            return Err(HvcError::BadAddress);
        }
        self.started = self.started.with(i);
        if self.built {
            self.on = self.on.with(i);
        }
        Ok(())
    }

    /// The stage-2 was built and turned on on CPU `i` (the `Finalise` hypercall).
    pub fn built_on(&mut self, i: usize) -> Result<Progress, HvcError> {
        if self.built {
            return Err(HvcError::Denied);
        }
        if !self.started.has(i) {
            return Err(HvcError::Denied);
        }
        self.built = true;
        self.on = self.on.with(i);
        Ok(self.progress())
    }

    /// CPU `i` may turn the stage-2 on (the `FinaliseCpu` hypercall): checked before the
    /// hardware is touched.
    pub fn may_enable(&self, i: usize) -> Result<(), HvcError> {
        if !self.built {
            return Err(HvcError::NotReady);
        }
        if !self.started.has(i) || self.on.has(i) {
            return Err(HvcError::Denied);
        }
        Ok(())
    }

    /// CPU `i` turned the stage-2 on.
    pub fn enabled(&mut self, i: usize) -> Result<Progress, HvcError> {
        self.may_enable(i)?;
        self.on = self.on.with(i);
        Ok(self.progress())
    }

    /// Where finalise stands (`Pending` with every started CPU before the stage-2 exists).
    pub fn progress(&self) -> Progress {
        let missing = if self.built {
            self.started.minus(self.on)
        } else {
            self.started
        };
        if missing.0 == 0 {
            Progress::Complete
        } else {
            Progress::Pending(missing)
        }
    }

    /// Finalised: a stage-2 exists and every started CPU has it on.
    pub fn finalised(&self) -> bool {
        self.progress() == Progress::Complete
    }

    /// Init-only hypercalls are refused from the moment the stage-2 exists.
    pub fn allows_init_only(&self) -> bool {
        !self.built
    }

    /// CPUs with the stage-2 on.
    pub fn on(&self) -> CpuSet {
        self.on
    }

    /// CPUs started under the hyp.
    pub fn started(&self) -> CpuSet {
        self.started
    }
}

/// HVC function ID the kernel's boot stub answers before the hyp exists: x1 = the physical
/// address of an [`InstallParams`] (cleaned to the point of coherency: it is read with the
/// EL2 MMU off), x2 = the hyp's install entry ([`HypHeader::install`]), where the stub
/// branches with the MMU still off.
pub const HVC_STUB_INSTALL: u64 = 0xc600_ff00;

/// Per-CPU hyp stack size.
pub const STACK_SIZE: usize = 0x4000;

/// What the boot stub (and the hyp, for a CPU it starts) loads to run the hyp on a CPU.
/// The assembly that reads it takes its offsets from `offset_of!`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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
    /// SP_EL2.
    pub sp: u64,
    /// VTCR_EL2 (0 = no stage-2).
    pub vtcr: u64,
    /// VTTBR_EL2.
    pub vttbr: u64,
    /// Host entry (secondary CPUs).
    pub host_entry: u64,
    /// Host context id (secondary CPUs).
    pub host_ctx: u64,
    /// TPIDR_EL2: the CPU's index in the hyp.
    pub cpu: u64,
}

/// A physical range in the boot-info page.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

/// Most ranges of each kind the boot-info page carries.
pub const MAX_RAM: usize = 16;
/// See [`MAX_RAM`].
pub const MAX_MMIO: usize = 64;
/// See [`MAX_RAM`].
pub const MAX_SECURE: usize = 32;

/// "CATHYPBI".
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"CATHYPBI");

/// What the kernel tells the hyp at [`Hvc::Init`]: flat data in a page of the memory the
/// kernel gave the hyp (no pointers, no Rust objects), copied once and checked
/// ([`BootInfo::check`]) before anything is built from it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// Everything the kernel gave the hyp: its image at the start, then its pool.
    pub region: Span,
    /// The UART the hyp reports on (shared with the host's console).
    pub uart: u64,
    /// HCR_EL2 for the host.
    pub hcr: u64,
    /// The kernel's text and read-only data (read-only in the host stage-2).
    pub kernel_ro: Span,
    /// CPUs (MPIDRs), index = CPU number.
    pub n_cpus: u64,
    /// See `n_cpus`.
    pub cpus: [u64; MAX_CPUS],
    /// Host RAM.
    pub n_ram: u64,
    /// See `n_ram`.
    pub ram: [Span; MAX_RAM],
    /// MMIO the host may use.
    pub n_mmio: u64,
    /// See `n_mmio`.
    pub mmio: [Span; MAX_MMIO],
    /// Secure-only memory and devices.
    pub n_secure: u64,
    /// See `n_secure`.
    pub secure: [Span; MAX_SECURE],
    /// [`BootInfo::DENY_REQ2`], [`BootInfo::UART_BCM2835_AUX`], [`BootInfo::SMC_FIRMWARE`] and
    /// nothing else.
    pub flags: u64,
}

impl BootInfo {
    /// Test-only (the kernel sets it only from the test hook `catena.hyp_deny_req2`): the
    /// proxy refuses FFA_MSG_SEND_DIRECT_REQ2 and FFA_FEATURES says so, as pKVM in Linux 7.3
    /// still does.
    pub const DENY_REQ2: u64 = 1 << 0;
    /// The UART is a BCM2835 mini-UART (the Raspberry Pi's console), not a PL011.
    pub const UART_BCM2835_AUX: u64 = 1 << 1;
    /// A firmware answers SMCs (the DT's `/psci` has `method = "smc"`): the hyp forwards the
    /// host's SMCs and speaks FF-A to it. Without the flag it forwards nothing and answers
    /// SMCCC NOT_SUPPORTED itself.
    pub const SMC_FIRMWARE: u64 = 1 << 2;
}

impl Default for BootInfo {
    fn default() -> Self {
        BootInfo {
            magic: BOOT_INFO_MAGIC,
            region: Span::default(),
            uart: 0,
            hcr: 0,
            kernel_ro: Span::default(),
            n_cpus: 0,
            cpus: [0; MAX_CPUS],
            n_ram: 0,
            ram: [Span::default(); MAX_RAM],
            n_mmio: 0,
            mmio: [Span::default(); MAX_MMIO],
            n_secure: 0,
            secure: [Span::default(); MAX_SECURE],
            flags: 0,
        }
    }
}

/// Why a boot-info page was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Not a boot-info page.
    Magic,
    /// A count larger than its array.
    Count(&'static str),
    /// An empty or wrapping range.
    Range(&'static str),
    /// The region does not start at the hyp's own image, or is too small for it.
    Region,
    /// No CPU, or the UART is missing.
    Missing(&'static str),
    /// A flag this hyp does not know.
    Flags,
}

fn span_ok(s: &Span) -> bool {
    s.size > 0 && s.base.checked_add(s.size).is_some()
}

fn counted<'a, T>(n: u64, a: &'a [T], what: &'static str) -> Result<&'a [T], BootInfoError> {
    usize::try_from(n)
        .ok()
        .and_then(|n| a.get(..n))
        .ok_or(BootInfoError::Count(what))
}

impl BootInfo {
    /// Checks the page against the hyp's own image (`image_base`, `image_size` bytes):
    /// counts within their arrays, every range non-empty and not wrapping, the region
    /// starting at the image and holding it, at least one CPU, a UART. Returns the ranges in
    /// use.
    pub fn check(&self, image_base: u64, image_size: u64) -> Result<Checked<'_>, BootInfoError> {
        if self.magic != BOOT_INFO_MAGIC {
            return Err(BootInfoError::Magic);
        }
        if self.flags & !(BootInfo::DENY_REQ2 | BootInfo::UART_BCM2835_AUX | BootInfo::SMC_FIRMWARE)
            != 0
        {
            return Err(BootInfoError::Flags);
        }
        let cpus = counted(self.n_cpus, &self.cpus, "cpus")?;
        let ram = counted(self.n_ram, &self.ram, "ram")?;
        let mmio = counted(self.n_mmio, &self.mmio, "mmio")?;
        let secure = counted(self.n_secure, &self.secure, "secure")?;
        if cpus.is_empty() {
            return Err(BootInfoError::Missing("cpus"));
        }
        if self.uart == 0 {
            return Err(BootInfoError::Missing("uart"));
        }
        for (what, list) in [("ram", ram), ("mmio", mmio), ("secure", secure)] {
            if !list.iter().all(span_ok) {
                return Err(BootInfoError::Range(what));
            }
        }
        if ram.is_empty() {
            return Err(BootInfoError::Missing("ram"));
        }
        if !span_ok(&self.kernel_ro) {
            return Err(BootInfoError::Range("kernel_ro"));
        }
        if !span_ok(&self.region)
            || self.region.base != image_base
            || self.region.size <= image_size
        {
            return Err(BootInfoError::Region);
        }
        Ok(Checked {
            cpus,
            ram,
            mmio,
            secure,
        })
    }
}

/// A checked boot-info page's ranges.
#[derive(Debug)]
pub struct Checked<'a> {
    /// MPIDRs.
    pub cpus: &'a [u64],
    /// Host RAM.
    pub ram: &'a [Span],
    /// Host MMIO.
    pub mmio: &'a [Span],
    /// Secure-only ranges.
    pub secure: &'a [Span],
}

/// The hyp image's header, at its first byte (the hyp's `hyp/src/header.rs` writes it; the
/// kernel reads it before relocating the image). Offsets are from the image's start.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HypHeader {
    /// [`HYP_MAGIC`].
    pub magic: u64,
    /// Bytes the image takes in memory, .bss and stacks included (page multiple).
    pub image_size: u64,
    /// Bytes of the loadable file (the flat binary may stop short of it where its last
    /// section ends: what follows, up to `image_size`, is zero).
    pub file_size: u64,
    /// `.rela.dyn`: offset and size in bytes.
    pub rela_offset: u64,
    /// See `rela_offset`.
    pub rela_size: u64,
    /// The hyp's vectors (VBAR_EL2).
    pub vectors: u64,
    /// The per-CPU stacks (CPU i's top is `stacks + (i + 1) * STACK_SIZE`).
    pub stacks: u64,
    /// The hyp's FF-A TX and RX pages (for the kernel's probes: they must fault).
    pub ffa_buffers: u64,
    /// The install entry: entered from the stub at EL2 with the MMU off, x0 = the
    /// `InstallParams`; it turns its MMU on and returns to the host.
    pub install: u64,
}

/// "CATHYP\0\1".
pub const HYP_MAGIC: u64 = u64::from_le_bytes(*b"CATHYP\0\x01");

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Too short for its header, or not a hyp image.
    Header,
    /// A header offset outside the image.
    Layout,
    /// A relocation of a type other than R_AARCH64_RELATIVE, or outside the image.
    Relocation,
}

/// R_AARCH64_RELATIVE (ELF for the Arm 64-bit Architecture, "Dynamic relocations").
pub const R_AARCH64_RELATIVE: u64 = 1027;

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

impl HypHeader {
    /// Reads and checks the header of `file` (the flat image).
    pub fn parse(file: &[u8]) -> Result<HypHeader, ImageError> {
        let f = |i: usize| le64(file, i * 8).ok_or(ImageError::Header);
        let h = HypHeader {
            magic: f(0)?,
            image_size: f(1)?,
            file_size: f(2)?,
            rela_offset: f(3)?,
            rela_size: f(4)?,
            vectors: f(5)?,
            stacks: f(6)?,
            ffa_buffers: f(7)?,
            install: f(8)?,
        };
        if h.magic != HYP_MAGIC {
            return Err(ImageError::Header);
        }
        let inside = |o: u64, len: u64| o.checked_add(len).is_some_and(|e| e <= h.image_size);
        if file.len() as u64 > h.file_size
            || h.file_size > h.image_size
            || !h.image_size.is_multiple_of(4096)
            || !inside(h.rela_offset, h.rela_size)
            || h.rela_offset
                .checked_add(h.rela_size)
                .is_none_or(|e| e > h.file_size)
            || !h.rela_size.is_multiple_of(24)
            || !inside(h.vectors, 0x800)
            || !inside(h.stacks, (MAX_CPUS * STACK_SIZE) as u64)
            || !inside(h.ffa_buffers, 2 * 4096)
            || !inside(h.install, 4)
        {
            return Err(ImageError::Layout);
        }
        Ok(h)
    }
}

/// Applies the image's R_AARCH64_RELATIVE relocations for a load at `base`: `image` is the
/// image as it will run (at least `image_size` bytes). Anything else is refused before a byte
/// changes. Returns how many were applied.
pub fn relocate(image: &mut [u8], h: &HypHeader, base: u64) -> Result<usize, ImageError> {
    let (off, len) = (h.rela_offset as usize, h.rela_size as usize);
    let rela = image.get(off..off + len).ok_or(ImageError::Relocation)?;
    let mut fixes = alloc::vec::Vec::with_capacity(len / 24);
    for r in rela.chunks_exact(24) {
        let (Some(at), Some(info), Some(addend)) = (le64(r, 0), le64(r, 8), le64(r, 16)) else {
            return Err(ImageError::Relocation);
        };
        if info != R_AARCH64_RELATIVE
            || at.checked_add(8).is_none_or(|e| e > image.len() as u64)
            // One past the end is a valid pointer (`__hyp_image_end`).
            || addend > h.image_size
        {
            return Err(ImageError::Relocation);
        }
        fixes.push((at as usize, base.wrapping_add(addend)));
    }
    for &(at, v) in &fixes {
        image[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    Ok(fixes.len())
}

/// The EL2 translation tables the boot stub installs before the hyp builds its own
/// (pKVM's host-built hyp tables, replaced by `__pkvm_init`): 4 KiB granule, 39-bit VA from
/// level 1; the `region` the hyp runs in (2 MiB aligned, within one GiB) as normal memory,
/// executable, in 2 MiB blocks; the GiB holding the UART as device memory — or, when the UART
/// shares the region's GiB (the Raspberry Pi's peripherals sit in its first GiB, beside RAM),
/// the UART's 2 MiB block as device memory in the same level-2 table. `l2_pa` is where the
/// level-2 table will be. Returns (level 1, level 2).
pub fn early_tables(
    region: Span,
    uart: u64,
    l2_pa: u64,
) -> Result<([u64; 512], [u64; 512]), &'static str> {
    const GIB: u64 = 1 << 30;
    const BLOCK: u64 = 2 << 20;
    // Attribute index 0 = Device-nGnRE, 1 = Normal WB (`EL2_MAIR`); AP[1] (bit 6) is RES1 in
    // the EL2 regime; AF set; XN (bit 54) on the device block.
    const AF: u64 = 1 << 10;
    const SH_INNER: u64 = 3 << 8;
    const RES1: u64 = 1 << 6;
    const DEVICE_BLOCK: u64 = 0b01 | AF | RES1 | (1 << 54);
    const NORMAL_BLOCK: u64 = 0b01 | AF | RES1 | SH_INNER | (1 << 2);
    if !region.base.is_multiple_of(BLOCK) || !region.size.is_multiple_of(BLOCK) || region.size == 0
    {
        return Err("hyp region must be 2 MiB aligned");
    }
    let end = region
        .base
        .checked_add(region.size)
        .ok_or("hyp region wraps")?;
    if end > 1 << 39 || uart >= 1 << 39 {
        return Err("beyond the 39-bit space");
    }
    let g = region.base / GIB;
    if (end - 1) / GIB != g {
        return Err("hyp region crosses a GiB boundary");
    }
    let uart_block = uart / BLOCK * BLOCK;
    if uart / GIB == g && uart_block >= region.base && uart_block < end {
        return Err("the UART lies inside the hyp region");
    }
    if !l2_pa.is_multiple_of(4096) {
        return Err("level-2 table not page aligned");
    }
    let mut l1 = [0u64; 512];
    let mut l2 = [0u64; 512];
    if uart / GIB == g {
        l2[((uart_block % GIB) / BLOCK) as usize] = uart_block | DEVICE_BLOCK;
    } else {
        l1[(uart / GIB) as usize] = (uart / GIB * GIB) | DEVICE_BLOCK;
    }
    l1[g as usize] = l2_pa | 0b11;
    let mut a = region.base;
    while a < end {
        l2[((a % GIB) / BLOCK) as usize] = a | NORMAL_BLOCK;
        a += BLOCK;
    }
    Ok((l1, l2))
}

/// Where things are in the region the kernel gives the hyp (offsets from its start): the
/// image (`image_size` bytes), then the boot-info page, the stub's early level-1 and level-2
/// tables, then the pool the hyp allocates from (its own tables among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The boot-info page.
    pub boot_info: u64,
    /// The early level-1 table.
    pub early_l1: u64,
    /// The early level-2 table.
    pub early_l2: u64,
    /// The pool.
    pub pool: u64,
}

impl Layout {
    /// The layout after an image of `image_size` bytes (a page multiple).
    pub const fn new(image_size: u64) -> Layout {
        Layout {
            boot_info: image_size,
            early_l1: image_size + 0x1000,
            early_l2: image_size + 0x2000,
            pool: image_size + 0x3000,
        }
    }
}

/// MAIR_EL2: index 0 Device-nGnRE, index 1 Normal write-back read/write-allocate.
pub const EL2_MAIR: u64 = 0x04 | (0xff << 8);
/// SCTLR_EL2 with the MMU and caches on: RES1 bits, M, C, SA, I.
pub const EL2_SCTLR: u64 = 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12);

/// TCR_EL2 (non-VHE) for a 39-bit space from level 1: T0SZ 25, inner/outer write-back walks,
/// inner shareable, 4 KiB granule, PS = `pa_range` (ID_AA64MMFR0_EL1.PARange, at most 48
/// bits), RES1 bits 31 and 23.
pub const fn el2_tcr(pa_range: u64) -> u64 {
    let ps = if pa_range > 5 { 5 } else { pa_range };
    25 | (1 << 8) | (1 << 10) | (3 << 12) | (ps << 16) | (1 << 23) | (1 << 31)
}

/// An abort the hyp gives the host in place of a stage-2 fault: what the host's EL1 sees, as
/// if the access had hit an external abort with no hyp in the way (Arm ARM D1.10 "Exception
/// entry"; ESR layout D24.2.40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// ESR_EL1: the current-EL form of the trapped class (data 0x24 -> 0x25, instruction
    /// 0x20 -> 0x21), IL from the trap, WnR kept for data aborts, FSC 0x10 (synchronous
    /// external abort, not on a table walk).
    pub esr_el1: u64,
    /// Offset of the host's vector from VBAR_EL1: "current EL with SPx" (+0x200) when the
    /// host ran at EL1h, "current EL with SP0" (+0) at EL1t.
    pub vector_offset: u64,
    /// SPSR the host enters its vector with: EL1h, DAIF masked.
    pub spsr: u64,
}

/// Exception classes of aborts from a lower EL (what the hyp traps).
pub const EC_IABT_LOW: u64 = 0x20;
/// See [`EC_IABT_LOW`].
pub const EC_DABT_LOW: u64 = 0x24;

/// The abort to inject for a stage-2 fault with syndrome `esr_el2`, taken from the host
/// running with `spsr` (SPSR_EL2 at the trap).
pub fn inject(esr_el2: u64, spsr: u64) -> Injection {
    let ec = match esr_el2 >> 26 {
        EC_IABT_LOW => 0x21,
        _ => 0x25,
    };
    let il = esr_el2 & (1 << 25);
    let wnr = if ec == 0x25 { esr_el2 & (1 << 6) } else { 0 };
    Injection {
        esr_el1: (ec << 26) | il | wnr | 0x10,
        vector_offset: if spsr & 0xf == 0b0101 { 0x200 } else { 0 },
        spsr: 0x3c5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_info() -> BootInfo {
        let mut b = BootInfo {
            region: Span {
                base: 0x4060_0000,
                size: 0x80_0000,
            },
            uart: 0x0900_0000,
            hcr: 1 << 31,
            kernel_ro: Span {
                base: 0x4020_0000,
                size: 0x10_0000,
            },
            n_cpus: 2,
            n_ram: 1,
            ..BootInfo::default()
        };
        b.cpus[1] = 1;
        b.ram[0] = Span {
            base: 0x4000_0000,
            size: 0x4000_0000,
        };
        b
    }

    #[test]
    fn a_boot_info_page_is_checked_before_it_is_used() {
        let b = boot_info();
        let c = b.check(0x4060_0000, 0x10_0000).unwrap();
        assert_eq!(c.cpus, [0, 1]);
        assert_eq!(c.ram.len(), 1);
        let bad = |f: &dyn Fn(&mut BootInfo)| {
            let mut x = boot_info();
            f(&mut x);
            x.check(0x4060_0000, 0x10_0000).err()
        };
        assert_eq!(bad(&|b| b.magic = 0), Some(BootInfoError::Magic));
        assert_eq!(bad(&|b| b.n_cpus = 9), Some(BootInfoError::Count("cpus")));
        assert_eq!(
            bad(&|b| b.n_mmio = u64::MAX),
            Some(BootInfoError::Count("mmio"))
        );
        assert_eq!(bad(&|b| b.n_cpus = 0), Some(BootInfoError::Missing("cpus")));
        assert_eq!(bad(&|b| b.uart = 0), Some(BootInfoError::Missing("uart")));
        assert_eq!(
            bad(&|b| b.ram[0].size = 0),
            Some(BootInfoError::Range("ram"))
        );
        assert_eq!(
            bad(&|b| {
                b.n_secure = 1;
                b.secure[0] = Span {
                    base: u64::MAX,
                    size: 2,
                }
            }),
            Some(BootInfoError::Range("secure"))
        );
        assert_eq!(
            bad(&|b| b.region.base += 0x1000),
            Some(BootInfoError::Region)
        );
        assert_eq!(
            bad(&|b| b.region.size = 0x10_0000),
            Some(BootInfoError::Region)
        );
    }

    fn image_with(relas: &[(u64, u64, u64)]) -> alloc::vec::Vec<u8> {
        let mut f = alloc::vec![0u8; 0x3000];
        // Header: nine u64 words.
        let rela_off = 0x2000u64;
        let h = [
            HYP_MAGIC,
            0x1_0000 + (MAX_CPUS * STACK_SIZE) as u64,
            0x3000,
            rela_off,
            (relas.len() * 24) as u64,
            0x800,
            0x1_0000,
            0x1000,
            0x900,
        ];
        for (i, v) in h.iter().enumerate() {
            f[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        for (i, (at, info, add)) in relas.iter().enumerate() {
            let o = rela_off as usize + i * 24;
            f[o..o + 8].copy_from_slice(&at.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&info.to_le_bytes());
            f[o + 16..o + 24].copy_from_slice(&add.to_le_bytes());
        }
        f
    }

    #[test]
    fn the_image_is_relocated_only_by_relative_relocations_inside_it() {
        let end = 0x1_0000 + (MAX_CPUS * STACK_SIZE) as u64;
        let file = image_with(&[
            (0x1000, R_AARCH64_RELATIVE, 0x800),
            (0x1008, R_AARCH64_RELATIVE, 0x40),
            (0x1010, R_AARCH64_RELATIVE, end),
        ]);
        let h = HypHeader::parse(&file).unwrap();
        let mut img = file.clone();
        img.resize(h.image_size as usize, 0);
        assert_eq!(relocate(&mut img, &h, 0x4060_0000), Ok(3));
        assert_eq!(
            le64(&img, 0x1010),
            Some(0x4060_0000 + end),
            "one past the end"
        );
        assert_eq!(le64(&img, 0x1000), Some(0x4060_0800));
        assert_eq!(le64(&img, 0x1008), Some(0x4060_0040));
        // Another relocation type, a target outside, an addend outside: nothing changes.
        for bad in [
            [(0x1000, R_AARCH64_RELATIVE, 0x800), (0x1008, 257, 0)],
            [
                (0x1000, R_AARCH64_RELATIVE, 0x800),
                (u64::MAX - 4, R_AARCH64_RELATIVE, 0),
            ],
            [
                (0x1000, R_AARCH64_RELATIVE, 0x800),
                (0x1008, R_AARCH64_RELATIVE, u64::MAX),
            ],
        ] {
            let file = image_with(&bad);
            let h = HypHeader::parse(&file).unwrap();
            let mut img = file.clone();
            img.resize(h.image_size as usize, 0);
            let before = img.clone();
            assert_eq!(
                relocate(&mut img, &h, 0x4060_0000),
                Err(ImageError::Relocation)
            );
            assert_eq!(img, before);
        }
        // Headers that do not add up.
        assert_eq!(HypHeader::parse(&[0; 16]), Err(ImageError::Header));
        let mut f = image_with(&[]);
        f[0] = 0;
        assert_eq!(HypHeader::parse(&f), Err(ImageError::Header));
        let mut f = image_with(&[]);
        f[8 * 6..8 * 7].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(HypHeader::parse(&f), Err(ImageError::Layout));
        let mut f = image_with(&[]);
        f.push(0);
        assert_eq!(
            HypHeader::parse(&f),
            Err(ImageError::Layout),
            "file size differs"
        );
    }

    #[test]
    fn the_early_tables_map_the_region_and_the_uart_only() {
        let region = Span {
            base: 0x4060_0000,
            size: 0x40_0000,
        };
        let (l1, l2) = early_tables(region, 0x0900_0000, 0x4070_0000).unwrap();
        assert_eq!(l1[0] & !0xfff & ((1 << 48) - 1), 0, "GiB 0 as a block");
        assert_eq!(l1[0] & 3, 1);
        assert_eq!(l1[0] >> 54 & 1, 1, "device: never executable");
        assert_eq!(l1[1], 0x4070_0000 | 3);
        assert_eq!(l1.iter().filter(|e| **e != 0).count(), 2);
        let blocks: alloc::vec::Vec<u64> = l2
            .iter()
            .filter(|e| **e != 0)
            .map(|e| e & !0x1f_ffff & ((1 << 48) - 1))
            .collect();
        assert_eq!(blocks, [0x4060_0000, 0x4080_0000]);
        assert!(
            early_tables(
                Span {
                    base: 0x4060_1000,
                    size: 0x20_0000
                },
                0x0900_0000,
                0
            )
            .is_err()
        );
        assert!(
            early_tables(
                Span {
                    base: 0x7fe0_0000,
                    size: 0x40_0000
                },
                0x0900_0000,
                0
            )
            .is_err()
        );
        // A UART inside the region is refused; one in the region's GiB but outside it (the
        // Raspberry Pi: RAM and peripherals share GiB 0) gets its 2 MiB block in level 2.
        assert!(early_tables(region, 0x4060_0000 + 0x1000, 0x4070_0000).is_err());
        let pi_region = Span {
            base: 0x0260_0000,
            size: 0x80_0000,
        };
        let (l1, l2) = early_tables(pi_region, 0x3f21_5040, 0x02d0_0000).unwrap();
        assert_eq!(l1.iter().filter(|e| **e != 0).count(), 1);
        assert_eq!(l1[0], 0x02d0_0000 | 3);
        let uart = l2[0x3f20_0000 / (2 << 20)];
        assert_eq!(uart & !0x1f_ffff & ((1 << 48) - 1), 0x3f20_0000);
        assert_eq!(uart >> 54 & 1, 1, "device: never executable");
        assert_eq!(uart >> 2 & 7, 0, "Device-nGnRE attribute index");
        assert_eq!(l2.iter().filter(|e| **e != 0).count(), 4 + 1);
    }

    #[test]
    fn stage2_faults_become_external_aborts_at_the_host_s_current_el() {
        // A write by the host at EL1h, stage-2 translation fault level 3 (DFSC 0x07), IL=1.
        let dabt = (EC_DABT_LOW << 26) | (1 << 25) | (1 << 6) | 0x07;
        let i = inject(dabt, 0x3c5);
        assert_eq!(i.esr_el1 >> 26, 0x25, "data abort, current EL");
        assert_eq!(i.esr_el1 & (1 << 25), 1 << 25, "IL kept");
        assert_eq!(i.esr_el1 & (1 << 6), 1 << 6, "WnR kept");
        assert_eq!(i.esr_el1 & 0x3f, 0x10, "synchronous external abort");
        assert_eq!(i.vector_offset, 0x200);
        assert_eq!(i.spsr, 0x3c5);
        // A read: WnR clear stays clear; this is what the decoded report calls external-abort.
        assert_eq!(inject(dabt & !(1 << 6), 0x3c5).esr_el1 & (1 << 6), 0);
        // An instruction fetch from EL1t: instruction abort, never WnR, the SP0 vector.
        let iabt = (EC_IABT_LOW << 26) | (1 << 25) | (1 << 6) | 0x07;
        let i = inject(iabt, 0x3c4);
        assert_eq!(i.esr_el1 >> 26, 0x21);
        assert_eq!(i.esr_el1 & (1 << 6), 0);
        assert_eq!(i.vector_offset, 0);
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_none() {
        for h in Hvc::ALL {
            assert_eq!(Hvc::from_id(h.id()), Some(h));
        }
        assert_eq!(Hvc::from_id(Hvc::FIRST - 1), None);
        assert_eq!(Hvc::from_id(Hvc::FIRST + Hvc::ALL.len() as u64), None);
        assert_eq!(Hvc::from_id(u64::MAX), None);
        assert!(Hvc::Init.init_only() && Hvc::Finalise.init_only() && Hvc::SpinCpu.init_only());
        assert!(!Hvc::State.init_only() && !Hvc::FinaliseCpu.init_only());
        assert!(!Hvc::LastFault.init_only());
    }

    #[test]
    fn errors_round_trip_through_x0() {
        for e in HvcError::ALL {
            assert_eq!(HvcError::check(e.to_x0()), Err(Some(e)));
        }
        assert_eq!(HvcError::check(0), Ok(()));
        assert_eq!(HvcError::check(0x1234), Err(None));
        assert_eq!(HvcError::NotSupported.to_x0(), u64::MAX);
    }

    #[test]
    fn finalised_only_when_every_started_cpu_has_stage2() {
        let mut f = Finalise::new(0).unwrap();
        f.cpu_started(1).unwrap();
        f.cpu_started(2).unwrap();
        assert!(!f.finalised());
        assert!(f.allows_init_only());
        assert_eq!(f.may_enable(1), Err(HvcError::NotReady));
        assert_eq!(f.built_on(0), Ok(Progress::Pending(CpuSet(0b110))));
        assert!(!f.finalised());
        assert!(!f.allows_init_only());
        assert_eq!(f.enabled(2), Ok(Progress::Pending(CpuSet(0b010))));
        assert!(!f.finalised(), "CPU 1 still runs without stage-2");
        assert_eq!(f.enabled(1), Ok(Progress::Complete));
        assert!(f.finalised());
        assert_eq!(f.on(), CpuSet(0b111));
    }

    #[test]
    fn finalise_cannot_be_repeated_or_skipped() {
        let mut f = Finalise::new(1).unwrap();
        assert_eq!(
            f.built_on(0),
            Err(HvcError::Denied),
            "CPU 0 was never started"
        );
        assert_eq!(f.built_on(1), Ok(Progress::Complete));
        assert_eq!(f.built_on(1), Err(HvcError::Denied), "a second stage-2");
        assert_eq!(f.enabled(1), Err(HvcError::Denied), "already on");
        assert_eq!(f.enabled(3), Err(HvcError::Denied), "not started");
        assert_eq!(f.cpu_started(MAX_CPUS), Err(HvcError::BadAddress));
        assert!(Finalise::new(MAX_CPUS).is_err());
    }

    #[test]
    fn cpus_started_after_the_stage2_exists_come_up_with_it() {
        let mut f = Finalise::new(0).unwrap();
        assert_eq!(f.built_on(0), Ok(Progress::Complete));
        f.cpu_started(1).unwrap();
        assert!(f.finalised());
        assert_eq!(f.enabled(1), Err(HvcError::Denied));
    }
}
