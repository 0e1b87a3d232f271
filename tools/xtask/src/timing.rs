//! The boot in time: spans, milestones and deferred-probe flows built from the events' `t=`
//! fields (microseconds since reset, one clock for firmware, hyp and kernel). The boot chart
//! (`chain::svg`) and the trace (`trace::chrome_trace`) both draw this model.
//!
//! An initcall, level or probe event is written when the work ends, with `us=` its length, so
//! it started at `t - us`. Emission adds a few microseconds after the measurement, so a child
//! (a probe inside an initcall, an initcall inside its level) is clamped into its parent.

use crate::judge::LEVELS;
use catena_event::{Event, TIME_KEY};

/// Who reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Track {
    /// The EL3 firmware (secure UART).
    Firmware,
    /// The hyp at EL2.
    Hyp,
    /// The kernel at EL1.
    Kernel,
}

impl Track {
    /// Its name in charts and traces.
    pub fn name(self) -> &'static str {
        match self {
            Track::Firmware => "firmware (EL3)",
            Track::Hyp => "hyp (EL2)",
            Track::Kernel => "kernel (EL1)",
        }
    }
}

/// What a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A phase of the firmware or the hyp (boot to hand-off, installed to finalised).
    Phase,
    /// An initcall level.
    Level,
    /// One initcall.
    Initcall,
    /// One driver probe.
    Probe,
}

/// Work with a start and a length.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// Reporter.
    pub track: Track,
    /// What it is.
    pub kind: SpanKind,
    /// The initcall level it ran in (index into `LEVELS`), for kernel spans.
    pub level: Option<usize>,
    /// Name (initcall name, `drv on dev`, level name, phase name).
    pub name: String,
    /// Start, µs since reset.
    pub start: u64,
    /// Length, µs.
    pub dur: u64,
    /// `ok`, `err`, `defer`, `nodev`, ...
    pub result: String,
    /// Index of the initcall span a probe ran in.
    pub parent: Option<usize>,
}

impl Span {
    /// End, µs since reset.
    pub fn end(&self) -> u64 {
        self.start + self.dur
    }
}

/// A point in time worth marking.
#[derive(Clone, Debug, PartialEq)]
pub struct Milestone {
    /// Reporter.
    pub track: Track,
    /// When, µs since reset.
    pub t: u64,
    /// Short label ("hyp finalised", "FF-A ready v1.2").
    pub label: String,
    /// Whether it reports something broken.
    pub bad: bool,
}

/// A deferred probe: where it deferred and where the same driver finally bound (or not).
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The probe span that deferred (first deferral).
    pub from: usize,
    /// The probe span that bound.
    pub to: usize,
    /// Why it deferred.
    pub reason: String,
}

/// The whole boot in time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// Spans, in the order their events arrived.
    pub spans: Vec<Span>,
    /// Milestones.
    pub milestones: Vec<Milestone>,
    /// Deferred probes that later bound.
    pub flows: Vec<Flow>,
    /// The last time any event reported.
    pub end: u64,
}

fn t(e: &Event) -> Option<u64> {
    e.get(TIME_KEY)?.parse().ok()
}

fn us(e: &Event) -> u64 {
    e.get("us").and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn level_index(e: &Event) -> Option<usize> {
    let l = e.get("level")?;
    LEVELS.iter().position(|x| *x == l)
}

fn milestone(e: &Event) -> Option<(Track, String, bool)> {
    let st = e.get("state");
    let m = match (e.kind.as_str(), st) {
        ("hyp", Some("installed")) => (Track::Hyp, "hyp installed".to_string(), false),
        ("hyp", Some("finalised")) => (
            Track::Hyp,
            match (e.get("cpu"), e.get("cpus")) {
                (Some(c), _) => format!("stage-2 on cpu {c}"),
                (None, Some(n)) => format!("hyp finalised ({n} CPUs)"),
                (None, None) => "hyp finalised".into(),
            },
            false,
        ),
        ("hyp", Some("absent")) => (Track::Hyp, "hyp absent".into(), false),
        ("hyp", Some("cpu-on")) => (
            Track::Hyp,
            format!("cpu-on {}", e.get("target").unwrap_or("?")),
            false,
        ),
        ("hyp", Some("fault")) => (Track::Hyp, "hyp fault".into(), true),
        ("boot", _) => (
            Track::Kernel,
            format!("kernel entered EL{}", e.get("el").unwrap_or("?")),
            false,
        ),
        ("cpu", Some("online")) => (
            Track::Kernel,
            format!("cpu {} online", e.get("id").unwrap_or("?")),
            false,
        ),
        ("ffa", Some("ready")) => (
            Track::Kernel,
            format!("FF-A ready v{}", e.get("version").unwrap_or("?")),
            false,
        ),
        ("ffa", Some("early-init")) => (Track::Kernel, "FF-A early (bug)".into(), true),
        ("ffa", Some("broken")) => (Track::Kernel, "FF-A broken".into(), true),
        ("ffa", Some("absent")) => (Track::Kernel, "FF-A absent".into(), false),
        ("done", _) => (
            Track::Kernel,
            format!("done {}", e.get("status").unwrap_or("?")),
            e.get("status") != Some("ok"),
        ),
        _ => return None,
    };
    Some(m)
}

/// Builds the model from the kernel's and the firmware's events (events without `t=` are
/// left out).
pub fn timing(kernel: &[Event], fw: &[Event]) -> Timing {
    let mut out = Timing::default();
    // Firmware: boot to hand-off as a phase; its failures and hand-off as milestones.
    let fw_boot = fw.iter().find(|e| e.get("ev") == Some("boot")).and_then(t);
    let fw_enter = fw
        .iter()
        .find(|e| e.get("ev") == Some("enter-ns"))
        .and_then(t);
    if let (Some(b), Some(e)) = (fw_boot, fw_enter) {
        out.spans.push(Span {
            track: Track::Firmware,
            kind: SpanKind::Phase,
            level: None,
            name: "firmware boot".into(),
            start: b,
            dur: e.saturating_sub(b),
            result: "ok".into(),
            parent: None,
        });
    }
    for e in fw {
        let Some(at) = t(e) else { continue };
        out.end = out.end.max(at);
        match e.get("ev") {
            Some("enter-ns") => out.milestones.push(Milestone {
                track: Track::Firmware,
                t: at,
                label: format!("enter NS EL{}", e.get("el").unwrap_or("?")),
                bad: false,
            }),
            Some("fail") => out.milestones.push(Milestone {
                track: Track::Firmware,
                t: at,
                label: format!("firmware fail {}", e.get("reason").unwrap_or("?")),
                bad: true,
            }),
            _ => {}
        }
    }

    // Kernel: levels, initcalls and probes. Probes are reported before the initcall they ran
    // in; they are attached to it when it arrives.
    let mut waiting_probes: Vec<usize> = Vec::new();
    let mut installed: Option<u64> = None;
    for e in kernel {
        let Some(at) = t(e) else { continue };
        out.end = out.end.max(at);
        match e.kind.as_str() {
            "level" => out.spans.push(Span {
                track: Track::Kernel,
                kind: SpanKind::Level,
                level: level_index(e),
                name: e.get("level").unwrap_or("?").to_string(),
                start: at.saturating_sub(us(e)),
                dur: us(e),
                result: "ok".into(),
                parent: None,
            }),
            "initcall" => {
                let idx = out.spans.len();
                let span = Span {
                    track: Track::Kernel,
                    kind: SpanKind::Initcall,
                    level: level_index(e),
                    name: e.get("name").unwrap_or("?").to_string(),
                    start: at.saturating_sub(us(e)),
                    dur: us(e),
                    result: e.get("result").unwrap_or("?").to_string(),
                    parent: None,
                };
                for p in waiting_probes.drain(..) {
                    let child = &mut out.spans[p];
                    child.parent = Some(idx);
                    child.level = span.level;
                    clamp_into(child, &span);
                }
                out.spans.push(span);
            }
            "probe" => {
                waiting_probes.push(out.spans.len());
                out.spans.push(Span {
                    track: Track::Kernel,
                    kind: SpanKind::Probe,
                    level: None,
                    name: format!(
                        "{} on {}",
                        e.get("drv").unwrap_or("?"),
                        e.get("dev").unwrap_or("?")
                    ),
                    start: at.saturating_sub(us(e)),
                    dur: us(e),
                    result: e.get("result").unwrap_or("?").to_string(),
                    parent: None,
                });
            }
            _ => {}
        }
        if e.kind == "hyp" {
            match e.get("state") {
                Some("installed") => installed = Some(at),
                // The hyp is finalised when its report without `cpu=` says every CPU is.
                Some("finalised") if e.get("cpu").is_none() => {
                    if let Some(i) = installed.take() {
                        out.spans.push(Span {
                            track: Track::Hyp,
                            kind: SpanKind::Phase,
                            level: None,
                            name: "hyp installed, host trusted".into(),
                            start: i,
                            dur: at.saturating_sub(i),
                            result: "ok".into(),
                            parent: None,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some((track, label, bad)) = milestone(e) {
            out.milestones.push(Milestone {
                track,
                t: at,
                label,
                bad,
            });
        }
    }
    // Initcalls into their levels.
    let levels: Vec<Span> = out
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Level)
        .cloned()
        .collect();
    for s in out
        .spans
        .iter_mut()
        .filter(|s| s.kind == SpanKind::Initcall)
    {
        if let Some(l) = levels.iter().find(|l| l.level == s.level) {
            clamp_into(s, l);
        }
    }
    // Deferrals: the first `defer` of a driver on a device, to its later `ok`.
    let key = |s: &Span| s.name.clone();
    for (i, s) in out.spans.iter().enumerate() {
        if s.kind != SpanKind::Probe || s.result != "defer" {
            continue;
        }
        let first = !out.spans[..i]
            .iter()
            .any(|p| p.kind == SpanKind::Probe && p.result == "defer" && key(p) == key(s));
        if !first {
            continue;
        }
        if let Some(j) = out.spans[i + 1..]
            .iter()
            .position(|p| p.kind == SpanKind::Probe && p.result == "ok" && key(p) == key(s))
        {
            out.flows.push(Flow {
                from: i,
                to: i + 1 + j,
                reason: kernel
                    .iter()
                    .find(|e| {
                        e.kind == "probe"
                            && e.get("result") == Some("defer")
                            && format!(
                                "{} on {}",
                                e.get("drv").unwrap_or("?"),
                                e.get("dev").unwrap_or("?")
                            ) == s.name
                    })
                    .and_then(|e| e.get("reason"))
                    .unwrap_or("")
                    .to_string(),
            });
        }
    }
    out
}

/// Moves and cuts `child` so it lies within `parent`.
fn clamp_into(child: &mut Span, parent: &Span) {
    let start = child.start.clamp(parent.start, parent.end());
    let end = child.end().clamp(start, parent.end());
    child.start = start;
    child.dur = end - start;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use catena_event::parse_line;

    pub(crate) fn evs(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| parse_line(l).unwrap().unwrap())
            .collect()
    }

    /// A `full`-like boot, with times.
    pub(crate) fn full_boot() -> (Vec<Event>, Vec<Event>) {
        let fw = evs(&[
            "@event fw ev=boot cpus=2 t=100",
            "@event fw ev=payload source=fw_cfg t=900",
            "@event fw ev=enter-ns el=2 t=1500",
            "@event fw ev=ffa call=FFA_VERSION result=ok t=9000",
        ]);
        let k = evs(&[
            "@event boot el=2 cpus=2 t=2000",
            "@event initcall level=early name=mm result=ok us=1500 t=3600",
            "@event level level=early calls=1 us=1600 t=3650",
            "@event level level=pure calls=0 us=20 t=3700",
            "@event hyp state=installed smc_trap=on ffa=1.2 t=5000",
            "@event initcall level=core name=hyp_install result=ok us=1200 t=5100",
            "@event initcall level=core name=irqchip result=ok us=400 t=5550",
            "@event level level=core calls=2 us=1700 t=5600",
            "@event probe dev=platform/pl011@9000000 drv=pl011 result=ok us=300 t=7000",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=defer reason=\"hyp not finalised\" us=50 t=7100",
            "@event initcall level=device name=pl011 result=ok us=900 t=7150",
            "@event level level=device calls=1 us=1000 t=7200",
            "@event hyp state=finalised cpu=0 t=7900",
            "@event hyp state=finalised cpu=1 t=7950",
            "@event hyp state=finalised cpus=2 t=8000",
            "@event initcall level=device_sync name=hyp_finalise result=ok us=700 t=8050",
            "@event level level=device_sync calls=1 us=750 t=8060",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=ok us=1000 t=9050",
            "@event ffa state=ready version=1.2 id=0 via=hyp t=9100",
            "@event ffa-partition id=0x8001 uuid=u dev=platform/arm-ffa/arm-ffa-1 t=9150",
            "@event probe dev=platform/arm-ffa/arm-ffa-1 drv=ffa-test result=ok us=400 t=9600",
            "@event initcall level=late name=deferred_probe_flush result=ok us=1600 t=9750",
            "@event level level=late calls=1 us=1700 t=9800",
            "@event done status=ok t=12000",
        ]);
        (k, fw)
    }

    #[test]
    fn spans_start_at_t_minus_us_and_nest() {
        let (k, fw) = full_boot();
        let m = timing(&k, &fw);
        let mm = m.spans.iter().find(|s| s.name == "mm").unwrap();
        assert_eq!((mm.start, mm.dur, mm.level), (2100, 1500, Some(0)));
        let fwb = &m.spans[0];
        assert_eq!(
            (fwb.track, fwb.start, fwb.end()),
            (Track::Firmware, 100, 1500)
        );
        // The pl011 probe ran inside the pl011 initcall (device level).
        let p = m
            .spans
            .iter()
            .find(|s| s.name == "pl011 on platform/pl011@9000000")
            .unwrap();
        let parent = &m.spans[p.parent.unwrap()];
        assert_eq!(parent.name, "pl011");
        assert!(parent.start <= p.start && p.end() <= parent.end());
        assert_eq!(p.level, LEVELS.iter().position(|l| *l == "device"));
        // Every initcall lies inside its level.
        for s in m.spans.iter().filter(|s| s.kind == SpanKind::Initcall) {
            let l = m
                .spans
                .iter()
                .find(|l| l.kind == SpanKind::Level && l.level == s.level)
                .unwrap();
            assert!(l.start <= s.start && s.end() <= l.end(), "{s:?} in {l:?}");
        }
        // The hyp's trusted phase runs from install to the boot CPU's finalise.
        let h = m.spans.iter().find(|s| s.track == Track::Hyp).unwrap();
        assert_eq!((h.start, h.end()), (5000, 8000));
        assert_eq!(m.end, 12000);
    }

    #[test]
    fn a_deferral_flows_to_the_probe_that_bound() {
        let (k, fw) = full_boot();
        let m = timing(&k, &fw);
        assert_eq!(m.flows.len(), 1);
        let f = &m.flows[0];
        assert_eq!(m.spans[f.from].result, "defer");
        assert_eq!(m.spans[f.to].result, "ok");
        assert_eq!(m.spans[f.to].name, "ffa-core on platform/arm-ffa");
        assert_eq!(f.reason, "hyp not finalised");
        assert_eq!(
            m.spans[f.from].level,
            LEVELS.iter().position(|l| *l == "device")
        );
        assert_eq!(
            m.spans[f.to].level,
            LEVELS.iter().position(|l| *l == "late")
        );
        let labels: Vec<&str> = m.milestones.iter().map(|x| x.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "enter NS EL2",
                "kernel entered EL2",
                "hyp installed",
                "stage-2 on cpu 0",
                "stage-2 on cpu 1",
                "hyp finalised (2 CPUs)",
                "FF-A ready v1.2",
                "done ok"
            ]
        );
    }

    #[test]
    fn events_without_time_are_left_out() {
        let k = evs(&["@event initcall level=core name=x result=ok us=3"]);
        let m = timing(&k, &[]);
        assert!(m.spans.is_empty() && m.end == 0);
    }
}
