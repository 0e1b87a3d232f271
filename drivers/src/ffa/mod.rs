//! The FF-A bus's drivers: the FF-A core as a platform driver that defers until the hyp is finalised,
//! partitions as devices, drivers bound by UUID — Linux 7.2's design, with its ordering made
//! explicit in the initcall levels:
//!
//! | level   | initcall      | what                                                         |
//! |---------|---------------|--------------------------------------------------------------|
//! | subsys  | ffa_bus       | bus `ffa` registered                                         |
//! | device  | ffa_core      | platform device `arm-ffa` + driver `ffa-core`; probe defers   |
//! |         |               | ("hyp not finalised") while the hyp is installed, not final  |
//! | device  | ffa_test      | driver `ffa-test` for the test partition's UUID              |
//! | late    | (flush)       | the deferred probe pass probes the core: partitions → devices |
//!
//! `catena.ffa_early` reproduces the bug the design exists for: the core initialises at `pure`,
//! before the hyp is installed, as a built-in driver at an early initcall level would.

pub mod conduit;
mod test;

use crate::kapi;
use alloc::format;
use alloc::string::String;
use catena_event::Kind;
use conduit::Ffa;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use ffa_core::Hyp;
use ffa_core::client::{CallError, OpenError};
use spin::Mutex;
pub use test::TEST_DRIVER;

/// The core's session, shared by every FF-A driver.
struct Core {
    ffa: Ffa,
    /// Opened before the hyp was installed (`catena.ffa_early`).
    early: bool,
    /// Who answered the negotiation: `hyp`, `firmware` or `early` (the firmware, directly,
    /// before the hyp existed).
    via: String,
    partitions: alloc::vec::Vec<ffa_abi::partinfo::PartitionDesc>,
}

static CORE: Mutex<Option<Core>> = Mutex::new(None);

/// Runs `f` with the FF-A session, if the core has one.
pub fn with_session<R>(f: impl FnOnce(&mut Ffa) -> R) -> Option<R> {
    CORE.lock().as_mut().map(|c| f(&mut c.ffa))
}

/// Who answered the negotiation, the version, and the partitions the core discovered (for the
/// shell's `ffa`), if the core has a session.
pub fn partitions() -> Option<(
    String,
    String,
    alloc::vec::Vec<ffa_abi::partinfo::PartitionDesc>,
)> {
    CORE.lock().as_ref().map(|c| {
        (
            c.via.clone(),
            format!("{}", c.ffa.version),
            c.partitions.clone(),
        )
    })
}

pub(crate) fn errno(e: CallError) -> String {
    format!("{} ({e:?})", e.errno())
}

/// The bus FF-A devices live on.
pub const BUS: &str = "ffa";
/// The synthetic platform device the core driver binds to.
pub const CORE_DEVICE: &str = "arm-ffa";

/// The FF-A core driver.
pub const CORE_DRIVER: Driver = Driver {
    name: "ffa-core",
    bus: "platform",
    ids: &[MatchId::Name(CORE_DEVICE)],
    probe: core_probe,
    bound: Some(core_bound),
};

fn open(via: &str) -> Result<Option<Core>, ProbeError> {
    if !ffa_core::smccc_ok(conduit::smccc_version()) {
        kapi::emit(Kind::Ffa, |e| {
            e.str("state", "absent").str("reason", "smccc-below-1.2")
        });
        return Ok(None);
    }
    let mut f = match conduit::open() {
        Ok(f) => f,
        Err(OpenError::Absent) => {
            kapi::emit(Kind::Ffa, |e| {
                e.str("state", "absent")
                    .str("reason", "ffa-version-not-supported")
            });
            return Ok(None);
        }
        Err(OpenError::Unusable(w)) => {
            log::error!("ffa: FFA_VERSION answered {w:#x}");
            return Err(ProbeError::Failed("ffa-version-unusable"));
        }
        Err(OpenError::Call(what, e)) => {
            log::error!("ffa: {what}: {}", errno(e));
            return Err(ProbeError::Failed("ffa-open"));
        }
    };
    let partitions = f.partitions(&ffa_abi::NIL_UUID).map_err(|e| {
        log::error!("ffa: partition discovery: {}", errno(e));
        ProbeError::Failed("ffa-partition-info")
    })?;
    let core = Core {
        ffa: f,
        early: via == "early",
        partitions,
        via: String::from(via),
    };
    if core.early {
        emit_state(&core, "early-init");
    }
    Ok(Some(core))
}

fn emit_state(c: &Core, state: &str) {
    kapi::emit(Kind::Ffa, |e| {
        e.str("state", state)
            .str("version", &format!("{}", c.ffa.version))
            .u64("id", u64::from(c.ffa.id))
            .str("req2", if c.ffa.req2 { "yes" } else { "no" })
            .str(
                "discovery",
                if c.ffa.regs_discovery {
                    "regs"
                } else {
                    "rx-buffer"
                },
            )
            .str("via", &c.via)
    });
}

/// The FF-A core's probe (Linux 7.2 `ffa_probe`): defer until the hyp is finalised, then
/// negotiate and map the RX/TX pair; a quiet miss without FF-A.
fn core_probe(_ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    if CORE.lock().as_ref().is_some_and(|c| c.early) {
        // Already initialised at `pure`, as a built-in driver would have been.
        return Ok(());
    }
    ffa_core::gate(kapi::hyp())?;
    match open(if kapi::hyp() == Hyp::Absent {
        "firmware"
    } else {
        "hyp"
    })? {
        Some(core) => {
            *CORE.lock() = Some(core);
            Ok(())
        }
        None => Err(ProbeError::NoDevice),
    }
}

/// Once the core is bound: say so, and publish one FF-A device per (partition, UUID) under
/// it, where FF-A drivers bind by UUID.
fn core_bound(ctx: &mut ProbeCtx<'_>) {
    let parts = {
        let mut g = CORE.lock();
        let Some(c) = g.as_mut() else { return };
        if c.early && kapi::hyp() != Hyp::Absent {
            // Initialised before the hyp existed: does the session still work?
            if let Err(e) = c.ffa.id_get() {
                let reason = format!(
                    "negotiated with the SPMC before the hyp was installed; the hyp refuses calls from a host that never negotiated with it (FFA_ID_GET: {}); the host's RX/TX pair was mapped at the SPMC, unknown to the hyp",
                    errno(e)
                );
                log::error!("ffa: broken chain: {reason}");
                kapi::emit(Kind::Ffa, |w| {
                    w.str("state", "broken").str("reason", &reason)
                });
            } else {
                emit_state(c, "ready");
            }
        } else {
            emit_state(c, "ready");
        }
        c.partitions.clone()
    };
    for (dev, p) in ffa_core::devices(&parts).into_iter().zip(&parts) {
        let path = format!("{}/{}", ctx.path(), dev.name);
        kapi::emit(Kind::FfaPartition, |e| {
            e.hex("id", u64::from(p.id))
                .str("uuid", &ffa_abi::uuid_text(&p.uuid))
                .hex("props", u64::from(p.props))
                .u64("exec_ctx", u64::from(p.exec_ctx))
                .str("dev", &path)
        });
        if let Err(e) = ctx.add_child(dev) {
            log::warn!("ffa: device {path}: {e}");
        }
    }
}

/// At `pure`, with `catena.ffa_early` (a test hook): the core's initialisation before the hyp
/// is installed — the init-order bug.
pub fn init_early() -> Result<(), &'static str> {
    if !kapi::ffa_early() {
        return Ok(());
    }
    log::warn!(
        "catena.ffa_early: initialising FF-A before the hyp is installed (the init-order bug)"
    );
    match open("early") {
        Ok(Some(core)) => *CORE.lock() = Some(core),
        Ok(None) => {}
        Err(_) => return Err("ffa-early"),
    }
    Ok(())
}
