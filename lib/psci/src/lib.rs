//! The EL3 side of PSCI 1.1 (Arm DEN0022) and the SMCCC 1.2 architecture calls (DEN0028).
//!
//! Owns the power state of each CPU and the answer to every PSCI/SMCCC function ID, with the
//! spec's return codes. It decides; the firmware acts: [`Psci::handle`] returns an [`Action`]
//! (return these registers, start a CPU, park the caller, power off, reset) and never touches
//! hardware, so every path is tested on the host.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use smccc::psci::error::{
    ALREADY_ON, DENIED, INVALID_ADDRESS, INVALID_PARAMETERS, NOT_SUPPORTED, ON_PENDING,
};
use smccc::psci::*;

/// SMCCC_VERSION function ID (DEN0028 §7.2).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// SMCCC_ARCH_FEATURES function ID (DEN0028 §7.3).
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
/// SMCCC version we implement: 1.2 (major << 16 | minor).
pub const SMCCC_VERSION_1_2: u64 = 0x1_0002;
/// PSCI version we implement: 1.1.
pub const PSCI_VERSION_1_1: u64 = 0x1_0001;
/// MIGRATE_INFO_TYPE: "Trusted OS is not present or does not require migration" (DEN0022 §5.8).
pub const MIGRATE_NOT_REQUIRED: u64 = 2;

/// AFFINITY_INFO answers (DEN0022 §5.7).
pub const AFF_ON: u64 = 0;
/// Off.
pub const AFF_OFF: u64 = 1;
/// On pending.
pub const AFF_ON_PENDING: u64 = 2;

/// A CPU's power state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CpuState {
    /// Off (parked in the firmware).
    Off,
    /// CPU_ON accepted; the CPU has not entered the normal world yet.
    OnPending {
        /// Normal-world entry point.
        entry: u64,
        /// Context id for x0.
        context: u64,
    },
    /// Running in the normal world.
    On,
}

/// What the firmware must do after a call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return to the caller with x0-x3 (rest preserved or zeroed by the caller's convention).
    Return([u64; 4]),
    /// Return SUCCESS to the caller, and release CPU `target` to `entry` with x0 = `context`.
    StartCpu {
        /// CPU index to release.
        target: usize,
        /// Entry point.
        entry: u64,
        /// Context id.
        context: u64,
    },
    /// The calling CPU is now off: park it.
    ParkCaller,
    /// Wait for an interrupt on the calling CPU, then return SUCCESS (standby suspend).
    Standby,
    /// Power the system off.
    SystemOff,
    /// Reset the system.
    SystemReset,
}

/// A normal-world RAM range (CPU_ON entry points must land in one).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NsRange {
    /// Base.
    pub base: u64,
    /// Size.
    pub size: u64,
}

/// PSCI state for the whole system.
#[derive(Debug)]
pub struct Psci {
    mpidrs: Vec<u64>,
    states: Vec<CpuState>,
    ns_ram: Vec<NsRange>,
}

fn ret(v: i64) -> Action {
    Action::Return([v as u64, 0, 0, 0])
}

fn err(code: i32) -> Action {
    ret(i64::from(code))
}

/// The affinity bits of an MPIDR (Aff3 | Aff2 | Aff1 | Aff0).
pub const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

impl Psci {
    /// A system of CPUs with these MPIDRs (index 0 is the boot CPU, already on), booting a
    /// normal world that lives in `ns_ram`.
    pub fn new(mpidrs: &[u64], ns_ram: &[NsRange]) -> Self {
        let mut states = alloc::vec![CpuState::Off; mpidrs.len()];
        if let Some(s) = states.first_mut() {
            *s = CpuState::On;
        }
        Psci {
            mpidrs: mpidrs.iter().map(|m| m & MPIDR_AFF_MASK).collect(),
            states,
            ns_ram: ns_ram.to_vec(),
        }
    }

    /// The index of the CPU with this MPIDR.
    pub fn index_of(&self, mpidr: u64) -> Option<usize> {
        self.mpidrs
            .iter()
            .position(|m| *m == mpidr & MPIDR_AFF_MASK)
    }

    /// A CPU's state.
    pub fn state(&self, index: usize) -> Option<CpuState> {
        self.states.get(index).copied()
    }

    /// Called by a released CPU as it enters the normal world: its entry and context.
    pub fn cpu_entering(&mut self, index: usize) -> Option<(u64, u64)> {
        match self.states.get(index)? {
            CpuState::OnPending { entry, context } => {
                let r = (*entry, *context);
                self.states[index] = CpuState::On;
                Some(r)
            }
            _ => None,
        }
    }

    fn entry_valid(&self, entry: u64) -> bool {
        entry.is_multiple_of(4)
            && self
                .ns_ram
                .iter()
                .any(|r| entry >= r.base && entry < r.base.saturating_add(r.size))
    }

    /// Whether a function ID is a PSCI or SMCCC architecture call this module answers.
    pub fn owns(fid: u32) -> bool {
        // Standard service calls 0x00-0x1f (PSCI), both conventions; SMCCC arch calls.
        let fid = fid & !(1 << 16); // SMCCC 1.3 SVE hint bit
        matches!(fid & 0xffff_ffe0, 0x8400_0000 | 0xc400_0000) || fid & 0xffff_ff00 == 0x8000_0000
    }

    /// Answers a call from CPU `caller` with registers `x` (x0 = function ID).
    pub fn handle(&mut self, caller: usize, x: &[u64; 8]) -> Action {
        let fid = (x[0] as u32) & !(1 << 16);
        let smc64 = fid & (1 << 30) != 0;
        // SMC32 arguments are the low 32 bits (DEN0028 §2.6).
        let arg = |i: usize| if smc64 { x[i] } else { x[i] & 0xffff_ffff };
        match fid {
            SMCCC_VERSION => ret(SMCCC_VERSION_1_2 as i64),
            SMCCC_ARCH_FEATURES => match arg(1) as u32 {
                SMCCC_VERSION | SMCCC_ARCH_FEATURES => ret(0),
                // ARCH_WORKAROUND_1/2/3, ARCH_SOC_ID: not implemented.
                _ => err(NOT_SUPPORTED),
            },
            PSCI_VERSION => ret(PSCI_VERSION_1_1 as i64),
            PSCI_FEATURES => {
                let q = arg(1) as u32;
                if Self::implemented(q) {
                    // CPU_SUSPEND: original power_state format, no OS-initiated mode: 0.
                    ret(0)
                } else {
                    err(NOT_SUPPORTED)
                }
            }
            PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => self.cpu_on(arg(1), arg(2), arg(3)),
            PSCI_CPU_OFF => match self.states.get_mut(caller) {
                Some(s @ CpuState::On) => {
                    *s = CpuState::Off;
                    Action::ParkCaller
                }
                _ => err(DENIED),
            },
            PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => {
                if arg(2) != 0 {
                    return err(INVALID_PARAMETERS); // only affinity level 0 exists here
                }
                match self.index_of(arg(1)).map(|i| self.states[i]) {
                    Some(CpuState::On) => ret(AFF_ON as i64),
                    Some(CpuState::Off) => ret(AFF_OFF as i64),
                    Some(CpuState::OnPending { .. }) => ret(AFF_ON_PENDING as i64),
                    None => err(INVALID_PARAMETERS),
                }
            }
            PSCI_CPU_SUSPEND_32 | PSCI_CPU_SUSPEND_64 => {
                // Original format (DEN0022 §5.4.2): StateType bit 16 (0 = standby), PowerLevel
                // bits 25:24, StateID bits 15:0. Only level-0 standby with StateID 0 exists.
                if arg(1) == 0 {
                    Action::Standby
                } else {
                    err(INVALID_PARAMETERS)
                }
            }
            PSCI_MIGRATE_INFO_TYPE => ret(MIGRATE_NOT_REQUIRED as i64),
            PSCI_SYSTEM_OFF => Action::SystemOff,
            PSCI_SYSTEM_RESET => Action::SystemReset,
            _ => err(NOT_SUPPORTED),
        }
    }

    /// Whether PSCI_FEATURES should report `fid` as implemented.
    pub fn implemented(fid: u32) -> bool {
        matches!(
            fid,
            PSCI_VERSION
                | PSCI_FEATURES
                | PSCI_CPU_ON_32
                | PSCI_CPU_ON_64
                | PSCI_CPU_OFF
                | PSCI_CPU_SUSPEND_32
                | PSCI_CPU_SUSPEND_64
                | PSCI_AFFINITY_INFO_32
                | PSCI_AFFINITY_INFO_64
                | PSCI_MIGRATE_INFO_TYPE
                | PSCI_SYSTEM_OFF
                | PSCI_SYSTEM_RESET
                | SMCCC_VERSION
        )
    }

    fn cpu_on(&mut self, target: u64, entry: u64, context: u64) -> Action {
        let Some(i) = self.index_of(target) else {
            return err(INVALID_PARAMETERS);
        };
        if target & !MPIDR_AFF_MASK != 0 {
            return err(INVALID_PARAMETERS);
        }
        match self.states[i] {
            CpuState::On => return err(ALREADY_ON),
            CpuState::OnPending { .. } => return err(ON_PENDING),
            CpuState::Off => {}
        }
        if !self.entry_valid(entry) {
            return err(INVALID_ADDRESS);
        }
        self.states[i] = CpuState::OnPending { entry, context };
        Action::StartCpu {
            target: i,
            entry,
            context,
        }
    }
}

#[cfg(test)]
mod tests;
