extern crate std;

use super::*;
use alloc::string::{String, ToString};
use alloc::vec;
use std::cell::RefCell;

std::thread_local! {
    static TRACE: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

fn trace(name: &'static str) {
    TRACE.with(|t| t.borrow_mut().push(name));
}

fn take_trace() -> Vec<&'static str> {
    TRACE.with(|t| core::mem::take(&mut *t.borrow_mut()))
}

fn ok_a() -> Result<(), InitError> {
    trace("a");
    Ok(())
}
fn ok_b() -> Result<(), InitError> {
    trace("b");
    Ok(())
}
fn ok_c() -> Result<(), InitError> {
    trace("c");
    Ok(())
}
fn soft_fail() -> Result<(), InitError> {
    trace("soft");
    Err(InitError::soft("no-widget"))
}
fn fatal_fail() -> Result<(), InitError> {
    trace("fatal");
    Err(InitError::fatal("broken"))
}

const fn call(
    name: &'static str,
    level: Level,
    after: &'static [&'static str],
    func: InitFn,
) -> Initcall {
    Initcall {
        name,
        level,
        after,
        func,
    }
}

#[derive(Default)]
struct Recorder {
    clock: u64,
    lines: Vec<String>,
}

impl Observer for Recorder {
    fn now_us(&mut self) -> u64 {
        self.clock += 5;
        self.clock
    }
    fn level_start(&mut self, level: Level) {
        self.lines.push(alloc::format!("start {level}"));
    }
    fn call_done(&mut self, call: &Initcall, result: &Result<(), InitError>, us: u64) {
        let r = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => alloc::format!("err:{}", e.reason),
        };
        self.lines
            .push(alloc::format!("{} {} {r} {us}", call.level, call.name));
    }
    fn level_end(&mut self, level: Level) {
        self.lines.push(alloc::format!("end {level}"));
    }
}

#[test]
fn levels_are_in_linux_order() {
    let names: Vec<&str> = Level::ALL.iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "early",
            "pure",
            "core",
            "postcore",
            "arch",
            "subsys",
            "fs",
            "rootfs",
            "device",
            "device_sync",
            "late",
            "late_sync"
        ]
    );
    for (i, l) in Level::ALL.iter().enumerate() {
        assert_eq!(l.index() as usize, i);
        assert_eq!(Level::from_name(l.name()), Some(*l));
    }
    assert_eq!(Level::from_name("sideways"), None);
}

#[test]
fn plan_orders_by_level_then_name_not_by_registration_order() {
    let calls = [
        call("zeta", Level::Device, &[], ok_a),
        call("late_one", Level::Late, &["zeta"], ok_b),
        call("alpha", Level::Device, &[], ok_c),
        call("first", Level::Early, &[], ok_a),
    ];
    let planned = plan(&calls).unwrap();
    let order: Vec<&str> = planned.iter().map(|c| c.name).collect();
    assert_eq!(order, ["first", "alpha", "zeta", "late_one"]);
    // The same set registered in another order plans identically.
    let mut reversed = calls;
    reversed.reverse();
    let order2: Vec<&str> = plan(&reversed).unwrap().iter().map(|c| c.name).collect();
    assert_eq!(order, order2);
}

#[test]
fn same_level_need_is_rejected() {
    let calls = [
        call("bus", Level::Device, &[], ok_a),
        call("drv", Level::Device, &["bus"], ok_b),
    ];
    assert_eq!(
        plan(&calls).unwrap_err(),
        PlanError::NeedNotEarlier {
            call: "drv",
            level: Level::Device,
            need: "bus",
            need_level: Level::Device
        }
    );
    // And the compile-time rule agrees.
    assert!(!need_is_satisfiable(Level::Device, Level::Device));
}

#[test]
fn later_level_need_is_rejected() {
    let calls = [
        call("early_thing", Level::Early, &["late_thing"], ok_a),
        call("late_thing", Level::Late, &[], ok_b),
    ];
    assert!(matches!(
        plan(&calls),
        Err(PlanError::NeedNotEarlier {
            call: "early_thing",
            need: "late_thing",
            ..
        })
    ));
    assert!(!need_is_satisfiable(Level::Early, Level::Late));
    assert!(need_is_satisfiable(Level::Late, Level::Early));
}

#[test]
fn unknown_need_and_duplicate_names_are_rejected() {
    let unknown = [call("a", Level::Late, &["ghost"], ok_a)];
    assert_eq!(
        plan(&unknown).unwrap_err(),
        PlanError::UnknownNeed {
            call: "a",
            need: "ghost"
        }
    );
    let dup = [
        call("a", Level::Early, &[], ok_a),
        call("a", Level::Late, &[], ok_b),
    ];
    assert_eq!(plan(&dup).unwrap_err(), PlanError::DuplicateName("a"));
    let msg = plan(&dup).unwrap_err().to_string();
    assert!(msg.contains("registered twice"), "{msg}");
}

#[test]
fn run_goes_level_by_level_and_times_each_call() {
    take_trace();
    let calls = [
        call("c", Level::LateSync, &[], ok_c),
        call("b", Level::Subsys, &["a"], ok_b),
        call("a", Level::Early, &[], ok_a),
    ];
    let planned = plan(&calls).unwrap();
    let mut rec = Recorder::default();
    let summary = run(&planned, &mut rec);
    assert_eq!(take_trace(), ["a", "b", "c"]);
    assert_eq!(
        summary,
        RunSummary {
            ran: 3,
            soft_errors: 0,
            fatal: None
        }
    );
    // Every level is started and ended, in order, even the empty ones.
    let starts: Vec<&String> = rec
        .lines
        .iter()
        .filter(|l| l.starts_with("start "))
        .collect();
    assert_eq!(starts.len(), 12);
    assert_eq!(rec.lines[0], "start early");
    assert_eq!(rec.lines[1], "early a ok 5");
    assert_eq!(rec.lines.last().unwrap(), "end late_sync");
}

#[test]
fn soft_error_is_reported_and_run_continues() {
    take_trace();
    let calls = [
        call("soft", Level::Core, &[], soft_fail),
        call("after", Level::Late, &[], ok_a),
    ];
    let mut rec = Recorder::default();
    let summary = run(&plan(&calls).unwrap(), &mut rec);
    assert_eq!(take_trace(), ["soft", "a"]);
    assert_eq!(summary.soft_errors, 1);
    assert_eq!(summary.fatal, None);
    assert!(rec.lines.iter().any(|l| l == "core soft err:no-widget 5"));
}

#[test]
fn fatal_error_stops_the_run() {
    take_trace();
    let calls = [
        call("a_fatal", Level::Arch, &[], fatal_fail),
        call("b_same_level", Level::Arch, &[], ok_b),
        call("never", Level::Late, &[], ok_c),
    ];
    let mut rec = Recorder::default();
    let summary = run(&plan(&calls).unwrap(), &mut rec);
    assert_eq!(take_trace(), ["fatal"]);
    assert_eq!(summary.ran, 1);
    assert_eq!(summary.fatal, Some(("a_fatal", InitError::fatal("broken"))));
    assert_eq!(rec.lines.last().unwrap(), "end arch");
}

fn reg_a() -> Result<(), InitError> {
    Ok(())
}
fn reg_b() -> Result<(), InitError> {
    Ok(())
}
crate::initcall!(TEST_REG_A = core("test_reg_a") => reg_a);
crate::initcall!(TEST_REG_B = late("test_reg_b", after [TEST_REG_A]) => reg_b);

#[test]
fn macro_registers_into_the_slice_with_needs() {
    let names: Vec<&str> = INITCALLS.iter().map(|c| c.name).collect();
    assert!(names.contains(&"test_reg_a"), "{names:?}");
    assert!(names.contains(&"test_reg_b"), "{names:?}");
    assert_eq!(TEST_REG_B.after, &["test_reg_a"]);
    assert_eq!(TEST_REG_B.level, Level::Late);
    let planned = plan(&INITCALLS).unwrap();
    let pos = |n| planned.iter().position(|c| c.name == n).unwrap();
    assert!(pos("test_reg_a") < pos("test_reg_b"));
    let _ = vec![0u8];
}
