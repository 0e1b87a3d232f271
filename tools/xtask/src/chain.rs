//! The chain, drawn: a text tree after every run, and a boot chart (SVG) beside the JSON
//! report.
//!
//! The tree comes from the event stream: hyp installed → FF-A core deferred → hyp finalised
//! → FF-A core probed → partitions → drivers bound (or what broke instead). A probe carries no
//! level of its own: it belongs to the level of the next `initcall` event (the call it ran in).
//!
//! The chart draws `timing::Timing` on a time axis, the way `systemd-analyze plot` and
//! Linux's `bootgraph.pl` do: one lane per initcall level (one row per initcall inside it),
//! bars at their real start and length with their names, milestones in a band above, deferred
//! probes as arrows. `layout` computes every box first, so a test can check that no two labels
//! overlap and that no label covers a bar; `svg` only renders the layout.

use crate::judge::LEVELS;
use crate::timing::{Milestone, SpanKind, Timing, Track, timing};
use catena_event::{Event, TIME_KEY};
use std::fmt::Write;

/// The level each kernel event happened in: the next initcall/level event's, or for events
/// after the last one (`done`), the last level that ran.
fn levels_of(events: &[Event]) -> Vec<Option<usize>> {
    let mut out = vec![None; events.len()];
    let mut next: Option<usize> = None;
    for (i, e) in events.iter().enumerate().rev() {
        if matches!(e.kind.as_str(), "initcall" | "level")
            && let Some(l) = e
                .get("level")
                .and_then(|l| LEVELS.iter().position(|x| *x == l))
        {
            next = Some(l);
        }
        out[i] = next;
    }
    let mut last: Option<usize> = None;
    for (i, e) in events.iter().enumerate() {
        if matches!(e.kind.as_str(), "initcall" | "level") {
            last = e
                .get("level")
                .and_then(|l| LEVELS.iter().position(|x| *x == l))
                .or(last);
        }
        if out[i].is_none() {
            out[i] = last;
        }
    }
    out
}

fn ms(t: Option<&str>) -> String {
    t.and_then(|v| v.parse::<u64>().ok())
        .map(|us| format!("{:>9.3} ms", us as f64 / 1000.0))
        .unwrap_or_default()
}

/// One line of the tree: depth, text, level, time.
struct Node {
    depth: usize,
    text: String,
    level: String,
    t: String,
}

/// Renders nodes with box-drawing branches: `├─` for a child with later siblings, `└─` for
/// the last, `│` continuing an ancestor's branch.
fn render_tree(nodes: &[Node]) -> String {
    let last = |i: usize| -> bool {
        let d = nodes[i].depth;
        nodes[i + 1..]
            .iter()
            .find(|n| n.depth <= d)
            .is_none_or(|n| n.depth < d)
    };
    let mut s = String::new();
    let mut open: Vec<bool> = Vec::new(); // per depth: does the branch continue below?
    for (i, n) in nodes.iter().enumerate() {
        open.truncate(n.depth);
        let mut prefix = String::from("  ");
        for &cont in &open {
            prefix.push_str(if cont { "│  " } else { "   " });
        }
        let is_last = last(i);
        prefix.push_str(if is_last { "└─ " } else { "├─ " });
        open.push(!is_last);
        let body = format!("{prefix}{}", n.text);
        let pad = 80usize.saturating_sub(body.chars().count()).max(1);
        let _ = writeln!(s, "{body}{:pad$}{} [{}]", "", n.t, n.level, pad = pad);
    }
    s
}

/// The chain as a tree.
/// What the TPM driver of `dev` reported before its probe line: `; TPM ready (...)` or
/// `; TPM error: ...`, or nothing.
fn tpm_note(before: &[Event], dev: Option<&str>) -> String {
    let Some(e) = before
        .iter()
        .rev()
        .find(|e| e.kind == "tpm" && e.get("dev") == dev && dev.is_some())
    else {
        return String::new();
    };
    match e.get("state") {
        Some("ready") => format!(
            "; TPM ready ({} via {}, {})",
            e.get("transport").unwrap_or("?"),
            e.get("via").unwrap_or("?"),
            e.get("manufacturer").unwrap_or("?")
        ),
        _ => format!("; TPM error: {}", e.get("reason").unwrap_or("?")),
    }
}

/// What the efivar driver of `dev` reported before its probe line.
fn efivar_note(before: &[Event], dev: Option<&str>) -> String {
    let Some(e) = before
        .iter()
        .rev()
        .find(|e| e.kind == "efivar" && e.get("state").is_some() && e.get("dev") == dev)
    else {
        return String::new();
    };
    match e.get("state") {
        Some("ready") => format!(
            "; {} variables, Secure Boot {}",
            e.get("vars").unwrap_or("?"),
            if e.get("secure_boot") == Some("1") {
                "on"
            } else {
                "off"
            }
        ),
        _ => format!("; variables error: {}", e.get("reason").unwrap_or("?")),
    }
}

/// The keyring sizes reported just before `load_uefi_certs` ended.
fn keyrings_note(before: &[Event]) -> String {
    let size = |name: &str| {
        before
            .iter()
            .rev()
            .find(|e| e.kind == "keyring" && e.get("name") == Some(name))
            .and_then(|e| e.get("keys"))
            .unwrap_or("?")
            .to_string()
    };
    format!(
        ".platform {}, .machine {}, .blacklist {}",
        size(".platform"),
        size(".machine"),
        size(".blacklist")
    )
}

pub fn tree(events: &[Event], fw: &[Event]) -> String {
    let levels = levels_of(events);
    let mut nodes: Vec<Node> = Vec::new();
    if let Some(b) = fw.iter().find(|e| e.get("ev") == Some("boot")) {
        let spmc = fw
            .iter()
            .find(|e| e.get("ev") == Some("spmc"))
            .and_then(|e| e.get("version"))
            .unwrap_or("-");
        nodes.push(Node {
            depth: 0,
            text: format!(
                "firmware (EL3): {} CPUs, SPMC {spmc}",
                b.get("cpus").unwrap_or("?")
            ),
            level: "firmware".into(),
            t: ms(b.get(TIME_KEY)),
        });
    }
    // Depths: FF-A lines hang under the FF-A core's probe, drivers under their partition.
    let mut under_core = false;
    let mut under_partition = false;
    let mut partitions: Vec<(String, usize)> = Vec::new(); // (device path, node index)
    // From init on, events are userland's, not an initcall level's.
    let mut userland = false;
    for (i, e) in events.iter().enumerate() {
        userland |= e.kind == "sched" && e.get("state") == Some("started");
        let (depth, text) = match (e.kind.as_str(), e.get("state"), e.get("drv")) {
            ("hyp", Some("installed"), _) => (
                0,
                format!(
                    "hyp installed (SMC trap {}; FF-A {}{})",
                    e.get("smc_trap").unwrap_or("?"),
                    e.get("ffa").unwrap_or("?"),
                    e.get("ffa_buffers")
                        .map(|b| format!(", its buffers {b}"))
                        .unwrap_or_default()
                ),
            ),
            ("hyp", Some("absent"), _) => (
                0,
                format!("hyp absent ({})", e.get("reason").unwrap_or("?")),
            ),
            ("hyp", Some("finalised"), _) => (
                0,
                match (e.get("cpu"), e.get("cpus")) {
                    (Some(c), _) => format!("host stage-2 on on CPU {c}"),
                    (None, Some(n)) => format!("hyp finalised: host stage-2 on all {n} CPUs"),
                    (None, None) => "hyp finalised (host stage-2 on)".into(),
                },
            ),
            ("ffa", Some("early-init"), _) => (
                0,
                format!(
                    "FF-A initialised early, via the firmware directly (v{})",
                    e.get("version").unwrap_or("?")
                ),
            ),
            ("ffa", Some("ready"), _) => (
                1,
                format!(
                    "FF-A ready v{} via {}",
                    e.get("version").unwrap_or("?"),
                    e.get("via").unwrap_or("?")
                ),
            ),
            ("ffa", Some("absent"), _) => (
                1,
                format!("FF-A absent ({})", e.get("reason").unwrap_or("?")),
            ),
            ("ffa", Some("broken"), _) => (
                1,
                format!("FF-A BROKEN: {}", e.get("reason").unwrap_or("?")),
            ),
            ("probe", _, Some("ffa-core")) => match e.get("result") {
                Some("defer") => (
                    0,
                    format!("ffa-core deferred: {}", e.get("reason").unwrap_or("?")),
                ),
                Some(r) => (0, format!("ffa-core probed: {r}")),
                None => continue,
            },
            ("ffa-partition", _, _) => (
                1,
                format!(
                    "partition {} {} -> {}",
                    e.get("id").unwrap_or("?"),
                    e.get("uuid").unwrap_or("?"),
                    e.get("dev").unwrap_or("?")
                ),
            ),
            ("probe", _, Some(d))
                if e.get("dev")
                    .is_some_and(|p| p.starts_with("platform/arm-ffa/")) =>
            {
                (
                    2,
                    format!(
                        "driver {d} on {}: {}{}{}",
                        e.get("dev").unwrap_or("?"),
                        e.get("result").unwrap_or("?"),
                        tpm_note(&events[..i], e.get("dev")),
                        efivar_note(&events[..i], e.get("dev"))
                    ),
                )
            }
            // A TPM reached directly (no secure firmware) binds on the platform bus.
            ("probe", _, Some("tpm-tis")) => (
                0,
                format!(
                    "driver tpm-tis on {}: {}{}",
                    e.get("dev").unwrap_or("?"),
                    e.get("result").unwrap_or("?"),
                    tpm_note(&events[..i], e.get("dev"))
                ),
            ),
            // Where the TPM's consumer ran, and whether it found the TPM: the IMA story.
            ("tpm-consumer", _, _) => (
                0,
                format!(
                    "TPM consumer {} at {}: {}",
                    e.get("name").unwrap_or("?"),
                    e.get("level").unwrap_or("?"),
                    match e.get("result") {
                        Some("ok") => "PCR extended, read back, checked",
                        Some("no-tpm") => "NO TPM yet, went on without it (TPM-bypass)",
                        Some(r) => r,
                        None => "?",
                    }
                ),
            ),
            // Where load_uefi_certs ran, and whether the variables were there: the certs story.
            ("certs", _, _) if e.get("level").is_some() => (
                0,
                format!(
                    "load_uefi_certs at {}: {}",
                    e.get("level").unwrap_or("?"),
                    match e.get("result") {
                        Some("ok") => format!("keyrings {}", keyrings_note(&events[..i])),
                        Some("no-efivar") => {
                            "NO EFI variables yet, keyrings left empty".to_string()
                        }
                        Some(r) => r.to_string(),
                        None => "?".to_string(),
                    }
                ),
            ),
            // After the initcalls: init, the agent's quote, the end of the processes.
            ("sched", Some("started"), _) => (
                0,
                format!(
                    "init (pid {}) started from the initramfs; PAN {}",
                    e.get("init").unwrap_or("?"),
                    e.get("pan").unwrap_or("?")
                ),
            ),
            ("attest", Some("quoted"), _) => (
                0,
                format!(
                    "quote over PCRs 0-11 for the verifier{}",
                    if userland {
                        " (by the agent, in userland)"
                    } else {
                        ""
                    }
                ),
            ),
            ("sched", Some("stopped"), _) => (
                0,
                format!(
                    "processes ended: {} ({} switches, {} preemptions)",
                    e.get("reason").unwrap_or("?"),
                    e.get("switches").unwrap_or("?"),
                    e.get("preemptions").unwrap_or("?")
                ),
            ),
            ("done", _, _) => (
                0,
                format!(
                    "done: {}{}",
                    e.get("status").unwrap_or("?"),
                    e.get("reason")
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            ),
            _ => continue,
        };
        let depth = match depth {
            1 if under_core => 1,
            2 if under_partition => 2,
            2 if under_core => 1,
            _ => 0,
        };
        under_core = match (e.kind.as_str(), e.get("drv"), e.get("result")) {
            ("probe", Some("ffa-core"), Some(r)) => r != "defer",
            _ => under_core && depth > 0,
        };
        under_partition = e.kind == "ffa-partition" || (under_partition && depth == 2);
        let node = Node {
            depth,
            text,
            level: if userland {
                "userland".to_string()
            } else {
                levels[i].map_or("boot", |l| LEVELS[l]).to_string()
            },
            t: ms(e.get(TIME_KEY)),
        };
        // A driver hangs under the partition device it bound to, wherever its line came.
        let dev = e.get("dev").unwrap_or("");
        match partitions.iter().find(|(d, _)| d == dev) {
            Some(&(_, at)) if depth == 2 && e.kind == "probe" => {
                let mut end = at + 1;
                while end < nodes.len() && nodes[end].depth > nodes[at].depth {
                    end += 1;
                }
                for p in partitions.iter_mut().filter(|(_, i)| *i >= end) {
                    p.1 += 1;
                }
                nodes.insert(end, node);
            }
            _ => {
                if e.kind == "ffa-partition" {
                    partitions.push((dev.to_string(), nodes.len()));
                }
                nodes.push(node);
            }
        }
    }
    format!("\nChain\n{}", render_tree(&nodes))
}

// ---------------------------------------------------------------------------------------
// The boot chart.

/// Font size of every label, and the box a monospace character takes (0.6 em wide; the
/// height covers ascenders and descenders).
const FONT: f64 = 11.0;
const CHAR_W: f64 = 6.7;
const TEXT_H: f64 = 13.0;
/// Row height inside a lane, bar height, gutter for lane names, plot width for the boot.
const ROW: f64 = 16.0;
const BAR_H: f64 = 10.0;
const GUTTER: f64 = 120.0;
const PLOT_W: f64 = 1100.0;

/// What a box in the chart is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// Text.
    Label,
    /// A bar: an initcall, a probe, a phase.
    Bar,
    /// A point marker (milestone diamond, probe dot, legend swatch).
    Marker,
    /// Lane backgrounds, level spans, grid lines: drawn under everything, may be covered.
    Background,
}

/// One box of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// What it is.
    pub kind: ItemKind,
    /// Left, top, width, height (px).
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// Text of a label, tooltip of a shape.
    pub text: String,
    /// Fill colour.
    pub color: &'static str,
    /// Label anchor: text baseline is `y + h - 3`.
    pub bold: bool,
}

impl Item {
    fn label(x: f64, y: f64, text: impl Into<String>, color: &'static str) -> Item {
        let text = text.into();
        Item {
            kind: ItemKind::Label,
            x,
            y,
            w: text.chars().count() as f64 * CHAR_W,
            h: TEXT_H,
            text,
            color,
            bold: false,
        }
    }

    fn overlaps(&self, o: &Item) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// A curve from one point to another (the deferred probe).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    /// Start.
    pub from: (f64, f64),
    /// End.
    pub to: (f64, f64),
    /// Tooltip.
    pub text: String,
}

/// Vertical dashed line of a milestone.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// x.
    pub x: f64,
    /// From y to y.
    pub y0: f64,
    /// To.
    pub y1: f64,
    /// Colour.
    pub color: &'static str,
}

/// The chart, laid out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Every box.
    pub items: Vec<Item>,
    /// Deferred-probe arrows.
    pub arrows: Vec<Arrow>,
    /// Milestone rules and axis ticks.
    pub rules: Vec<Rule>,
    /// Canvas size.
    pub width: f64,
    /// Canvas height.
    pub height: f64,
}

const C_OK: &str = "#4a78d0";
const C_ERR: &str = "#c0392b";
const C_DEFER: &str = "#e67e22";
const C_PHASE_FW: &str = "#7f8c8d";
const C_PHASE_HYP: &str = "#27ae60";
const C_PROBE: &str = "#8e44ad";
const C_MILESTONE: &str = "#1e8449";
const C_TEXT: &str = "#222222";
const C_DIM: &str = "#666666";

/// Places a box of width `w` at `x` in the first row (of height `row`, from `top`) where it
/// overlaps nothing already placed there; returns the row's index.
fn first_free_row(rows: &mut Vec<Vec<(f64, f64)>>, x: f64, w: f64) -> usize {
    for (i, r) in rows.iter_mut().enumerate() {
        if r.iter().all(|&(a, b)| x + w + 4.0 <= a || b + 4.0 <= x) {
            r.push((x, x + w));
            return i;
        }
    }
    rows.push(vec![(x, x + w)]);
    rows.len() - 1
}

/// A tick step (ms) from 1, 2, 5 × 10^k giving at least `min_px` between ticks.
fn tick_step_ms(px_per_ms: f64, min_px: f64) -> f64 {
    let mut step = 0.001;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if step * m * px_per_ms >= min_px {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

fn fmt_ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Lays out the chart of `m`.
pub fn layout(scenario: &str, m: &Timing) -> Layout {
    let mut l = Layout::default();
    let end = m.end.max(1);
    let scale = PLOT_W / end as f64; // px per µs
    let x = |t: u64| GUTTER + t as f64 * scale;
    l.items.push(Item {
        bold: true,
        ..Item::label(
            10.0,
            8.0,
            format!(
                "Catena boot chart: {scenario} ({} from reset to the last event)",
                fmt_ms(m.end)
            ),
            C_TEXT,
        )
    });

    // Milestones band: a diamond and its label, in the first row where they fit.
    let band_top = 32.0;
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut placed: Vec<(&Milestone, usize)> = Vec::new();
    for ms in &m.milestones {
        let w = 10.0 + ms.label.chars().count() as f64 * CHAR_W;
        let row = first_free_row(&mut rows, x(ms.t) - 5.0, w);
        placed.push((ms, row));
    }
    let band_h = rows.len().max(1) as f64 * ROW;
    for (ms, row) in &placed {
        let y = band_top + *row as f64 * ROW;
        let color = if ms.bad { C_ERR } else { C_MILESTONE };
        l.items.push(Item {
            kind: ItemKind::Marker,
            x: x(ms.t) - 4.0,
            y: y + 2.0,
            w: 8.0,
            h: 8.0,
            text: format!("{} at {}", ms.label, fmt_ms(ms.t)),
            color,
            bold: false,
        });
        l.items
            .push(Item::label(x(ms.t) + 6.0, y - 1.0, ms.label.clone(), color));
    }

    // Time axis: tick labels under the band.
    let axis_y = band_top + band_h + 4.0;
    let step_ms = tick_step_ms(scale * 1000.0, 70.0);
    let lanes_top = axis_y + TEXT_H + 6.0;
    let mut k = 0.0;
    while k * 1000.0 <= end as f64 {
        let tx = x((k * 1000.0) as u64);
        let text = if step_ms < 1.0 {
            format!("{k:.1} ms")
        } else {
            format!("{k:.0} ms")
        };
        let w = text.chars().count() as f64 * CHAR_W;
        l.items.push(Item::label(tx - w / 2.0, axis_y, text, C_DIM));
        l.rules.push(Rule {
            x: tx,
            y0: lanes_top,
            y1: lanes_top, // finished below, once the lanes' height is known
            color: "#dddddd",
        });
        k += step_ms;
    }

    // Lanes: firmware, hyp, then each level with one row per initcall.
    let mut y = lanes_top;
    let mut lane = |l: &mut Layout, name: &str, rows: usize, shade: bool| -> f64 {
        let h = rows.max(1) as f64 * ROW + 4.0;
        l.items.push(Item {
            kind: ItemKind::Background,
            x: 0.0,
            y,
            w: GUTTER + PLOT_W,
            h,
            text: String::new(),
            color: if shade { "#f2f4f7" } else { "#fafbfc" },
            bold: false,
        });
        l.items.push(Item::label(6.0, y + 2.0, name, C_TEXT));
        let top = y + 2.0;
        y += h;
        top
    };
    let bar = |l: &mut Layout, top: f64, start: u64, dur: u64, color, text: String| {
        let bx = x(start);
        let bw = (dur as f64 * scale).max(2.0);
        l.items.push(Item {
            kind: ItemKind::Bar,
            x: bx,
            y: top + (ROW - BAR_H) / 2.0,
            w: bw,
            h: BAR_H,
            text: text.clone(),
            color,
            bold: false,
        });
        l.items
            .push(Item::label(bx + bw + 5.0, top + 1.0, text, C_TEXT));
    };
    let mut shade = false;
    for (track, color) in [(Track::Firmware, C_PHASE_FW), (Track::Hyp, C_PHASE_HYP)] {
        let phases: Vec<_> = m
            .spans
            .iter()
            .filter(|s| s.track == track && s.kind == SpanKind::Phase)
            .collect();
        let top = lane(&mut l, track.name(), phases.len(), shade);
        shade = !shade;
        for (i, s) in phases.iter().enumerate() {
            let text = format!("{} {}", s.name, fmt_ms(s.dur));
            bar(&mut l, top + i as f64 * ROW, s.start, s.dur, color, text);
        }
    }
    // Row of each initcall span (by index), for probes and arrows.
    let mut row_of: Vec<Option<f64>> = vec![None; m.spans.len()];
    for (li, name) in LEVELS.iter().enumerate() {
        let calls: Vec<usize> = m
            .spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == SpanKind::Initcall && s.level == Some(li))
            .map(|(i, _)| i)
            .collect();
        let top = lane(&mut l, name, calls.len(), shade);
        shade = !shade;
        if let Some(lv) = m
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Level && s.level == Some(li))
        {
            l.items.push(Item {
                kind: ItemKind::Background,
                x: x(lv.start),
                y: top - 2.0,
                w: (lv.dur as f64 * scale).max(1.0),
                h: calls.len().max(1) as f64 * ROW + 4.0,
                text: format!("level {name} {}", fmt_ms(lv.dur)),
                color: "#dfe7f5",
                bold: false,
            });
        }
        for (r, &i) in calls.iter().enumerate() {
            let s = &m.spans[i];
            let rt = top + r as f64 * ROW;
            row_of[i] = Some(rt);
            let color = if s.result == "ok" { C_OK } else { C_ERR };
            let text = if s.result == "ok" {
                format!("{} {}", s.name, fmt_ms(s.dur))
            } else {
                format!("{} {} ({})", s.name, fmt_ms(s.dur), s.result)
            };
            bar(&mut l, rt, s.start, s.dur, color, text);
        }
    }
    let lanes_bottom = y;
    for r in &mut l.rules {
        r.y1 = lanes_bottom;
    }
    // Probes: a dot at the end of each, on the row of the initcall it ran in.
    let mut dot_at: Vec<Option<(f64, f64)>> = vec![None; m.spans.len()];
    for (i, s) in m.spans.iter().enumerate() {
        if s.kind != SpanKind::Probe {
            continue;
        }
        let Some(rt) = s.parent.and_then(|p| row_of[p]) else {
            continue;
        };
        let (cx, cy) = (x(s.end()), rt + ROW / 2.0);
        dot_at[i] = Some((x(s.start), cy));
        l.items.push(Item {
            kind: ItemKind::Marker,
            x: cx - 3.0,
            y: cy - 3.0,
            w: 6.0,
            h: 6.0,
            text: format!("probe {}: {} ({})", s.name, s.result, fmt_ms(s.dur)),
            color: match s.result.as_str() {
                "ok" => C_PROBE,
                "defer" => C_DEFER,
                "nodev" => C_DIM,
                _ => C_ERR,
            },
            bold: false,
        });
    }
    // Milestone rules from the band through the lanes.
    for (ms, row) in &placed {
        l.rules.push(Rule {
            x: x(ms.t),
            y0: band_top + *row as f64 * ROW + 10.0,
            y1: lanes_bottom,
            color: if ms.bad { C_ERR } else { "#a9cfb4" },
        });
    }

    // Deferred probes: arrows, and their descriptions in a band under the lanes.
    let mut y = lanes_bottom + 8.0;
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut texts = Vec::new();
    for f in &m.flows {
        let (a, b) = (&m.spans[f.from], &m.spans[f.to]);
        let lvl = |s: &crate::timing::Span| s.level.map_or("?", |i| LEVELS[i]);
        let text = format!(
            "deferred: {} at {} ({}), bound at {} {} later",
            a.name,
            lvl(a),
            f.reason,
            lvl(b),
            fmt_ms(b.end().saturating_sub(a.start))
        );
        if let (Some(p), Some(q)) = (dot_at[f.from], dot_at[f.to]) {
            l.arrows.push(Arrow {
                from: p,
                to: q,
                text: text.clone(),
            });
        }
        let w = text.chars().count() as f64 * CHAR_W;
        let row = first_free_row(&mut rows, x(a.start), w);
        texts.push((x(a.start), row, text));
    }
    for (tx, row, text) in texts {
        l.items
            .push(Item::label(tx, y + row as f64 * ROW, text, C_ERR));
    }
    y += rows.len() as f64 * ROW + 10.0;

    // Legend, wrapped at the plot's width.
    let legend: [(&str, &'static str, ItemKind); 8] = [
        ("initcall (ok)", C_OK, ItemKind::Bar),
        ("initcall (error)", C_ERR, ItemKind::Bar),
        ("level span", "#dfe7f5", ItemKind::Bar),
        ("firmware / hyp phase", C_PHASE_HYP, ItemKind::Bar),
        ("probe bound", C_PROBE, ItemKind::Marker),
        ("probe deferred", C_DEFER, ItemKind::Marker),
        ("milestone", C_MILESTONE, ItemKind::Marker),
        ("deferred probe -> bound", C_ERR, ItemKind::Marker),
    ];
    let mut lx = 10.0;
    for (text, color, kind) in legend {
        let w = 16.0 + text.chars().count() as f64 * CHAR_W;
        if lx + w > GUTTER + PLOT_W {
            lx = 10.0;
            y += ROW;
        }
        l.items.push(Item {
            kind,
            x: lx,
            y: y + 3.0,
            w: 10.0,
            h: 8.0,
            text: text.into(),
            color,
            bold: false,
        });
        l.items.push(Item::label(lx + 14.0, y, text, C_TEXT));
        lx += w + 18.0;
    }
    y += ROW + 8.0;
    l.height = y;
    l.width = l
        .items
        .iter()
        .map(|i| i.x + i.w)
        .fold(GUTTER + PLOT_W, f64::max)
        + 12.0;
    for it in l
        .items
        .iter_mut()
        .filter(|i| i.kind == ItemKind::Background && i.x == 0.0 && i.w == GUTTER + PLOT_W)
    {
        it.w = 0.0; // resized below to the final width
    }
    let width = l.width;
    for it in l
        .items
        .iter_mut()
        .filter(|i| i.kind == ItemKind::Background && i.x == 0.0 && i.w == 0.0)
    {
        it.w = width;
    }
    l
}

/// Where the layout breaks its rules: labels that overlap each other, labels that cover a
/// bar or a marker, labels off the canvas. Empty for a good layout.
pub fn collisions(l: &Layout) -> Vec<String> {
    let mut out = Vec::new();
    let labels: Vec<&Item> = l
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Label)
        .collect();
    for (i, a) in labels.iter().enumerate() {
        for b in &labels[i + 1..] {
            if a.overlaps(b) {
                out.push(format!("labels `{}` and `{}` overlap", a.text, b.text));
            }
        }
        for s in l
            .items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Bar | ItemKind::Marker))
        {
            if a.overlaps(s) {
                out.push(format!("label `{}` covers `{}`", a.text, s.text));
            }
        }
        if a.x < 0.0 || a.x + a.w > l.width || a.y < 0.0 || a.y + a.h > l.height {
            out.push(format!("label `{}` is off the canvas", a.text));
        }
    }
    out
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as a self-contained SVG; a layout that breaks its rules is said on stderr.
pub fn svg(scenario: &str, events: &[Event], fw: &[Event]) -> String {
    let l = layout(scenario, &timing(events, fw));
    for c in collisions(&l) {
        eprintln!("xtask: boot chart: {c}");
    }
    render(&l)
}

/// Two boots' charts in one picture, one above the other on the same time scale, each under
/// its title (`cargo xtask compare`): the right order and the wrong one, side by side.
pub fn stacked(charts: &[(&str, &Layout)]) -> String {
    const TITLE: f64 = 24.0;
    const GAP: f64 = 16.0;
    let width = charts.iter().map(|(_, l)| l.width).fold(0.0, f64::max);
    let height: f64 = charts.iter().map(|(_, l)| TITLE + l.height + GAP).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="{FONT}">"##
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let mut y = 0.0;
    for (title, l) in charts {
        let _ = writeln!(
            s,
            r##"<text x="8" y="{:.1}" font-weight="bold">{}</text>"##,
            y + TITLE - 8.0,
            esc(title)
        );
        let _ = writeln!(s, r##"<g transform="translate(0,{:.1})">"##, y + TITLE);
        s.push_str(&render(l));
        s.push_str("</g>\n");
        y += TITLE + l.height + GAP;
    }
    s.push_str("</svg>\n");
    s
}

/// Renders a layout.
pub fn render(l: &Layout) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="monospace" font-size="{FONT}">"##,
        l.width, l.height
    );
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{C_ERR}"/></marker></defs>"##
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{:.0}" height="{:.0}" fill="#ffffff"/>"##,
        l.width, l.height
    );
    let draw = |s: &mut String, it: &Item| match it.kind {
        ItemKind::Background => {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}">{}</rect>"##,
                it.x,
                it.y,
                it.w,
                it.h,
                it.color,
                if it.text.is_empty() {
                    String::new()
                } else {
                    format!("<title>{}</title>", esc(&it.text))
                }
            );
        }
        ItemKind::Bar => {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" rx="1"><title>{}</title></rect>"##,
                it.x,
                it.y,
                it.w,
                it.h,
                it.color,
                esc(&it.text)
            );
        }
        ItemKind::Marker => {
            let (cx, cy) = (it.x + it.w / 2.0, it.y + it.h / 2.0);
            let (rx, ry) = (it.w / 2.0, it.h / 2.0);
            let _ = writeln!(
                s,
                r##"<path d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} z" fill="{}"><title>{}</title></path>"##,
                cx,
                cy - ry,
                cx + rx,
                cy,
                cx,
                cy + ry,
                cx - rx,
                cy,
                it.color,
                esc(&it.text)
            );
        }
        ItemKind::Label => {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="{}"{}>{}</text>"##,
                it.x,
                it.y + it.h - 3.0,
                it.color,
                if it.bold {
                    r#" font-weight="bold""#
                } else {
                    ""
                },
                esc(&it.text)
            );
        }
    };
    for it in l.items.iter().filter(|i| i.kind == ItemKind::Background) {
        draw(&mut s, it);
    }
    for r in &l.rules {
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-dasharray="3,3"/>"##,
            r.x, r.y0, r.x, r.y1, r.color
        );
    }
    for it in l.items.iter().filter(|i| i.kind != ItemKind::Background) {
        draw(&mut s, it);
    }
    for a in &l.arrows {
        let ((x1, y1), (x2, y2)) = (a.from, a.to);
        let _ = writeln!(
            s,
            r##"<path d="M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {:.1},{y2:.1}" stroke="{C_ERR}" fill="none" stroke-width="1.5" marker-end="url(#arrow)"><title>{}</title></path>"##,
            (x1 + x2) / 2.0,
            (x1 + x2) / 2.0,
            x2 - 4.0,
            esc(&a.text)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::tests::{evs, full_boot};

    #[test]
    fn userland_follows_the_levels_in_the_tree() {
        let (mut k, fw) = full_boot();
        let done = k.iter().position(|e| e.kind == "done").unwrap();
        let more = evs(&[
            "@event sched state=started init=1 slice_ticks=2 pan=absent t=9990",
            "@event attest state=quoted pcrs=sha256:0-11 t=9995",
            "@event sched state=stopped reason=poweroff switches=9 preemptions=0 t=9998",
        ]);
        for (n, e) in more.into_iter().enumerate() {
            k.insert(done + n, e);
        }
        let t = tree(&k, &fw);
        let at = |needle: &str| t.lines().find(|l| l.contains(needle)).unwrap_or("");
        assert!(at("init (pid 1) started").ends_with("[userland]"), "{t}");
        assert!(
            at("by the agent, in userland").ends_with("[userland]"),
            "{t}"
        );
        assert!(
            at("processes ended: poweroff (9 switches").ends_with("[userland]"),
            "{t}"
        );
        assert!(at("done:").ends_with("[userland]"), "{t}");
    }

    #[test]
    fn the_tree_has_branches_and_levels() {
        let (mut k, fw) = full_boot();
        // A second partition whose line comes before the first one's driver (as in ffa-early).
        let second =
            evs(&["@event ffa-partition id=0x8001 uuid=v dev=platform/arm-ffa/arm-ffa-2 t=9160"]);
        let at = k.iter().position(|e| e.kind == "ffa-partition").unwrap() + 1;
        k.insert(at, second[0].clone());
        let t = tree(&k, &fw);
        let lines: Vec<&str> = t.lines().skip(2).collect();
        assert!(!t.contains("[?]"), "{t}");
        assert!(lines.iter().all(|l| l.ends_with(']')), "{t}");
        assert!(lines[0].starts_with("  ├─ firmware (EL3)"), "{t}");
        assert!(
            lines[1].contains("hyp installed (SMC trap on; FF-A 1.2)")
                && lines[1].ends_with("[core]"),
            "{t}"
        );
        assert!(lines[2].contains("ffa-core deferred") && lines[2].ends_with("[device]"));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("stage-2 on on CPU 1") && l.ends_with("[device_sync]")),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("hyp finalised: host stage-2 on all 2 CPUs")),
            "{t}"
        );
        let probed = lines
            .iter()
            .position(|l| l.contains("ffa-core probed: ok"))
            .unwrap();
        assert!(lines[probed].ends_with("[late]"), "{t}");
        assert!(
            lines[probed + 1].starts_with("  │  ├─ FF-A ready v1.2 via hyp"),
            "{t}"
        );
        assert!(
            lines[probed + 2]
                .starts_with("  │  ├─ partition 0x8001 u -> platform/arm-ffa/arm-ffa-1"),
            "{t}"
        );
        assert!(
            lines[probed + 3]
                .starts_with("  │  │  └─ driver ffa-test on platform/arm-ffa/arm-ffa-1"),
            "{t}"
        );
        assert!(
            lines[probed + 4]
                .starts_with("  │  └─ partition 0x8001 v -> platform/arm-ffa/arm-ffa-2"),
            "{t}"
        );
        let last = lines.last().unwrap();
        assert!(
            last.starts_with("  └─ done: ok") && last.ends_with("[late]"),
            "{t}"
        );
        assert!(last.contains("12.000 ms"), "{t}");
    }

    #[test]
    fn the_tree_shows_where_the_tpm_consumer_ran_and_what_it_found() {
        let k = evs(&[
            "@event boot el=2 cpus=1 t=1000",
            "@event initcall level=late name=consumer_tpm_selftest result=ok t=2000",
            "@event tpm-consumer name=tpm_selftest level=late result=no-tpm t=2100",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=ok t=3000",
            "@event ffa state=ready version=1.2 via=hyp t=3100",
            "@event ffa-partition id=0x8002 uuid=u dev=platform/arm-ffa/arm-ffa-3 t=3200",
            "@event tpm state=ready transport=crb-ffa via=req2 dev=platform/arm-ffa/arm-ffa-3 manufacturer=IBM t=3300",
            "@event probe dev=platform/arm-ffa/arm-ffa-3 drv=tpm-crb-ffa result=ok t=3400",
            "@event tpm-consumer name=tpm_selftest level=late_sync result=ok t=4000",
            "@event done status=ok t=5000",
        ]);
        let t = tree(&k, &[]);
        let at = |needle: &str| {
            t.lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` in\n{t}"))
        };
        let early = at("TPM consumer tpm_selftest at late: NO TPM yet");
        let bound = at(
            "driver tpm-crb-ffa on platform/arm-ffa/arm-ffa-3: ok; TPM ready (crb-ffa via req2, IBM)",
        );
        let late_sync = at("TPM consumer tpm_selftest at late_sync: PCR extended");
        assert!(early < bound && bound < late_sync, "{t}");
    }

    #[test]
    fn the_tree_shows_where_load_uefi_certs_ran_and_what_it_found() {
        let k = evs(&[
            "@event boot el=2 cpus=1 t=1000",
            "@event certs result=no-efivar level=late t=2000",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=ok t=3000",
            "@event ffa-partition id=0x8003 uuid=u dev=platform/arm-ffa/arm-ffa-4 t=3200",
            "@event efivar state=ready dev=platform/arm-ffa/arm-ffa-4 vars=7 secure_boot=1 setup_mode=0 t=3300",
            "@event probe dev=platform/arm-ffa/arm-ffa-4 drv=efivar result=ok t=3400",
            "@event keyring name=.platform keys=1 t=3900",
            "@event keyring name=.machine keys=0 t=3901",
            "@event keyring name=.blacklist keys=3 t=3902",
            "@event certs result=ok level=late_sync secure_boot=1 t=4000",
            "@event done status=ok t=5000",
        ]);
        let t = tree(&k, &[]);
        let at = |needle: &str| {
            t.lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` in\n{t}"))
        };
        let early = at("load_uefi_certs at late: NO EFI variables yet");
        let bound =
            at("driver efivar on platform/arm-ffa/arm-ffa-4: ok; 7 variables, Secure Boot on");
        let late_sync =
            at("load_uefi_certs at late_sync: keyrings .platform 1, .machine 0, .blacklist 3");
        assert!(early < bound && bound < late_sync, "{t}");
    }

    #[test]
    fn two_charts_stack_under_their_titles() {
        let k = evs(&[
            "@event boot el=2 cpus=1 t=1000",
            "@event initcall level=core name=a result=ok us=10 t=1100",
            "@event done status=ok t=2000",
        ]);
        let l = layout("x", &timing(&k, &[]));
        let s = stacked(&[("full: late_sync", &l), ("tpm-consumer-late: late", &l)]);
        assert_eq!(s.matches("<svg").count(), 3, "one outer, two charts");
        assert!(
            s.contains(">full: late_sync</text>") && s.contains(">tpm-consumer-late: late</text>")
        );
        let second = s.find("tpm-consumer-late").unwrap();
        assert!(s[second..].contains(&format!(
            "translate(0,{:.1})",
            24.0 + l.height + 16.0 + 24.0
        )));
    }

    #[test]
    fn render_tree_closes_every_branch() {
        let n = |depth: usize, text: &str| Node {
            depth,
            text: text.into(),
            level: "x".into(),
            t: String::new(),
        };
        let t = render_tree(&[n(0, "a"), n(1, "b"), n(1, "c"), n(2, "d"), n(0, "e")]);
        let heads: Vec<String> = t
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            heads,
            [
                "├─ a [x]",
                "│ ├─ b [x]",
                "│ └─ c [x]",
                "│ └─ d [x]",
                "└─ e [x]"
            ]
        );
        assert!(t.lines().nth(3).unwrap().starts_with("  │     └─ d"));
    }

    fn check_layout(l: &Layout) {
        assert_eq!(collisions(l), Vec::<String>::new());
    }

    #[test]
    fn the_chart_has_an_axis_named_bars_and_no_overlaps() {
        let (k, fw) = full_boot();
        let l = layout("full", &timing(&k, &fw));
        check_layout(&l);
        let text: Vec<&str> = l.items.iter().map(|i| i.text.as_str()).collect();
        for name in ["hyp_install 1.20 ms", "mm 1.50 ms", "irqchip 0.40 ms"] {
            assert!(text.contains(&name), "{name} in {text:?}");
        }
        for level in LEVELS {
            assert!(text.contains(&level), "{level}");
        }
        assert!(
            text.contains(&"0 ms") && text.contains(&"10 ms"),
            "{text:?}"
        );
        // Bars sit at their real start on the time axis.
        let bar = l
            .items
            .iter()
            .find(|i| i.kind == ItemKind::Bar && i.text.starts_with("hyp_install"))
            .unwrap();
        let expect = GUTTER + 3900.0 * PLOT_W / 12000.0;
        assert!((bar.x - expect).abs() < 0.01, "{} vs {expect}", bar.x);
        assert_eq!(l.arrows.len(), 1);
        assert!(text.iter().any(|t| t.starts_with(
            "deferred: ffa-core on platform/arm-ffa at device (hyp not finalised), bound at late"
        )));
        let svg = render(&l);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("marker-end=\"url(#arrow)\""));
    }

    #[test]
    fn crowded_charts_still_do_not_overlap() {
        // Many tiny initcalls at nearly the same time, and milestones close together.
        let mut lines = Vec::new();
        for i in 0..40u64 {
            lines.push(format!(
                "@event initcall level=device name=driver_number_{i} result={} us=1 t={}",
                if i % 7 == 0 { "err reason=x" } else { "ok" },
                5000 + i
            ));
            lines.push(format!(
                "@event hyp state=cpu-on target={i:#x} t={}",
                5000 + i
            ));
        }
        lines.push("@event level level=device calls=40 us=100 t=5100".into());
        lines.push("@event done status=fail reason=\"a long reason\" t=5200".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let k = evs(&refs);
        let l = layout("crowded", &timing(&k, &[]));
        check_layout(&l);
    }
}
