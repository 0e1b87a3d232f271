//! The JSON report and the boot timeline.

use crate::judge::{LEVELS, Outcome};
use catena_event::Event;
use serde_json::{Map, Value, json};
use std::fmt::Write;

fn value(v: &str) -> Value {
    // Decimal numbers become JSON numbers; everything else (hex, words) stays a string.
    if !v.is_empty()
        && v.len() < 20
        && v.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = v.parse::<u64>()
    {
        return json!(n);
    }
    json!(v)
}

/// An event as a JSON object: `{"kind": ..., "source": ..., key: value, ...}`.
pub fn event_json(e: &Event, source: &str) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(e.kind));
    m.insert("source".into(), json!(source));
    for (k, v) in &e.fields {
        m.insert(k.clone(), value(v));
    }
    Value::Object(m)
}

/// The run report.
pub fn report(scenario: &str, o: &Outcome, exit_code: i32, fault_symbol: Option<&str>) -> Value {
    let mut r = json!({
        "scenario": scenario,
        "status": o.status(),
        "exit_code": exit_code,
        "qemu_exit": o.qemu_exit,
        "reason": o.reason(),
        // The firmware's events come first (it runs first); order is exact within a source.
        "events": o
            .fw_events
            .iter()
            .map(|e| event_json(e, "fw"))
            .chain(o.events.iter().map(|e| event_json(e, "kernel")))
            .collect::<Vec<_>>(),
    });
    if let Some(s) = fault_symbol {
        r["fault_symbol"] = json!(s);
    }
    r
}

/// The boot timeline: levels, each call with its result and time, then probes and deferrals.
pub fn timeline(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nBoot timeline");
    if !o.fw_events.is_empty() {
        let _ = writeln!(s, "  firmware (EL3):");
        for e in &o.fw_events {
            let _ = writeln!(s, "    {}", crate::judge::render(e));
        }
    }
    // Another OS in the kernel's place (scenario `os`): what its initramfs reported, no
    // initcall levels of Catena's to show as unreached.
    let linux: Vec<&Event> = o.events.iter().filter(|e| e.kind == "linux").collect();
    if !linux.is_empty() && !o.events.iter().any(|e| e.kind == "boot") {
        let _ = writeln!(s, "  Linux (in the kernel's place):");
        for e in linux {
            let _ = writeln!(s, "    {}", crate::judge::render(e));
        }
        let _ = writeln!(s, "  status: {} {}", o.status(), o.reason());
        return s;
    }
    let _ = writeln!(
        s,
        "  {:<12} {:<24} {:<7} {:>9}",
        "level", "initcall", "result", "time (us)"
    );
    for level in LEVELS {
        let calls: Vec<&Event> = o
            .events
            .iter()
            .filter(|e| e.kind == "initcall" && e.get("level") == Some(level))
            .collect();
        let lvl = o
            .events
            .iter()
            .find(|e| e.kind == "level" && e.get("level") == Some(level));
        if calls.is_empty() {
            let state = if lvl.is_some() {
                "(no initcalls)"
            } else {
                "(not reached)"
            };
            let _ = writeln!(s, "  {level:<12} {state}");
            continue;
        }
        for (i, c) in calls.iter().enumerate() {
            let result = match c.get("reason") {
                Some(r) => format!("{} ({r})", c.get("result").unwrap_or("?")),
                None => c.get("result").unwrap_or("?").to_string(),
            };
            let _ = writeln!(
                s,
                "  {:<12} {:<24} {:<7} {:>9}",
                if i == 0 { level } else { "" },
                c.get("name").unwrap_or("?"),
                result,
                c.get("us").unwrap_or("?")
            );
        }
        if let Some(l) = lvl {
            let _ = writeln!(
                s,
                "  {:<12} {:<24} {:<7} {:>9}",
                "",
                "(level total)",
                "",
                l.get("us").unwrap_or("?")
            );
        }
    }
    let probes: Vec<&Event> = o.events.iter().filter(|e| e.kind == "probe").collect();
    if !probes.is_empty() {
        let _ = writeln!(s, "  probes:");
        for p in probes {
            let _ = writeln!(
                s,
                "    {:<36} {:<14} {}{}",
                p.get("dev").unwrap_or("?"),
                p.get("drv").unwrap_or("?"),
                p.get("result").unwrap_or("?"),
                p.get("reason")
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    let deferred: Vec<&Event> = o.events.iter().filter(|e| e.kind == "deferred").collect();
    if deferred.is_empty() {
        let _ = writeln!(s, "  still deferred at the end: none");
    } else {
        for d in deferred {
            let _ = writeln!(
                s,
                "  still deferred: {} by {} ({})",
                d.get("dev").unwrap_or("?"),
                d.get("drv").unwrap_or("?"),
                d.get("reason").unwrap_or("?")
            );
        }
    }
    let _ = writeln!(s, "  status: {} {}", o.status(), o.reason());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::collect_line;

    #[test]
    fn report_has_the_documented_shape() {
        let mut o = Outcome {
            qemu_exit: Some(0),
            ..Default::default()
        };
        for l in [
            "@event boot el=2 dtb=0x48000000",
            "@event initcall level=device name=pl011 result=ok us=12",
            "@event level level=device calls=1 us=14",
            "@event probe dev=platform/pl011@9000000 drv=pl011 result=ok",
            "@event done status=ok",
        ] {
            collect_line(&mut o, l);
        }
        let r = report("el2", &o, 0, None);
        assert_eq!(r["scenario"], "el2");
        assert_eq!(r["status"], "ok");
        assert_eq!(r["exit_code"], 0);
        assert_eq!(r["events"][0]["kind"], "boot");
        assert_eq!(r["events"][0]["el"], 2);
        assert_eq!(r["events"][0]["dtb"], "0x48000000");
        assert_eq!(r["events"][1]["level"], "device");
        assert_eq!(r["events"][1]["us"], 12);
        let t = timeline(&o);
        assert!(t.contains("pl011"), "{t}");
        assert!(t.contains("early        (not reached)"), "{t}");
        assert!(t.contains("still deferred at the end: none"), "{t}");
        let mut l = Outcome::default();
        for line in [
            "@event linux state=init release=7.3.4+deb13-arm64 kvm=nvhe",
            "@event linux tpm-crb-ffa=arm-ffa-3 abi=1.0",
            "@event done status=ok",
        ] {
            collect_line(&mut l, line);
        }
        let t = timeline(&l);
        assert!(t.contains("Linux (in the kernel's place)"), "{t}");
        assert!(t.contains("linux tpm-crb-ffa=arm-ffa-3 abi=1.0"), "{t}");
        assert!(!t.contains("(not reached)"), "{t}");
    }
}
