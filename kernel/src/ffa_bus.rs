//! The FF-A bus: the FF-A core as a platform driver that defers until the hyp is finalised,
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

#[cfg(feature = "test-hooks")]
use crate::boot::params;
use crate::console;
use crate::ffa::{self, Ffa};
use alloc::format;
use alloc::string::String;
use devmodel::{Device, Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use ffa_abi::testsp;
use ffa_core::Hyp;
use ffa_core::client::{CallError, OpenError};
use spin::Mutex;

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

fn hyp_state() -> Hyp {
    if !crate::hypctl::installed() {
        Hyp::Absent
    } else if crate::hypctl::finalised() {
        Hyp::Finalised
    } else {
        Hyp::Installed
    }
}

fn errno(e: CallError) -> String {
    format!("{} ({e:?})", e.errno())
}

/// `subsys`: the bus.
pub fn ffa_bus() -> Result<(), initcall::InitError> {
    crate::init::with_model(|m| m.register_bus("ffa"))?
        .map_err(|_| initcall::InitError::fatal("ffa-bus"))
}

/// `device`: the synthetic `arm-ffa` platform device and the core driver.
pub fn ffa_core() -> Result<(), initcall::InitError> {
    crate::init::with_model(|m| {
        m.add_device(Device::new("platform", "arm-ffa"), None)?;
        m.register_driver(CORE_DRIVER)
    })?
    .map_err(|_| initcall::InitError::fatal("ffa-core-register"))
}

/// `device`: the test partition's driver.
pub fn ffa_test() -> Result<(), initcall::InitError> {
    crate::init::with_model(|m| m.register_driver(TEST_DRIVER))?
        .map_err(|_| initcall::InitError::soft("ffa-test-register"))
}

const CORE_DRIVER: Driver = Driver {
    name: "ffa-core",
    bus: "platform",
    ids: &[MatchId::Name("arm-ffa")],
    probe: core_probe,
    bound: Some(core_bound),
};

fn open(via: &str) -> Result<Option<Core>, ProbeError> {
    if !ffa_core::smccc_ok(ffa::smccc_version()) {
        console::emit(catena_event::Kind::Ffa, |e| {
            e.str("state", "absent").str("reason", "smccc-below-1.2")
        });
        return Ok(None);
    }
    let mut f = match ffa::open() {
        Ok(f) => f,
        Err(OpenError::Absent) => {
            console::emit(catena_event::Kind::Ffa, |e| {
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
    console::emit(catena_event::Kind::Ffa, |e| {
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
    ffa_core::gate(hyp_state())?;
    match open(if crate::hypctl::installed() {
        "hyp"
    } else {
        "firmware"
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
        if c.early && crate::hypctl::installed() {
            // Initialised before the hyp existed: does the session still work?
            if let Err(e) = c.ffa.id_get() {
                let reason = format!(
                    "negotiated with the SPMC before the hyp was installed; the hyp refuses calls from a host that never negotiated with it (FFA_ID_GET: {}); the host's RX/TX pair was mapped at the SPMC, unknown to the hyp",
                    errno(e)
                );
                log::error!("ffa: broken chain: {reason}");
                console::emit(catena_event::Kind::Ffa, |w| {
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
        console::emit(catena_event::Kind::FfaPartition, |e| {
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

/// `pure`, with `catena.ffa_early`: the core's initialisation before the hyp is installed.
#[cfg(feature = "test-hooks")]
pub fn ffa_early() -> Result<(), initcall::InitError> {
    if !params().ffa_early {
        return Ok(());
    }
    log::warn!(
        "catena.ffa_early: initialising FF-A before the hyp is installed (the init-order bug)"
    );
    match open("early") {
        Ok(Some(core)) => *CORE.lock() = Some(core),
        Ok(None) => {}
        Err(_) => return Err(initcall::InitError::soft("ffa-early")),
    }
    Ok(())
}

const TEST_DRIVER: Driver = Driver {
    name: "ffa-test",
    bus: "ffa",
    ids: &[MatchId::Uuid(testsp::UUID)],
    probe: test_probe,
    bound: None,
};

/// The test partition's driver: echo through REQ and REQ2 (every argument register compared)
/// and a memory share round trip (the kernel fills a buffer, shares it, the partition returns
/// the checksum and writes its marker, the kernel reclaims it and sees the marker).
fn test_probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let dev = ctx.device();
    let (id, props) = (
        dev.prop("partition-id").unwrap_or(0) as u16,
        dev.prop("properties").unwrap_or(0) as u32,
    );
    let uuid = dev.uuid.unwrap_or(ffa_abi::NIL_UUID);
    let fail = |step: &'static str, e: CallError| {
        let reason = format!("{step}: {}", errno(e));
        log::error!("ffa-test: {reason}");
        console::emit(catena_event::Kind::FfaTest, |w| {
            w.str("result", "fail").str("reason", &reason)
        });
        ProbeError::Failed("ffa-test")
    };
    let r = with_session(|f| {
        let args5 = [
            0x1111,
            0x2222_0000_0000_3333,
            u64::MAX,
            0,
            0x5555_aaaa_5555_aaaa,
        ];
        let echo = f.direct_req(id, args5).map_err(|e| fail("direct-req", e))?;
        let args14: [u64; 14] =
            core::array::from_fn(|i| 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 3));
        let (form, echo2) = f
            .send(id, props, &uuid, args14, None)
            .map_err(|e| fail("direct-req2", e))?;
        let mut mem = ffa::pages(2);
        for (i, b) in mem.iter_mut().flat_map(|p| p.0.iter_mut()).enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let want = mem
            .iter()
            .fold(testsp::CHECKSUM_INIT, |h, p| testsp::checksum(h, &p.0));
        let handle = f
            .share(id, ffa::pa(&mem), mem.len() as u32)
            .map_err(|e| fail("mem-share", e))?;
        let r = f
            .direct_req(
                id,
                [
                    testsp::CMD_MEM_CHECK,
                    handle & 0xffff_ffff,
                    handle >> 32,
                    0,
                    0,
                ],
            )
            .map_err(|e| fail("mem-check", e))?;
        f.reclaim(handle).map_err(|e| fail("mem-reclaim", e))?;
        let marked = mem[0].0[..8] == testsp::MARKER;
        let echo_ok = echo == args5;
        let req2_ok = match form {
            ffa_core::Form::Req2 => echo2 == args14,
            ffa_core::Form::Req => echo2[..5] == args14[..5],
        };
        let share_ok = r[1] == 0 && r[2] == want && r[3] == 8192 && marked;
        let ok = echo_ok && req2_ok && share_ok;
        console::emit(catena_event::Kind::FfaTest, |w| {
            w.str("result", if ok { "ok" } else { "fail" })
                .hex("partition", u64::from(id))
                .str("echo", if echo_ok { "ok" } else { "mismatch" })
                .str("req2", if req2_ok { "ok" } else { "mismatch" })
                .str(
                    "form",
                    if form == ffa_core::Form::Req2 {
                        "req2"
                    } else {
                        "req"
                    },
                )
                .str("share", if share_ok { "ok" } else { "mismatch" })
                .hex("checksum", r[2])
        });
        if ok {
            Ok(())
        } else {
            Err(ProbeError::Failed("ffa-test-mismatch"))
        }
    });
    r.unwrap_or(Err(ProbeError::Failed("no FF-A session")))
}
