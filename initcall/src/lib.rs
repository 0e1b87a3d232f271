//! Initcall levels, registration and the level-by-level runner.
//!
//! This crate owns the *order* of boot: the twelve levels in Linux's order
//! (`include/linux/init.h`: early, pure, core, postcore, arch, subsys, fs, rootfs, device,
//! device_sync, late, late_sync), the [`initcall!`] registration macro, the check that every
//! declared need is met by a strictly earlier level, and the [`run`] loop that executes calls
//! level by level and reports each result through an [`Observer`].
//!
//! It must not know what any initcall does, and it never depends on link order: calls inside a
//! level are sorted by name, so two calls in one level may not depend on each other at all.
//!
//! Needs are checked twice. At build time, [`initcall!`] refers to each need by the *constant*
//! of the other initcall and a `const` assertion rejects a need on the same or a later level,
//! so such an image does not compile:
//!
//! ```
//! fn a() -> Result<(), initcall::InitError> { Ok(()) }
//! fn b() -> Result<(), initcall::InitError> { Ok(()) }
//! initcall::initcall!(A = subsys("a") => a);
//! // B needs A, which runs on an earlier level: accepted.
//! initcall::initcall!(B = device("b", after [A]) => b);
//! assert_eq!(B.after, &["a"]);
//! ```
//!
//! ```compile_fail
//! fn a() -> Result<(), initcall::InitError> { Ok(()) }
//! fn b() -> Result<(), initcall::InitError> { Ok(()) }
//! initcall::initcall!(A = device("a") => a);
//! // B is on the same level as its need A: rejected by the compiler.
//! initcall::initcall!(B = device("b", after [A]) => b);
//! ```
//!
//! At boot, [`plan`] validates the registered set again (unique names, needs that exist and are
//! strictly earlier) so that a table built by other means is held to the same rule.
#![no_std]
// `linkme` places each registration in a link section, which Rust counts as unsafe code;
// that is the only exception, allowed where the macro expands.
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

#[doc(hidden)]
pub use linkme;

/// The initcall levels, in the order they run (Linux `include/linux/init.h`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// Before anything else: console, DT, memory.
    Early = 0,
    /// Pure initialisation with no dependencies.
    Pure,
    /// Core kernel facilities.
    Core,
    /// Right after core.
    Postcore,
    /// Architecture: exceptions, interrupt controller, timers, CPUs.
    Arch,
    /// Subsystems and buses.
    Subsys,
    /// Filesystems.
    Fs,
    /// Root filesystem.
    Rootfs,
    /// Device drivers and devices.
    Device,
    /// Synchronisation point after devices (pKVM finalises here).
    DeviceSync,
    /// Late work: the deferred probe flush.
    Late,
    /// Synchronisation point after late (UEFI certificates, IMA).
    LateSync,
}

impl Level {
    /// Every level, in run order.
    pub const ALL: [Level; 12] = [
        Level::Early,
        Level::Pure,
        Level::Core,
        Level::Postcore,
        Level::Arch,
        Level::Subsys,
        Level::Fs,
        Level::Rootfs,
        Level::Device,
        Level::DeviceSync,
        Level::Late,
        Level::LateSync,
    ];

    /// The level's name as Linux spells it (also the name used in `@event` lines).
    pub const fn name(self) -> &'static str {
        match self {
            Level::Early => "early",
            Level::Pure => "pure",
            Level::Core => "core",
            Level::Postcore => "postcore",
            Level::Arch => "arch",
            Level::Subsys => "subsys",
            Level::Fs => "fs",
            Level::Rootfs => "rootfs",
            Level::Device => "device",
            Level::DeviceSync => "device_sync",
            Level::Late => "late",
            Level::LateSync => "late_sync",
        }
    }

    /// Parses a level name.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Position in run order (0 = early).
    pub const fn index(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an initcall failed. The reason is a short stable word, the detail free text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitError {
    /// Stable, machine-readable reason (one word, `a-z0-9-`).
    pub reason: &'static str,
    /// Whether the boot cannot go on after this failure.
    pub fatal: bool,
}

impl InitError {
    /// A failure the boot survives (the subsystem is unavailable).
    pub const fn soft(reason: &'static str) -> Self {
        Self {
            reason,
            fatal: false,
        }
    }

    /// A failure that ends the boot.
    pub const fn fatal(reason: &'static str) -> Self {
        Self {
            reason,
            fatal: true,
        }
    }
}

/// The function an initcall runs.
pub type InitFn = fn() -> Result<(), InitError>;

/// One registered initcall.
#[derive(Clone, Copy)]
pub struct Initcall {
    /// Unique name (used in events and in other calls' needs).
    pub name: &'static str,
    /// Level it runs at.
    pub level: Level,
    /// Names of initcalls that must have run before this one, on strictly earlier levels.
    pub after: &'static [&'static str],
    /// The call.
    pub func: InitFn,
}

impl fmt::Debug for Initcall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initcall")
            .field("name", &self.name)
            .field("level", &self.level)
            .field("after", &self.after)
            .finish()
    }
}

/// The build-time rule: a need must sit on a strictly earlier level.
pub const fn need_is_satisfiable(call: Level, need: Level) -> bool {
    need.index() < call.index()
}

/// The registered initcalls of the image (filled by [`initcall!`] through `linkme`).
#[allow(unsafe_code)] // link section of the distributed slice
#[linkme::distributed_slice]
pub static INITCALLS: [Initcall];

/// Registers an initcall.
///
/// ```ignore
/// initcall!(FFA_BUS = subsys("ffa_bus") => ffa_bus_register);
/// initcall!(FFA_CORE = device("ffa_core", after [FFA_BUS, HYP_INSTALL]) => ffa_core_register);
/// ```
///
/// The first identifier becomes a `pub const` describing the call, which other registrations
/// name in their `after [...]` list. A need on the same or a later level fails to compile.
#[macro_export]
macro_rules! initcall {
    ($id:ident = $level:ident($name:literal $(, after [$($dep:path),* $(,)?])?) => $func:path) => {
        #[allow(dead_code)]
        pub const $id: $crate::Initcall = $crate::Initcall {
            name: $name,
            level: $crate::__level!($level),
            after: &[$($($dep.name),*)?],
            func: $func,
        };
        $($(
            const _: () = ::core::assert!(
                $crate::need_is_satisfiable($id.level, $dep.level),
                ::core::concat!(
                    "initcall `", $name, "` needs `", ::core::stringify!($dep),
                    "`, which is not on a strictly earlier level"
                )
            );
        )*)?
        #[allow(unsafe_code)] // linkme's link section: the entry is plain data
        const _: () = {
            #[$crate::linkme::distributed_slice($crate::INITCALLS)]
            #[linkme(crate = $crate::linkme)]
            static REGISTERED: $crate::Initcall = $id;
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __level {
    (early) => {
        $crate::Level::Early
    };
    (pure) => {
        $crate::Level::Pure
    };
    (core) => {
        $crate::Level::Core
    };
    (postcore) => {
        $crate::Level::Postcore
    };
    (arch) => {
        $crate::Level::Arch
    };
    (subsys) => {
        $crate::Level::Subsys
    };
    (fs) => {
        $crate::Level::Fs
    };
    (rootfs) => {
        $crate::Level::Rootfs
    };
    (device) => {
        $crate::Level::Device
    };
    (device_sync) => {
        $crate::Level::DeviceSync
    };
    (late) => {
        $crate::Level::Late
    };
    (late_sync) => {
        $crate::Level::LateSync
    };
}

/// Why a set of initcalls cannot be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// Two initcalls share a name.
    DuplicateName(&'static str),
    /// A need names no registered initcall.
    UnknownNeed {
        /// The initcall with the need.
        call: &'static str,
        /// The missing name.
        need: &'static str,
    },
    /// A need is on the same or a later level.
    NeedNotEarlier {
        /// The initcall with the need.
        call: &'static str,
        /// Its level.
        level: Level,
        /// The needed initcall.
        need: &'static str,
        /// The needed initcall's level.
        need_level: Level,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::DuplicateName(n) => write!(f, "initcall name `{n}` registered twice"),
            PlanError::UnknownNeed { call, need } => {
                write!(
                    f,
                    "initcall `{call}` needs `{need}`, which is not registered"
                )
            }
            PlanError::NeedNotEarlier {
                call,
                level,
                need,
                need_level,
            } => write!(
                f,
                "initcall `{call}` ({level}) needs `{need}` ({need_level}): needs must be on a strictly earlier level"
            ),
        }
    }
}

/// Validates a registered set and returns it in run order: by level, then by name.
pub fn plan(calls: &[Initcall]) -> Result<Vec<Initcall>, PlanError> {
    let mut sorted: Vec<Initcall> = calls.to_vec();
    sorted.sort_by(|a, b| (a.level, a.name).cmp(&(b.level, b.name)));
    let mut names: Vec<&'static str> = sorted.iter().map(|c| c.name).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
        return Err(PlanError::DuplicateName(pair[0]));
    }
    for call in &sorted {
        for &need in call.after {
            let Some(dep) = sorted.iter().find(|c| c.name == need) else {
                return Err(PlanError::UnknownNeed {
                    call: call.name,
                    need,
                });
            };
            if !need_is_satisfiable(call.level, dep.level) {
                return Err(PlanError::NeedNotEarlier {
                    call: call.name,
                    level: call.level,
                    need,
                    need_level: dep.level,
                });
            }
        }
    }
    Ok(sorted)
}

/// What the runner reports and how it reads time. The kernel implements it with `@event` lines
/// and the generic timer; tests with a recorder.
pub trait Observer {
    /// Current time in microseconds since an arbitrary epoch.
    fn now_us(&mut self) -> u64;
    /// A level is about to run.
    fn level_start(&mut self, level: Level);
    /// A call finished.
    fn call_done(&mut self, call: &Initcall, result: &Result<(), InitError>, us: u64);
    /// A level has finished (every call ran, or a fatal error stopped it).
    fn level_end(&mut self, level: Level);
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Calls that ran.
    pub ran: usize,
    /// Calls that returned a non-fatal error.
    pub soft_errors: usize,
    /// The fatal error that stopped the run, with the call that raised it.
    pub fatal: Option<(&'static str, InitError)>,
}

/// Runs a planned set level by level, in order. A fatal error stops the run after the
/// failing call; a soft error is reported and the run goes on.
pub fn run(planned: &[Initcall], obs: &mut dyn Observer) -> RunSummary {
    let mut summary = RunSummary {
        ran: 0,
        soft_errors: 0,
        fatal: None,
    };
    for level in Level::ALL {
        obs.level_start(level);
        for call in planned.iter().filter(|c| c.level == level) {
            let start = obs.now_us();
            let result = (call.func)();
            let us = obs.now_us().saturating_sub(start);
            obs.call_done(call, &result, us);
            summary.ran += 1;
            if let Err(e) = result {
                if e.fatal {
                    summary.fatal = Some((call.name, e));
                    obs.level_end(level);
                    return summary;
                }
                summary.soft_errors += 1;
            }
        }
        obs.level_end(level);
    }
    summary
}

#[cfg(test)]
mod tests;
