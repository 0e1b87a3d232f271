//! `cargo xtask fuzz [TARGET] [--seconds N]`: the cargo-fuzz targets in `fuzz/` (every parser
//! of outside input), each for N seconds. Needs a nightly toolchain and cargo-fuzz, which this
//! command checks for and says how to install; it is not part of `cargo xtask test`.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// The targets, and the seed directory each starts from (relative to `fuzz/`), if any.
pub const TARGETS: [(&str, Option<&str>); 5] = [
    ("dtb", Some("../testdata/qemu-virt")),
    ("ffa_descriptors", None),
    ("spmc_calls", None),
    ("proxy_calls", None),
    ("text_inputs", None),
];

/// Runs one target or all of them; non-zero when a target found a crash.
pub fn run(root: &Path, target: Option<&str>, seconds: u64) -> Result<i32> {
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "cargo-fuzz on a nightly toolchain is needed:\n    rustup toolchain install nightly && cargo +nightly install cargo-fuzz"
        );
    }
    let chosen: Vec<_> = TARGETS
        .iter()
        .filter(|(t, _)| target.is_none_or(|w| w == *t))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
        bail!(
            "no fuzz target `{}` (have: {})",
            target.unwrap_or(""),
            names.join(", ")
        );
    }
    let mut failed = 0;
    for (t, seeds) in chosen {
        println!("xtask: fuzzing `{t}` for {seconds} s");
        let corpus = format!("corpus/{t}");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", t, &corpus]);
        if let Some(s) = seeds {
            cmd.arg(s);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=4096",
        ]);
        let status = cmd.status().context("running cargo fuzz")?;
        if !status.success() {
            eprintln!("xtask: `{t}` found a crash (see fuzz/artifacts/{t}/)");
            failed += 1;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
