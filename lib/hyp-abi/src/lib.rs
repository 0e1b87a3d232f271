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
}

impl Hvc {
    /// Every hypercall, in ID order: the ID minus [`Hvc::FIRST`] is the index.
    pub const ALL: [Hvc; 5] = [
        Hvc::State,
        Hvc::Init,
        Hvc::Finalise,
        Hvc::FinaliseCpu,
        Hvc::LastFault,
    ];
    /// The first ID.
    pub const FIRST: u64 = Hvc::State as u64;

    /// The ID in x0.
    pub const fn id(self) -> u64 {
        self as u64
    }

    /// Refused once finalise has begun.
    pub const fn init_only(self) -> bool {
        matches!(self, Hvc::Init | Hvc::Finalise)
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
        assert!(Hvc::Init.init_only() && Hvc::Finalise.init_only());
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
