//! The chain, drawn: a text tree after every run, and an SVG beside the JSON report.
//!
//! Both come from the event stream alone: hyp installed → FF-A core deferred → hyp finalised
//! → FF-A core probed → partitions → drivers bound (or what broke instead). A probe carries no
//! level of its own: it belongs to the level of the next `initcall` event (the call it ran in).

use crate::judge::LEVELS;
use catena_event::Event;
use std::fmt::Write;

/// The level each kernel event happened in (by the next initcall/level event).
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
    out
}

fn lvl(l: Option<usize>) -> &'static str {
    l.map_or("?", |i| LEVELS[i])
}

/// The chain as a tree.
pub fn tree(events: &[Event], fw: &[Event]) -> String {
    let levels = levels_of(events);
    let mut s = String::from("\nChain\n");
    if let Some(b) = fw.iter().find(|e| e.get("ev") == Some("boot")) {
        let spmc = fw
            .iter()
            .find(|e| e.get("ev") == Some("spmc"))
            .and_then(|e| e.get("version"))
            .unwrap_or("-");
        let _ = writeln!(
            s,
            "  ├─ firmware (EL3): {} CPUs, SPMC {spmc}",
            b.get("cpus").unwrap_or("?")
        );
    }
    for (i, e) in events.iter().enumerate() {
        let at = lvl(levels[i]);
        let line = match (e.kind.as_str(), e.get("state"), e.get("drv")) {
            ("hyp", Some("installed"), _) => format!(
                "hyp installed (SMC trap on; FF-A {})",
                e.get("ffa").unwrap_or("?")
            ),
            ("hyp", Some("absent"), _) => {
                format!("hyp absent ({})", e.get("reason").unwrap_or("?"))
            }
            ("hyp", Some("finalised"), _) => "hyp finalised (host stage-2 on)".into(),
            ("ffa", Some("early-init"), _) => format!(
                "FF-A initialised early, via the firmware directly (v{})",
                e.get("version").unwrap_or("?")
            ),
            ("ffa", Some("ready"), _) => format!(
                "  FF-A ready v{} via {}",
                e.get("version").unwrap_or("?"),
                e.get("via").unwrap_or("?")
            ),
            ("ffa", Some("absent"), _) => {
                format!("  FF-A absent ({})", e.get("reason").unwrap_or("?"))
            }
            ("ffa", Some("broken"), _) => {
                format!("  FF-A BROKEN: {}", e.get("reason").unwrap_or("?"))
            }
            ("probe", _, Some("ffa-core")) => match e.get("result") {
                Some("defer") => format!("ffa-core deferred: {}", e.get("reason").unwrap_or("?")),
                Some(r) => format!("ffa-core probed: {r}"),
                None => continue,
            },
            ("ffa-partition", _, _) => format!(
                "  partition {} {} -> {}",
                e.get("id").unwrap_or("?"),
                e.get("uuid").unwrap_or("?"),
                e.get("dev").unwrap_or("?")
            ),
            ("probe", _, Some(d))
                if e.get("dev")
                    .is_some_and(|p| p.starts_with("platform/arm-ffa/")) =>
            {
                format!(
                    "    driver {d} on {}: {}",
                    e.get("dev").unwrap_or("?"),
                    e.get("result").unwrap_or("?")
                )
            }
            ("done", _, _) => format!(
                "done: {}{}",
                e.get("status").unwrap_or("?"),
                e.get("reason")
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        let _ = writeln!(s, "  ├─ {line:<72} [{at}]");
    }
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chain as an SVG: one lane per initcall level, initcalls as boxes in order, the hyp and
/// FF-A milestones as markers, and the deferred probe as an arrow from where it deferred to
/// where it bound.
pub fn svg(scenario: &str, events: &[Event]) -> String {
    let levels = levels_of(events);
    let (lane_h, left, top, step) = (30.0, 110.0, 40.0, 7.0);
    let n = events.len().max(1) as f64;
    let width = left + n * step + 40.0;
    let height = top + lane_h * LEVELS.len() as f64 + 40.0;
    let x = |i: usize| left + i as f64 * step;
    let y = |l: usize| top + l as f64 * lane_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="10">"##
    );
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#c0392b"/></marker></defs>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="20" font-size="13">Catena boot chain: {}</text>"##,
        esc(scenario)
    );
    for (l, name) in LEVELS.iter().enumerate() {
        let fill = if l % 2 == 0 { "#f4f6f8" } else { "#e9edf1" };
        let _ = writeln!(
            s,
            r##"<rect x="0" y="{:.0}" width="{width:.0}" height="{lane_h:.0}" fill="{fill}"/>"##,
            y(l)
        );
        let _ = writeln!(s, r##"<text x="6" y="{:.0}">{name}</text>"##, y(l) + 19.0);
    }
    let mut defer_at: Option<(usize, usize)> = None;
    for (i, e) in events.iter().enumerate() {
        let Some(l) = levels[i] else { continue };
        let (cx, cy) = (x(i), y(l));
        match (
            e.kind.as_str(),
            e.get("state"),
            e.get("drv"),
            e.get("result"),
        ) {
            ("initcall", _, _, r) => {
                let color = if r == Some("ok") {
                    "#5b8def"
                } else {
                    "#c0392b"
                };
                let _ = writeln!(
                    s,
                    r##"<rect x="{cx:.0}" y="{:.0}" width="5" height="18" fill="{color}"><title>{} {}</title></rect>"##,
                    cy + 6.0,
                    esc(e.get("name").unwrap_or("?")),
                    esc(r.unwrap_or("?"))
                );
            }
            ("hyp", Some(st @ ("installed" | "finalised" | "absent")), _, _) => {
                let _ = writeln!(
                    s,
                    r##"<circle cx="{cx:.0}" cy="{:.0}" r="5" fill="#27ae60"><title>hyp {st}</title></circle>"##,
                    cy + 15.0
                );
                let _ = writeln!(
                    s,
                    r##"<text x="{:.0}" y="{:.0}" fill="#1e8449">hyp {st}</text>"##,
                    cx + 7.0,
                    cy + 12.0
                );
            }
            ("ffa", Some(st), _, _) => {
                let color = if st == "broken" { "#c0392b" } else { "#8e44ad" };
                let _ = writeln!(
                    s,
                    r##"<text x="{:.0}" y="{:.0}" fill="{color}">ffa {}</text>"##,
                    cx + 2.0,
                    cy + 27.0,
                    esc(st)
                );
            }
            ("probe", _, Some("ffa-core"), Some("defer")) => {
                // The arrow starts where the probe first deferred.
                defer_at.get_or_insert((i, l));
                let _ = writeln!(
                    s,
                    r##"<circle cx="{cx:.0}" cy="{:.0}" r="5" fill="#f39c12"><title>ffa-core deferred</title></circle>"##,
                    cy + 15.0
                );
            }
            ("probe", _, Some("ffa-core"), Some(r)) => {
                let _ = writeln!(
                    s,
                    r##"<circle cx="{cx:.0}" cy="{:.0}" r="5" fill="#8e44ad"><title>ffa-core {}</title></circle>"##,
                    cy + 15.0,
                    esc(r)
                );
                if let Some((di, dl)) = defer_at.take() {
                    let (x1, y1) = (x(di), y(dl) + 15.0);
                    let (x2, y2) = (cx, cy + 15.0);
                    let _ = writeln!(
                        s,
                        r##"<path d="M{x1:.0},{y1:.0} C{:.0},{y1:.0} {:.0},{y2:.0} {:.0},{y2:.0}" stroke="#c0392b" fill="none" stroke-width="2" marker-end="url(#arrow)"/>"##,
                        (x1 + x2) / 2.0,
                        (x1 + x2) / 2.0,
                        x2 - 6.0
                    );
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.0}" y="{:.0}" fill="#c0392b">deferred probe: {} → {}</text>"##,
                        x1 + 8.0,
                        y1 - 8.0,
                        LEVELS[dl],
                        LEVELS[l]
                    );
                }
            }
            _ => {}
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use catena_event::parse_line;

    fn evs(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| parse_line(l).unwrap().unwrap())
            .collect()
    }

    #[test]
    fn tree_and_svg_follow_the_chain() {
        let e = evs(&[
            "@event hyp state=installed ffa=1.2",
            "@event initcall level=core name=hyp_install result=ok us=1",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=defer reason=\"hyp not finalised\"",
            "@event initcall level=device name=ffa_core result=ok us=1",
            "@event hyp state=finalised",
            "@event initcall level=device_sync name=hyp_finalise result=ok us=1",
            "@event probe dev=platform/arm-ffa drv=ffa-core result=ok",
            "@event ffa state=ready version=1.2 via=hyp",
            "@event ffa-partition id=0x8001 uuid=u dev=platform/arm-ffa/arm-ffa-1",
            "@event probe dev=platform/arm-ffa/arm-ffa-1 drv=ffa-test result=ok",
            "@event initcall level=late name=deferred_probe_flush result=ok us=1",
            "@event done status=ok",
        ]);
        let t = tree(&e, &[]);
        let lines: Vec<&str> = t.lines().filter(|l| l.contains("├─")).collect();
        assert!(
            lines[0].contains("hyp installed") && lines[0].ends_with("[core]"),
            "{t}"
        );
        assert!(
            lines[1].contains("ffa-core deferred: hyp not finalised")
                && lines[1].ends_with("[device]"),
            "{t}"
        );
        assert!(
            lines[2].contains("hyp finalised") && lines[2].ends_with("[device_sync]"),
            "{t}"
        );
        assert!(
            lines[3].contains("ffa-core probed: ok") && lines[3].ends_with("[late]"),
            "{t}"
        );
        assert!(
            t.contains("driver ffa-test on platform/arm-ffa/arm-ffa-1: ok"),
            "{t}"
        );
        let svg = svg("full", &e);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("deferred probe: device → late"), "{svg}");
        assert_eq!(
            svg.matches("<path").count(),
            2,
            "the arrow marker and the deferred-probe arrow"
        );
        for l in LEVELS {
            assert!(svg.contains(&format!(">{l}</text>")));
        }
    }
}
