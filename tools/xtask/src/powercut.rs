//! The variable store's power-cut campaign (`[scenarios.X.powercut]`): on one persistent
//! flash, boot once to write the old values, then for N = 1, 2, ... boot with the flash's
//! power cut before step N of the write (fw_cfg `opt/catena/varstore-cut`; a step is one bus
//! word programmed or one block erased) and boot again to check that every variable holds an
//! allowed value — the old or the new, never a torn one — and that the store still takes a
//! write. The campaign ends when a write completes before its cut.

use crate::config::{Config, Powercut, Scenario};
use crate::{build, judge, runner, scenario_args};
use anyhow::{Result, bail};
use catena_event::Event;
use std::path::Path;
use std::time::Duration;

/// Sets (or adds) the kernel command line's `catena.efivar_ops`.
fn with_ops(args: &mut Vec<String>, base: &str, ops: &str) {
    let line = format!("{base} catena.efivar_ops={ops}").trim().to_string();
    match args.iter().position(|a| a == "-append") {
        Some(i) if i + 1 < args.len() => args[i + 1] = line,
        _ => args.extend(["-append".into(), line]),
    }
}

/// The `efivar op=...` results of a boot, in order: (op, name, result, value).
fn ops(events: &[Event]) -> Vec<(String, String, String, Option<String>)> {
    events
        .iter()
        .filter(|e| e.kind == "efivar" && e.get("op").is_some())
        .map(|e| {
            (
                e.get("op").unwrap_or("").to_string(),
                e.get("name").unwrap_or("").to_string(),
                e.get("result").unwrap_or("").to_string(),
                e.get("value").map(str::to_string),
            )
        })
        .collect()
}

/// Whether `value` (None: the variable is absent) is one `allowed` lists (`-` = absent).
pub fn allowed(value: Option<&str>, allowed: &[String]) -> bool {
    allowed.iter().any(|a| match value {
        None => a == "-",
        Some(v) => a == v,
    })
}

/// Runs the campaign; the problems found (empty: it passed).
pub fn campaign(
    root: &Path,
    cfg: &Config,
    name: &str,
    s: &Scenario,
    p: &Powercut,
    images: &build::Images,
    echo: bool,
) -> Result<Vec<String>> {
    if !s.flash {
        bail!("`{name}`: a power-cut campaign needs persistent flash (flash = true)");
    }
    let timeout = Duration::from_secs(cfg.timeout(s));
    let boot = |ops: &str, cut: Option<u32>, fresh: bool| -> Result<judge::Outcome> {
        let prep = crate::Prep {
            fresh,
            ..crate::Prep::default()
        };
        let mut parts = scenario_args(root, cfg, name, s, images, prep)?;
        with_ops(&mut parts.args, &s.cmdline, ops);
        if let Some(n) = cut {
            parts.args.extend([
                "-fw_cfg".into(),
                format!("name=opt/catena/varstore-cut,string={n}"),
            ]);
        }
        let log = crate::secure_log_path(root, name);
        let (outcome, _) = runner::boot(&parts.args, timeout, false, Some(&log), None, &[])?;
        Ok(outcome)
    };
    let mut problems = Vec::new();
    // The old values.
    let o = boot(&p.setup, None, true)?;
    let setup = ops(&o.events);
    if o.status() != "ok" || setup.is_empty() || setup.iter().any(|r| r.2 != "success") {
        problems.push(format!("the setup boot failed: {} {setup:?}", o.status()));
        return Ok(problems);
    }
    let check_ops: Vec<String> = p.expect.keys().map(|v| format!("get:{v}")).collect();
    let mut cuts = 0;
    let mut recovered = std::collections::BTreeMap::<String, u32>::new();
    for n in 1..=p.max_steps {
        let o = boot(&p.write, Some(n), false)?;
        let was_cut = o
            .fw_events
            .iter()
            .any(|e| e.kind == "fw" && e.get("ev") == Some("varstore-cut"));
        if !was_cut {
            // The write finished before step n: it must have succeeded, and so must the boot.
            let w = ops(&o.events);
            if o.status() != "ok" || w.iter().any(|r| r.2 != "success") {
                problems.push(format!("step {n}: the uncut write failed: {w:?}"));
            }
            if echo {
                println!(
                    "xtask: the write takes {} flash steps; {cuts} cuts checked",
                    n - 1
                );
            }
            break;
        }
        cuts += 1;
        // After the cut: every variable old or new, and the store takes a write.
        let probe = format!("probe{n}");
        let mut c = check_ops.clone();
        c.push(format!("set:Powercut={probe}"));
        c.push("get:Powercut".into());
        let o = boot(&c.join(","), None, false)?;
        if let Some(v) = o.fw_events.iter().find(|e| e.get("ev") == Some("varstore")) {
            for k in ["torn", "superseded", "compacted", "corrupt", "formatted"] {
                if v.get(k).is_some_and(|x| x != "0") {
                    *recovered.entry(k.to_string()).or_default() += 1;
                }
            }
            if v.get("corrupt").is_some_and(|x| x != "0") || v.get("formatted") == Some("1") {
                problems.push(format!(
                    "step {n}: the store reported damage after a cut: {v:?}"
                ));
            }
        } else {
            problems.push(format!("step {n}: no fw ev=varstore after the cut"));
        }
        let results = ops(&o.events);
        for (var, allowed_values) in &p.expect {
            let r = results.iter().find(|r| r.0 == "get" && &r.1 == var);
            let value = match r {
                Some((_, _, res, v)) if res == "success" => v.as_deref(),
                Some((_, _, res, _)) if res == "not-found" => None,
                other => {
                    problems.push(format!("step {n}: get {var}: {other:?}"));
                    continue;
                }
            };
            if !allowed(value, allowed_values) {
                problems.push(format!(
                    "step {n}: {var} = {value:?}, allowed {allowed_values:?}"
                ));
            }
        }
        match results
            .iter()
            .rev()
            .find(|r| r.0 == "get" && r.1 == "Powercut")
        {
            Some((_, _, res, Some(v))) if res == "success" && *v == probe => {}
            other => problems.push(format!(
                "step {n}: the store did not take a write after the cut: {other:?}"
            )),
        }
        if echo {
            println!(
                "xtask: cut before step {n}: checked ({} problems so far)",
                problems.len()
            );
        }
        if n == p.max_steps {
            problems.push(format!("the write did not complete within {n} steps"));
        }
    }
    if cuts == 0 {
        problems.push("no boot was cut: the write never reached the flash".into());
    }
    if echo {
        println!("xtask: recoveries seen: {recovered:?}");
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_values_and_absence() {
        let a = vec!["old".to_string(), "-".to_string()];
        assert!(allowed(Some("old"), &a));
        assert!(allowed(None, &a));
        assert!(!allowed(Some("ol"), &a));
        assert!(!allowed(None, &["old".to_string()]));
    }

    #[test]
    fn the_ops_replace_or_join_the_command_line() {
        let mut a = vec!["-append".to_string(), "loglevel=info".to_string()];
        with_ops(&mut a, "loglevel=info", "get:A");
        assert_eq!(a[1], "loglevel=info catena.efivar_ops=get:A");
        let mut b = vec![];
        with_ops(&mut b, "", "list");
        assert_eq!(b, ["-append", "catena.efivar_ops=list"]);
    }
}
