//! `--trace FILE`: the boot as a Chrome trace-event JSON file, which Perfetto
//! (ui.perfetto.dev, "Open trace file") and chrome://tracing load.
//!
//! Format: the Trace Event Format document (Google, "JSON Object Format"): an object with
//! `traceEvents`; complete events `ph:"X"` with `ts`/`dur` in microseconds, instant events
//! `ph:"i"` with scope `s`, flow events `ph:"s"`/`ph:"f"` sharing an `id` (the finish binds to
//! its enclosing slice with `bp:"e"`), and metadata `ph:"M"` naming processes and threads.
//! Firmware, hyp and kernel are three processes; the kernel's levels, initcalls and probes
//! nest on one thread (they ran on the boot CPU, one inside the other).

use crate::timing::{SpanKind, Timing, Track};
use serde_json::{Value, json};

fn pid(t: Track) -> u64 {
    match t {
        Track::Firmware => 1,
        Track::Hyp => 2,
        Track::Kernel => 3,
    }
}

/// One thread per track: the boot CPU's work.
const TID: u64 = 1;

fn cat(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Phase => "phase",
        SpanKind::Level => "level",
        SpanKind::Initcall => "initcall",
        SpanKind::Probe => "probe",
    }
}

/// The trace for `scenario`.
pub fn chrome_trace(scenario: &str, m: &Timing) -> Value {
    let mut ev: Vec<Value> = Vec::new();
    for track in [Track::Firmware, Track::Hyp, Track::Kernel] {
        ev.push(
            json!({"name": "process_name", "ph": "M", "pid": pid(track), "tid": TID,
            "args": {"name": track.name()}}),
        );
        ev.push(
            json!({"name": "process_sort_index", "ph": "M", "pid": pid(track), "tid": TID,
            "args": {"sort_index": pid(track)}}),
        );
        ev.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid(track), "tid": TID,
            "args": {"name": "boot CPU"}}),
        );
    }
    let mut timed: Vec<(u64, u64, u64, Value)> = Vec::new();
    for s in &m.spans {
        let mut args = json!({"result": s.result});
        if let Some(l) = s.level {
            args["level"] = json!(crate::judge::LEVELS[l]);
        }
        // Longer first at the same start: a parent before its children.
        timed.push((
            pid(s.track),
            s.start,
            u64::MAX - s.dur,
            json!({"name": s.name, "cat": cat(s.kind), "ph": "X", "ts": s.start, "dur": s.dur,
                "pid": pid(s.track), "tid": TID, "args": args}),
        ));
    }
    for x in &m.milestones {
        timed.push((
            pid(x.track),
            x.t,
            u64::MAX,
            json!({"name": x.label, "cat": "milestone", "ph": "i", "s": "p", "ts": x.t,
                "pid": pid(x.track), "tid": TID}),
        ));
    }
    for (id, f) in m.flows.iter().enumerate() {
        let (a, b) = (&m.spans[f.from], &m.spans[f.to]);
        let name = format!("deferred: {}", a.name);
        // The start sits inside the deferring probe, the finish inside the one that bound.
        timed.push((
            pid(a.track),
            a.start,
            0,
            json!({"name": name, "cat": "deferred-probe", "ph": "s", "id": id + 1,
                "ts": a.start, "pid": pid(a.track), "tid": TID, "args": {"reason": f.reason}}),
        ));
        timed.push((
            pid(b.track),
            b.start,
            0,
            json!({"name": name, "cat": "deferred-probe", "ph": "f", "bp": "e", "id": id + 1,
                "ts": b.start, "pid": pid(b.track), "tid": TID}),
        ));
    }
    // Per track in time order (stable: equal times keep parent-first order).
    timed.sort_by_key(|(p, ts, order, _)| (*p, *ts, *order));
    ev.extend(timed.into_iter().map(|(_, _, _, v)| v));
    json!({
        "traceEvents": ev,
        "displayTimeUnit": "ms",
        "otherData": {"scenario": scenario, "clock": "architected counter, µs since reset"},
    })
}

/// Problems with a trace against the trace-event format; empty when it is well formed.
pub fn check(trace: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(events) = trace.get("traceEvents").and_then(Value::as_array) else {
        return vec!["no traceEvents array".into()];
    };
    let mut last_ts: std::collections::BTreeMap<(u64, u64), f64> = Default::default();
    let mut flows: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (i, e) in events.iter().enumerate() {
        let ph = e.get("ph").and_then(Value::as_str).unwrap_or("");
        let name = e.get("name").and_then(Value::as_str);
        let pid = e.get("pid").and_then(Value::as_u64);
        let tid = e.get("tid").and_then(Value::as_u64);
        let ts = e.get("ts").and_then(Value::as_f64);
        if name.is_none() || pid.is_none() || tid.is_none() {
            problems.push(format!("event {i}: needs name, pid and tid: {e}"));
            continue;
        }
        let (pid, tid) = (pid.unwrap_or(0), tid.unwrap_or(0));
        match ph {
            "M" => {
                if e.get("args").and_then(Value::as_object).is_none() {
                    problems.push(format!("event {i}: metadata without args"));
                }
                continue;
            }
            "X" => {
                if e.get("dur").and_then(Value::as_f64).is_none_or(|d| d < 0.0) {
                    problems.push(format!("event {i}: complete event without a dur >= 0"));
                }
            }
            "i" | "I" => {
                if !matches!(
                    e.get("s").and_then(Value::as_str),
                    None | Some("g" | "p" | "t")
                ) {
                    problems.push(format!("event {i}: instant scope must be g, p or t"));
                }
            }
            "s" | "t" | "f" => {
                let Some(id) = e.get("id").map(|v| v.to_string()) else {
                    problems.push(format!("event {i}: flow event without id"));
                    continue;
                };
                let f = flows.entry(id).or_default();
                if ph == "s" {
                    f.0 += 1;
                } else if ph == "f" {
                    f.1 += 1;
                }
            }
            "B" | "E" | "b" | "e" | "n" | "C" | "P" | "O" | "N" | "D" => {}
            other => problems.push(format!("event {i}: unknown phase `{other}`")),
        }
        let Some(ts) = ts else {
            problems.push(format!("event {i}: no ts"));
            continue;
        };
        let prev = last_ts.entry((pid, tid)).or_insert(f64::MIN);
        if ts < *prev {
            problems.push(format!(
                "event {i}: ts {ts} goes back in time on pid {pid} tid {tid} (after {prev})"
            ));
        }
        *prev = ts;
    }
    for (id, (s, f)) in flows {
        if s != 1 || f != 1 {
            problems.push(format!(
                "flow {id}: {s} start(s) and {f} finish(es), want one each"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{tests::full_boot, timing};

    #[test]
    fn the_trace_is_well_formed_trace_event_json() {
        let (k, fw) = full_boot();
        let t = chrome_trace("full", &timing(&k, &fw));
        // Round trip through text, as a viewer reads it.
        let text = serde_json::to_string(&t).unwrap();
        let t: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(check(&t), Vec::<String>::new());
        let evs = t["traceEvents"].as_array().unwrap();
        let named = |p: u64| {
            evs.iter()
                .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == p)
                .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        };
        assert_eq!(named(1).as_deref(), Some("firmware (EL3)"));
        assert_eq!(named(2).as_deref(), Some("hyp (EL2)"));
        assert_eq!(named(3).as_deref(), Some("kernel (EL1)"));
        let x = |name: &str| {
            evs.iter()
                .find(|e| e["ph"] == "X" && e["name"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(x("hyp_install")["ts"], 3900);
        assert_eq!(x("hyp_install")["dur"], 1200);
        assert_eq!(x("hyp_install")["args"]["level"], "core");
        assert_eq!(x("pl011 on platform/pl011@9000000")["cat"], "probe");
        assert_eq!(x("firmware boot")["pid"], 1);
        assert_eq!(x("hyp installed, host trusted")["pid"], 2);
        // The deferral: a start inside the deferring probe, a finish inside the bound one.
        let s = evs.iter().find(|e| e["ph"] == "s").unwrap();
        let f = evs.iter().find(|e| e["ph"] == "f").unwrap();
        assert_eq!(s["id"], f["id"]);
        assert_eq!(s["ts"], x("ffa-core on platform/arm-ffa")["ts"]);
        assert_eq!(f["bp"], "e");
    }

    #[test]
    fn the_checker_finds_what_is_wrong() {
        let bad = json!({"traceEvents": [
            {"name": "a", "ph": "X", "ts": 10, "pid": 1, "tid": 1},
            {"name": "b", "ph": "X", "ts": 5, "dur": 1, "pid": 1, "tid": 1},
            {"ph": "i", "ts": 20, "pid": 1, "tid": 1},
            {"name": "c", "ph": "s", "id": 1, "ts": 30, "pid": 1, "tid": 1},
            {"name": "d", "ph": "Q", "ts": 40, "pid": 1, "tid": 1},
        ]});
        let p = check(&bad);
        assert!(p.iter().any(|x| x.contains("without a dur")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("back in time")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("needs name")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("flow 1")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("unknown phase")), "{p:?}");
        assert_eq!(check(&json!({})), ["no traceEvents array"]);
    }
}
