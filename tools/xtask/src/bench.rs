//! `cargo xtask bench NAME`: guest instruction counts, never wall time.
//!
//! Each side of a `[bench.NAME]` boots once on one CPU under `-icount shift=0,sleep=off` with
//! `tools/qemu-plugin/insn_count.c`, which counts the instructions executed (all ELs) between
//! the guest's start and end markers around the measured work. Same binary, same inputs: the
//! counts repeat exactly run to run.

use crate::{build, config, prereq, runner};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn build_plugin(root: &Path) -> Result<std::path::PathBuf> {
    let src = root.join("tools/qemu-plugin/insn_count.c");
    let out = root.join("target/catena/insn_count.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .context("running cc (a C compiler builds the QEMU plugin; apt-get install gcc)")?;
    if !status.success() {
        bail!("building the instruction-counting plugin failed");
    }
    Ok(out)
}

/// Replaces an option's value in a QEMU argument list (or appends it).
fn set_arg(args: &mut Vec<String>, opt: &str, value: &str) {
    match args.iter().position(|a| a == opt) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value.to_string(),
        _ => args.extend([opt.to_string(), value.to_string()]),
    }
}

/// One side of a benchmark: the scenario booted, the parameter that runs the work, the event
/// that reports it.
#[derive(Clone, Copy)]
struct Side<'a> {
    scenario: &'a str,
    param: &'a str,
    event: &'a str,
}

/// QEMU's arguments for a benchmark boot of `scenario` with kernel command line `cmdline`:
/// the image with the test hooks (the benchmarks' parameters are hooks), one CPU, and for a
/// scenario with a TPM a fresh swtpm, ended with the run. Also the secure log's path.
fn bench_boot(
    root: &Path,
    cfg: &config::Config,
    images: &build::Images,
    scenario: &str,
    cmdline: &str,
) -> Result<(Vec<String>, std::path::PathBuf, Option<crate::tpm::Swtpm>)> {
    let s = cfg.scenario(scenario)?;
    let dir = root.join("target/catena/runs");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join(format!("bench-{scenario}.secure.log"));
    let mut args = cfg.qemu_args(s, images, &log, false, None);
    set_arg(
        &mut args,
        "-kernel",
        &images.image_hooks.display().to_string(),
    );
    set_arg(&mut args, "-smp", "1");
    set_arg(&mut args, "-append", cmdline);
    let tpm = if s.tpm {
        let t = crate::tpm::Swtpm::start(&root.join("target/catena/state/bench-tpm"), false)?;
        args.extend(t.qemu_args());
        Some(t)
    } else {
        None
    };
    Ok((args, log, tpm))
}

/// `pairs` in one boot of `scenario` without the counter: the kernel alternates one call
/// through the chain and one by the firmware, each timed by the guest's counter, and reports
/// the medians (the two halves of a pair run back to back, so a slow stretch of this shared
/// host slows both; the median, so one stall does not move it). Returns (with, without) ns.
fn paired(
    root: &Path,
    cfg: &config::Config,
    images: &build::Images,
    scenario: &str,
    pairs: &str,
    event: &str,
    calls: u32,
) -> Result<(u64, u64)> {
    let (args, log, _tpm) = bench_boot(root, cfg, images, scenario, &format!("{pairs}={calls}"))?;
    let outcome = boot_clean(cfg, scenario, &args, &log, "with its pairs")?;
    let e = reported(&outcome, &format!("{event} pairs={calls}"), calls)?;
    let ns = |k: &str| -> Result<u64> {
        e.get(k)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("`{event}` has no {k}="))
    };
    Ok((ns("chain_ns")?, ns("direct_ns")?))
}

/// Boots a benchmark's QEMU arguments (four times the scenario's timeout) and requires a clean
/// end.
fn boot_clean(
    cfg: &config::Config,
    scenario: &str,
    args: &[String],
    log: &Path,
    how: &str,
) -> Result<crate::judge::Outcome> {
    let s = cfg.scenario(scenario)?;
    let (outcome, stderr) = runner::boot(
        args,
        Duration::from_secs(cfg.timeout(s) * 4),
        false,
        s.firmware.then_some(log),
        None,
        &[],
    )?;
    if outcome.status() != "ok" {
        bail!(
            "`{scenario}` did not boot cleanly {how}: {} {}",
            outcome.reason(),
            stderr.trim()
        );
    }
    Ok(outcome)
}

/// The event matching `pattern` (kernel's or firmware's), which must say all `calls` worked.
fn reported<'a>(
    outcome: &'a crate::judge::Outcome,
    pattern: &str,
    calls: u32,
) -> Result<&'a catena_event::Event> {
    let p = crate::judge::Pattern::parse(pattern)?;
    let e = outcome
        .events
        .iter()
        .chain(&outcome.fw_events)
        .find(|e| p.matches(e))
        .with_context(|| format!("the guest reported no `{pattern}` event"))?;
    if e.get("ok") != Some(&calls.to_string()) {
        bail!("`{pattern}`: only {:?} of {calls} succeeded", e.get("ok"));
    }
    Ok(e)
}

/// Runs one side; returns the instructions counted in the window. With `profile`, also
/// prints the functions the window's instructions went to (per call, the 15 largest).
fn count(
    root: &Path,
    cfg: &config::Config,
    images: &build::Images,
    plugin: &Path,
    side: Side<'_>,
    calls: u32,
    profile: bool,
) -> Result<u64> {
    let Side {
        scenario,
        param,
        event,
    } = side;
    // A bad pattern fails before the boot, not after.
    crate::judge::Pattern::parse(event)?;
    let dir = root.join("target/catena/runs");
    let counts = dir.join(format!("bench-{scenario}.count"));
    let (mut args, log, _tpm) =
        bench_boot(root, cfg, images, scenario, &format!("{param}={calls}"))?;
    let _ = std::fs::remove_file(&counts);
    let prof = dir.join(format!("bench-{scenario}-{}.prof", param.replace('.', "_")));
    let _ = std::fs::remove_file(&prof);
    let mut plugin_arg = format!("{},out={}", plugin.display(), counts.display());
    if profile {
        plugin_arg.push_str(&format!(",profile={}", prof.display()));
    }
    args.extend([
        "-icount".into(),
        "shift=0,sleep=off".into(),
        "-plugin".into(),
        plugin_arg,
    ]);
    let outcome = boot_clean(cfg, scenario, &args, &log, "under the counter")?;
    reported(&outcome, event, calls)?;
    let text = std::fs::read_to_string(&counts)
        .with_context(|| format!("reading {}", counts.display()))?;
    let window: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .context("malformed plugin output")?;
    if window == 0 {
        bail!("the counting window is empty: markers not seen");
    }
    if profile {
        print_profile(root, images, &outcome, &prof, side, calls)?;
    }
    Ok(window)
}

/// The window's instructions by function: the kernel (with hooks) where the `boot` event says
/// it ran, the hyp where it says it runs, the firmware where it is linked.
fn print_profile(
    root: &Path,
    images: &build::Images,
    outcome: &crate::judge::Outcome,
    prof: &Path,
    side: Side<'_>,
    calls: u32,
) -> Result<()> {
    let nm = prereq::llvm_tool("llvm-nm")?;
    let hex =
        |e: Option<&str>| e.and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
    let find = |kind: &str, key: &str| {
        hex(outcome
            .events
            .iter()
            .find(|e| e.kind == kind && e.get(key).is_some())
            .and_then(|e| e.get(key)))
    };
    let mut syms = Vec::new();
    if let Some(base) = find("boot", "base") {
        syms.extend(crate::profile::symbols(
            &nm,
            &images.elf_hooks,
            base,
            "kernel",
        )?);
    }
    if let Some(base) = find("hyp", "region") {
        let hyp = root.join("target/catena/hyp.elf");
        syms.extend(crate::profile::symbols(&nm, &hyp, base, "hyp")?);
    }
    let fw = root.join("target/catena/firmware.elf");
    if fw.is_file() {
        syms.extend(crate::profile::symbols(&nm, &fw, 0, "firmware")?);
    }
    let text =
        std::fs::read_to_string(prof).with_context(|| format!("reading {}", prof.display()))?;
    let by_fn = crate::profile::attribute(&crate::profile::rows(&text), &syms);
    println!(
        "  where `{}` ({}) spends its instructions, per call (profile in {}):",
        side.param,
        side.scenario,
        prof.display()
    );
    for (name, n) in by_fn.iter().take(15) {
        let mut name = name.clone();
        name.truncate(100);
        println!("    {:>9.0}  {name}", *n as f64 / f64::from(calls));
    }
    Ok(())
}

/// `cargo xtask bench certs`: `load_uefi_certs` counted on four enrolled sets — a baseline
/// (1 certificate, 1 hash), 50 and 100 certificates, 400 hashes — each on a fresh `full` boot
/// with one CPU; per certificate and per hash is the difference to the baseline divided by the
/// entries added, and the two certificate counts show whether the cost grows linearly.
fn certs(root: &Path) -> Result<i32> {
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    prereq::ensure_qemu()?;
    let images = build::build(root, true)?;
    let plugin = build_plugin(root)?;
    let dir = root.join("target/catena/state/bench-certs/pki");
    if !dir.join("PK.auth").is_file() {
        crate::varstore::pki(&dir)?;
    }
    let sets = [
        ("base", 1u32, 1u32),
        ("c50", 50, 1),
        ("c100", 100, 1),
        ("h400", 1, 400),
    ];
    println!(
        "xtask: bench `certs`: load_uefi_certs (db through efivar, X.509 parsed, keyrings filled, events printed) over enrolled sets"
    );
    let s = cfg.scenario("full")?;
    let mut counts = Vec::new();
    for (label, c, h) in sets {
        crate::varstore::scale_set(&dir, label, c, h)?;
        let log = root.join(format!("target/catena/runs/bench-certs-{label}.secure.log"));
        let out = root.join(format!("target/catena/runs/bench-certs-{label}.count"));
        let _ = std::fs::remove_file(&out);
        let mut args = cfg.qemu_args(s, &images, &log, false, None);
        set_arg(
            &mut args,
            "-kernel",
            &images.image_hooks.display().to_string(),
        );
        set_arg(&mut args, "-smp", "1");
        set_arg(&mut args, "-append", "catena.certs_bench");
        let db = format!("db-{label}.auth");
        let dbx = format!("dbx-{label}.auth");
        let files = [
            ("1-PK", "PK.auth"),
            ("2-KEK", "KEK.auth"),
            ("3-db", db.as_str()),
            ("4-dbx", dbx.as_str()),
        ];
        for (name, f) in files {
            args.extend([
                "-fw_cfg".into(),
                format!(
                    "name=opt/catena/enroll/{name},file={}",
                    dir.join(f).display()
                ),
            ]);
        }
        let _tpm =
            crate::tpm::Swtpm::start(&root.join("target/catena/state/bench-certs/tpm"), false)?;
        args.extend(_tpm.qemu_args());
        args.extend([
            "-icount".into(),
            "shift=0,sleep=off".into(),
            "-plugin".into(),
            format!("{},out={}", plugin.display(), out.display()),
        ]);
        let (o, stderr) = runner::boot(
            &args,
            Duration::from_secs(cfg.timeout(s) * 4),
            false,
            Some(&log),
            None,
            &[],
        )?;
        let platform = o
            .events
            .iter()
            .find(|e| e.kind == "keyring" && e.get("name") == Some(".platform"))
            .and_then(|e| e.get("keys"))
            .unwrap_or("?")
            .to_string();
        let blacklist = o
            .events
            .iter()
            .find(|e| e.kind == "keyring" && e.get("name") == Some(".blacklist"))
            .and_then(|e| e.get("keys"))
            .unwrap_or("?")
            .to_string();
        if o.status() != "ok" || platform != c.to_string() || blacklist != h.to_string() {
            bail!(
                "set `{label}`: boot {} with .platform {platform}, .blacklist {blacklist} (expected {c}, {h}) {}",
                o.status(),
                stderr.trim()
            );
        }
        let text = std::fs::read_to_string(&out)?;
        let window: u64 = text
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse().ok())
            .context("malformed plugin output")?;
        println!("  {label:<6} {c:>4} certificates {h:>4} hashes: {window:>12} instructions");
        counts.push(window as f64);
    }
    let per_cert_50 = (counts[1] - counts[0]) / 49.0;
    let per_cert_100 = (counts[2] - counts[0]) / 99.0;
    let per_hash = (counts[3] - counts[0]) / 399.0;
    println!(
        "  per certificate {per_cert_100:.0} (from 50: {per_cert_50:.0}, ratio {:.3}: linear when near 1), per hash {per_hash:.0}",
        per_cert_100 / per_cert_50
    );
    Ok(0)
}

/// `cargo xtask bench NAME`.
pub fn run(root: &Path, name: &str, calls: Option<u32>, profile: bool) -> Result<i32> {
    if name == "certs" {
        return certs(root);
    }
    if name == "attest" {
        return attest(root, calls.unwrap_or(5));
    }
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    let b = cfg.bench.get(name).with_context(|| {
        let names: Vec<&str> = cfg.bench.keys().map(String::as_str).collect();
        format!(
            "no bench `{name}` in qemu.toml (have: {})",
            names.join(", ")
        )
    })?;
    let calls = calls.unwrap_or(b.calls).max(1);
    prereq::ensure_qemu()?;
    let images = build::build(root, true)?;
    let plugin = build_plugin(root)?;
    println!("xtask: bench `{name}`: {}", b.description);
    let event = b.event.as_deref().unwrap_or("ffa-bench");
    let with = Side {
        scenario: &b.with,
        param: &b.param,
        event,
    };
    let without = Side {
        scenario: &b.without,
        param: b.param_without.as_deref().unwrap_or(&b.param),
        event: b.event_without.as_deref().unwrap_or(event),
    };
    let with = count(root, &cfg, &images, &plugin, with, calls, profile)?;
    let without = count(root, &cfg, &images, &plugin, without, calls, profile)?;
    let (pw, po) = (
        with as f64 / f64::from(calls),
        without as f64 / f64::from(calls),
    );
    println!(
        "  {:<12} {:<16} {:>8} {:>14} {:>12}",
        "side", "scenario", "calls", "instructions", "per call"
    );
    println!(
        "  {:<12} {:<16} {:>8} {:>14} {:>12.0}",
        "with", b.with, calls, with, pw
    );
    println!(
        "  {:<12} {:<16} {:>8} {:>14} {:>12.0}",
        "without", b.without, calls, without, po
    );
    println!(
        "  ratio {:.3} (with / without), {:.0} instructions per call added",
        pw / po,
        pw - po
    );
    // Time, where the benchmark has pairs: what a caller waits, the device's own work
    // included (the counts above leave it out).
    if let Some(pairs) = &b.pairs {
        let (tw, to) = paired(root, &cfg, &images, &b.with, pairs, event, calls)?;
        let (tw, to) = (tw as f64 / 1000.0, to as f64 / 1000.0);
        println!(
            "  time, {calls} pairs in one boot (median call by the guest counter, swtpm's work \
             included, one CPU): with {tw:.1} us, without {to:.1} us, ratio {:.3}",
            tw / to
        );
    }
    Ok(0)
}

/// `cargo xtask bench attest [--calls N]`: N attestations of `full` (boot, evidence, verdict),
/// each one's wall time from QEMU's start to the verdict and its parts, and the median. Wall
/// time, not instructions: the target is a wall-clock budget (1.5 s on this machine).
fn attest(root: &Path, runs: u32) -> Result<i32> {
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    prereq::ensure_qemu()?;
    let images = build::build(root, true)?;
    let mut totals = Vec::new();
    for i in 0..runs.max(1) {
        let a = crate::attest::attest(root, &cfg, &images, "full", None)?;
        if !a.verdict.trusted() {
            anyhow::bail!("run {i}: the verdict was untrusted");
        }
        println!(
            "xtask: attest {i}: reset to verdict {:.3} s = boot, activation and quote {:.3} s + evidence and verifier {:.3} s (registration before it: {:.3} s)",
            a.total.as_secs_f64(),
            a.boot.as_secs_f64(),
            (a.total - a.boot).as_secs_f64(),
            a.registration.as_secs_f64()
        );
        totals.push(a.total);
    }
    totals.sort();
    let median = totals[totals.len() / 2];
    println!(
        "xtask: bench attest: median reset to verdict {:.3} s over {} runs (target < 1.5 s)",
        median.as_secs_f64(),
        totals.len()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_arg_replaces_or_appends() {
        let mut a: Vec<String> = ["-smp", "2", "-m", "1G"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        set_arg(&mut a, "-smp", "1");
        set_arg(&mut a, "-append", "x=1");
        assert_eq!(a, ["-smp", "1", "-m", "1G", "-append", "x=1"]);
    }
}
