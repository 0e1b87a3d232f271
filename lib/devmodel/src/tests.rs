extern crate std;

use super::*;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec;
use std::cell::Cell;
use std::sync::Mutex;

std::thread_local! {
    static SUPPLIER_READY: Cell<bool> = const { Cell::new(false) };
    static PROBES: Cell<u32> = const { Cell::new(0) };
}

fn recorder() -> (DeviceModel, Arc<Mutex<Vec<ModelEvent>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink_log = log.clone();
    let mut m = DeviceModel::new(Box::new(move |e| sink_log.lock().unwrap().push(e.clone())));
    m.register_bus("platform").unwrap();
    (m, log)
}

fn probes(log: &Mutex<Vec<ModelEvent>>) -> Vec<(String, &'static str, &'static str)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ModelEvent::Probe {
                dev, drv, outcome, ..
            } => Some((dev.clone(), *drv, outcome.word())),
            _ => None,
        })
        .collect()
}

fn dt_dev(name: &str, compat: &[&str]) -> Device {
    let mut d = Device::new("platform", name);
    d.compatible = compat.iter().map(|s| s.to_string()).collect();
    d
}

fn probe_ok(_: &mut ProbeCtx<'_>) -> ProbeResult {
    PROBES.with(|p| p.set(p.get() + 1));
    Ok(())
}
fn probe_needs_supplier(_: &mut ProbeCtx<'_>) -> ProbeResult {
    if SUPPLIER_READY.with(|r| r.get()) {
        Ok(())
    } else {
        Err(ProbeError::Defer("supplier not ready"))
    }
}
fn probe_supplier(_: &mut ProbeCtx<'_>) -> ProbeResult {
    SUPPLIER_READY.with(|r| r.set(true));
    Ok(())
}
fn probe_nodev(_: &mut ProbeCtx<'_>) -> ProbeResult {
    Err(ProbeError::NoDevice)
}
fn probe_fail(_: &mut ProbeCtx<'_>) -> ProbeResult {
    Err(ProbeError::Failed("bad registers"))
}

const CONSUMER: Driver = Driver {
    name: "consumer",
    bus: "platform",
    ids: &[MatchId::Compatible("acme,consumer")],
    probe: probe_needs_supplier,
    bound: None,
};
const SUPPLIER: Driver = Driver {
    name: "supplier",
    bus: "platform",
    ids: &[MatchId::Compatible("acme,supplier")],
    probe: probe_supplier,
    bound: None,
};

fn reset() {
    SUPPLIER_READY.with(|r| r.set(false));
    PROBES.with(|p| p.set(0));
}

#[test]
fn device_then_driver_binds_with_path() {
    reset();
    let (mut m, log) = recorder();
    let id = m
        .add_device(
            dt_dev("uart@9000000", &["arm,pl011", "arm,primecell"]),
            None,
        )
        .unwrap();
    assert_eq!(m.state(id), Some(&DeviceState::Unbound));
    m.register_driver(Driver {
        name: "pl011",
        bus: "platform",
        ids: &[MatchId::Compatible("arm,pl011")],
        probe: probe_ok,
        bound: None,
    })
    .unwrap();
    assert_eq!(m.state(id), Some(&DeviceState::Bound("pl011")));
    assert_eq!(m.path(id), Some("platform/uart@9000000"));
    assert_eq!(
        probes(&log),
        vec![("platform/uart@9000000".into(), "pl011", "ok")]
    );
}

#[test]
fn defer_then_retry_on_a_later_bind() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(CONSUMER).unwrap();
    m.register_driver(SUPPLIER).unwrap();
    let c = m
        .add_device(dt_dev("consumer", &["acme,consumer"]), None)
        .unwrap();
    assert_eq!(
        m.state(c),
        Some(&DeviceState::Deferred {
            driver: "consumer",
            reason: "supplier not ready"
        })
    );
    assert_eq!(m.still_deferred().len(), 1);
    // The supplier binding is a successful bind: it triggers the pending list.
    m.add_device(dt_dev("supplier", &["acme,supplier"]), None)
        .unwrap();
    assert_eq!(m.state(c), Some(&DeviceState::Bound("consumer")));
    assert!(m.still_deferred().is_empty());
    assert_eq!(
        probes(&log),
        vec![
            ("platform/consumer".into(), "consumer", "defer"),
            ("platform/supplier".into(), "supplier", "ok"),
            ("platform/consumer".into(), "consumer", "ok"),
        ]
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ModelEvent::DeferredRetry { pending: 1, .. }))
    );
}

// A parent whose probe adds a child that binds (a successful bind *during* the parent's probe),
// then defers. Without the trigger counter the child's bind would have found an empty pending
// list (the parent was not on it yet) and the parent would wait until the late flush.
fn probe_parent_adds_child(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    if ctx.device().prop("attempt") == Some(0) && !SUPPLIER_READY.with(|r| r.get()) {
        ctx.add_child(dt_dev("child", &["acme,supplier"])).unwrap();
        return Err(ProbeError::Defer("child not bound yet"));
    }
    if SUPPLIER_READY.with(|r| r.get()) {
        Ok(())
    } else {
        Err(ProbeError::Defer("child not bound yet"))
    }
}

#[test]
fn trigger_counter_catches_a_bind_during_probe() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(SUPPLIER).unwrap();
    m.register_driver(Driver {
        name: "parent",
        bus: "platform",
        ids: &[MatchId::Compatible("acme,parent")],
        probe: probe_parent_adds_child,
        bound: None,
    })
    .unwrap();
    let mut parent = dt_dev("parent", &["acme,parent"]);
    parent.props.push(("attempt".into(), 0));
    let trig0 = m.trigger_count();
    let p = m.add_device(parent, None).unwrap();
    // The child bound during the parent's probe; the parent deferred; the counter moved, so the
    // parent was retried at once and bound - no flush needed.
    assert_eq!(m.state(p), Some(&DeviceState::Bound("parent")));
    let child = m.find("platform/parent/child").unwrap();
    assert_eq!(m.parent(child), Some(p));
    assert!(m.trigger_count() >= trig0 + 2);
    assert_eq!(
        probes(&log),
        vec![
            ("platform/parent/child".into(), "supplier", "ok"),
            ("platform/parent".into(), "parent", "defer"),
            ("platform/parent".into(), "parent", "ok"),
        ]
    );
}

#[test]
fn leftovers_are_reported_with_reasons_after_flush() {
    reset();
    let (mut m, _log) = recorder();
    m.register_driver(CONSUMER).unwrap();
    m.add_device(dt_dev("consumer", &["acme,consumer"]), None)
        .unwrap();
    assert_eq!(m.flush_deferred(), 0);
    assert_eq!(
        m.still_deferred(),
        vec![(
            "platform/consumer".to_string(),
            "consumer",
            "supplier not ready"
        )]
    );
}

#[test]
fn flush_binds_what_became_ready_without_a_bind() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(CONSUMER).unwrap();
    let c = m
        .add_device(dt_dev("consumer", &["acme,consumer"]), None)
        .unwrap();
    // Readiness that is not a bind (e.g. "hyp finalised") does not trigger by itself...
    SUPPLIER_READY.with(|r| r.set(true));
    assert!(matches!(m.state(c), Some(DeviceState::Deferred { .. })));
    // ...the late flush picks it up.
    assert_eq!(m.flush_deferred(), 1);
    assert_eq!(m.state(c), Some(&DeviceState::Bound("consumer")));
    assert_eq!(probes(&log).last().unwrap().2, "ok");
}

#[test]
fn nodev_is_a_quiet_miss_and_next_driver_tries() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(Driver {
        name: "specific",
        bus: "platform",
        ids: &[MatchId::Compatible("acme,widget-v2")],
        probe: probe_nodev,
        bound: None,
    })
    .unwrap();
    m.register_driver(Driver {
        name: "generic",
        bus: "platform",
        ids: &[MatchId::Compatible("acme,widget")],
        probe: probe_ok,
        bound: None,
    })
    .unwrap();
    let w = m
        .add_device(dt_dev("widget", &["acme,widget-v2", "acme,widget"]), None)
        .unwrap();
    assert_eq!(m.state(w), Some(&DeviceState::Bound("generic")));
    assert_eq!(
        probes(&log),
        vec![
            ("platform/widget".into(), "specific", "nodev"),
            ("platform/widget".into(), "generic", "ok"),
        ]
    );
    // A lone NoDevice leaves the device unbound and not pending: nothing to report.
    let (mut m2, _) = recorder();
    m2.register_driver(Driver {
        name: "absent",
        bus: "platform",
        ids: &[MatchId::Name("ghost")],
        probe: probe_nodev,
        bound: None,
    })
    .unwrap();
    let g = m2
        .add_device(Device::new("platform", "ghost"), None)
        .unwrap();
    assert_eq!(m2.state(g), Some(&DeviceState::Unbound));
    assert!(m2.still_deferred().is_empty());
}

#[test]
fn failure_leaves_device_unbound_and_is_reported() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(Driver {
        name: "broken",
        bus: "platform",
        ids: &[MatchId::Compatible("x")],
        probe: probe_fail,
        bound: None,
    })
    .unwrap();
    let d = m.add_device(dt_dev("x0", &["x"]), None).unwrap();
    assert_eq!(m.state(d), Some(&DeviceState::Unbound));
    let ev = log.lock().unwrap().iter().rev().find_map(|e| match e {
        ModelEvent::Probe { outcome, .. } => Some(outcome.clone()),
        _ => None,
    });
    assert_eq!(ev, Some(ProbeOutcome::Err("bad registers")));
}

#[test]
fn uuid_and_name_matching() {
    reset();
    let (mut m, _) = recorder();
    m.register_bus("ffa").unwrap();
    const U: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    m.register_driver(Driver {
        name: "by-uuid",
        bus: "ffa",
        ids: &[MatchId::Uuid(U)],
        probe: probe_ok,
        bound: None,
    })
    .unwrap();
    let mut a = Device::new("ffa", "arm-ffa-1");
    a.uuid = Some(U);
    let mut b = Device::new("ffa", "arm-ffa-2");
    b.uuid = Some([0; 16]);
    let a = m.add_device(a, None).unwrap();
    let b = m.add_device(b, None).unwrap();
    assert_eq!(m.state(a), Some(&DeviceState::Bound("by-uuid")));
    assert_eq!(m.state(b), Some(&DeviceState::Unbound));
}

#[test]
fn api_errors_are_typed() {
    let (mut m, _) = recorder();
    assert_eq!(
        m.register_bus("platform"),
        Err(ModelError::DuplicateBus("platform".into()))
    );
    assert_eq!(
        m.add_device(Device::new("pci", "x"), None),
        Err(ModelError::UnknownBus("pci".into()))
    );
    m.add_device(Device::new("platform", "x"), None).unwrap();
    assert_eq!(
        m.add_device(Device::new("platform", "x"), None),
        Err(ModelError::DuplicatePath("platform/x".into()))
    );
    assert_eq!(
        m.add_device(Device::new("platform", "y"), Some(DeviceId(99))),
        Err(ModelError::UnknownParent(DeviceId(99)))
    );
    m.register_driver(SUPPLIER).unwrap();
    assert_eq!(
        m.register_driver(SUPPLIER),
        Err(ModelError::DuplicateDriver("supplier"))
    );
}

fn bound_adds_child(ctx: &mut ProbeCtx<'_>) {
    ctx.add_child(dt_dev("after-bind", &["acme,supplier"]))
        .unwrap();
}

#[test]
fn bound_hook_runs_after_the_probe_event() {
    reset();
    let (mut m, log) = recorder();
    m.register_driver(SUPPLIER).unwrap();
    m.register_driver(Driver {
        name: "core",
        bus: "platform",
        ids: &[MatchId::Compatible("acme,core")],
        probe: probe_ok,
        bound: Some(bound_adds_child),
    })
    .unwrap();
    m.add_device(dt_dev("core", &["acme,core"]), None).unwrap();
    assert_eq!(
        probes(&log),
        vec![
            ("platform/core".into(), "core", "ok"),
            ("platform/core/after-bind".into(), "supplier", "ok"),
        ]
    );
}

std::thread_local! {
    static FAKE_NOW: Cell<u64> = const { Cell::new(100) };
}

fn fake_clock() -> u64 {
    FAKE_NOW.with(|t| t.get())
}

fn probe_takes_7(_: &mut ProbeCtx<'_>) -> ProbeResult {
    FAKE_NOW.with(|t| t.set(t.get() + 7));
    Ok(())
}

#[test]
fn probes_are_timed_with_the_clock_given() {
    let (mut m, log) = recorder();
    m.set_clock(fake_clock);
    m.add_device(dt_dev("uart@9000000", &["arm,pl011"]), None)
        .unwrap();
    m.register_driver(Driver {
        name: "pl011",
        bus: "platform",
        ids: &[MatchId::Compatible("arm,pl011")],
        probe: probe_takes_7,
        bound: None,
    })
    .unwrap();
    let times: Vec<u64> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ModelEvent::Probe { us, .. } => Some(*us),
            _ => None,
        })
        .collect();
    assert_eq!(times, [7]);
    // Without a clock every probe reports 0.
    let (mut m, log) = recorder();
    m.add_device(dt_dev("uart@9000000", &["arm,pl011"]), None)
        .unwrap();
    m.register_driver(Driver {
        name: "pl011",
        bus: "platform",
        ids: &[MatchId::Compatible("arm,pl011")],
        probe: probe_takes_7,
        bound: None,
    })
    .unwrap();
    assert!(matches!(
        log.lock().unwrap()[..],
        [.., ModelEvent::Probe { us: 0, .. }]
    ));
}
