//! `cargo xtask fuzz [TARGET] [--seconds N]`: the cargo-fuzz targets in `fuzz/` (every parser
//! of outside input), each for N seconds. Needs a nightly toolchain and cargo-fuzz, which this
//! command checks for and says how to install; it is not part of `cargo xtask test`.
//!
//! The targets are the `[[bin]]`s of `fuzz/Cargo.toml` (the one list); seed folders are in its
//! `[package.metadata.catena.seeds]`. A crash is a new file in `fuzz/artifacts/TARGET/`; a
//! failure without one is a tool or build problem, and reported as that.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A fuzz target and the seed folder it starts from (relative to `fuzz/`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `[[bin]]` name.
    pub name: String,
    /// Seeds, if any.
    pub seeds: Option<String>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(default)]
    bin: Vec<Bin>,
    package: Package,
}

#[derive(serde::Deserialize)]
struct Bin {
    name: String,
}

#[derive(serde::Deserialize)]
struct Package {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(serde::Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    catena: Catena,
}

#[derive(serde::Deserialize, Default)]
struct Catena {
    #[serde(default)]
    seeds: BTreeMap<String, String>,
}

/// The targets named by a `fuzz/Cargo.toml` text.
pub fn targets_of(manifest: &str) -> Result<Vec<Target>> {
    let m: Manifest = toml::from_str(manifest).context("parsing fuzz/Cargo.toml")?;
    if let Some(stray) = m
        .package
        .metadata
        .catena
        .seeds
        .keys()
        .find(|k| !m.bin.iter().any(|b| &b.name == *k))
    {
        bail!("fuzz/Cargo.toml: seeds for `{stray}`, which is not a [[bin]]");
    }
    Ok(m.bin
        .into_iter()
        .map(|b| Target {
            seeds: m.package.metadata.catena.seeds.get(&b.name).cloned(),
            name: b.name,
        })
        .collect())
}

/// The targets of this tree.
pub fn targets(root: &Path) -> Result<Vec<Target>> {
    let path = root.join("fuzz/Cargo.toml");
    targets_of(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
}

fn artifacts(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// How one target's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Ran its time, nothing found.
    Clean,
    /// Found inputs that crash it (new artifact files).
    Crash(Vec<String>),
    /// cargo fuzz failed without an artifact: a build or tool problem.
    ToolFailure(String),
}

/// Judges a run by its exit status and the artifacts before and after.
pub fn verdict(success: bool, status: &str, before: &[String], after: &[String]) -> Verdict {
    let new: Vec<String> = after
        .iter()
        .filter(|a| !before.contains(a))
        .cloned()
        .collect();
    match (success, new.is_empty()) {
        (_, false) => Verdict::Crash(new),
        (true, true) => Verdict::Clean,
        (false, true) => Verdict::ToolFailure(status.to_string()),
    }
}

fn cargo_fuzz_ok() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs one target or all of them (or only builds them). Exit 1 when a target found a crash,
/// 2 when the tool failed.
pub fn run(root: &Path, target: Option<&str>, seconds: u64, build_only: bool) -> Result<i32> {
    if !cargo_fuzz_ok() {
        bail!(
            "cargo-fuzz on a nightly toolchain is needed:\n    rustup toolchain install nightly && cargo +nightly install cargo-fuzz"
        );
    }
    let all = targets(root)?;
    let chosen: Vec<&Target> = all
        .iter()
        .filter(|t| target.is_none_or(|w| w == t.name))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "no fuzz target `{}` (have: {})",
            target.unwrap_or(""),
            names.join(", ")
        );
    }
    let fuzz = root.join("fuzz");
    if build_only {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz).args(["+nightly", "fuzz", "build"]);
        if let Some(t) = target {
            cmd.arg(t);
        }
        let status = cmd.status().context("running cargo fuzz build")?;
        println!(
            "xtask: fuzz targets {}: {}",
            if status.success() {
                "built"
            } else {
                "did not build"
            },
            chosen
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(if status.success() { 0 } else { 2 });
    }
    let (mut crashed, mut broken) = (0, 0);
    for t in chosen {
        println!("xtask: fuzzing `{}` for {seconds} s", t.name);
        // libFuzzer refuses a corpus folder that does not exist; a clean clone has none.
        let corpus = fuzz.join("corpus").join(&t.name);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let art_dir = fuzz.join("artifacts").join(&t.name);
        let before = artifacts(&art_dir);
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz)
            .args(["+nightly", "fuzz", "run", &t.name])
            .arg(&corpus);
        if let Some(s) = &t.seeds {
            cmd.arg(s);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=4096",
        ]);
        let status = cmd.status().context("running cargo fuzz")?;
        match verdict(
            status.success(),
            &status.to_string(),
            &before,
            &artifacts(&art_dir),
        ) {
            Verdict::Clean => println!("xtask: `{}`: no crash in {seconds} s", t.name),
            Verdict::Crash(files) => {
                crashed += 1;
                eprintln!(
                    "xtask: `{}` found a crash: {} (in {})",
                    t.name,
                    files.join(", "),
                    art_dir.display()
                );
            }
            Verdict::ToolFailure(s) => {
                broken += 1;
                eprintln!(
                    "xtask: `{}`: cargo fuzz failed ({s}) and left no crash artifact: a build \
                     or tool problem, not a finding (see its output above)",
                    t.name
                );
            }
        }
    }
    Ok(match (crashed, broken) {
        (0, 0) => 0,
        (0, _) => 2,
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_s_targets_come_from_fuzz_cargo_toml() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let t = targets(&root).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        for n in [
            "dtb",
            "ffa_descriptors",
            "spmc_calls",
            "proxy_calls",
            "text_inputs",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        let dtb = t.iter().find(|t| t.name == "dtb").unwrap();
        let seeds = root.join("fuzz").join(dtb.seeds.as_deref().unwrap());
        assert!(seeds.is_dir(), "{}", seeds.display());
        for t in &t {
            assert!(
                root.join(format!("fuzz/fuzz_targets/{}.rs", t.name))
                    .is_file(),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn stray_seeds_are_refused() {
        let text = "[package]\nname = \"f\"\n[package.metadata.catena.seeds]\nnope = \"x\"\n[[bin]]\nname = \"a\"\n";
        assert!(targets_of(text).unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn a_crash_is_an_artifact_and_a_failure_without_one_is_the_tool() {
        let before = vec!["crash-old".to_string()];
        assert_eq!(verdict(true, "0", &before, &before), Verdict::Clean);
        assert_eq!(
            verdict(false, "exit status: 1", &before, &before),
            Verdict::ToolFailure("exit status: 1".into())
        );
        let after = vec!["crash-new".to_string(), "crash-old".to_string()];
        assert_eq!(
            verdict(false, "exit status: 77", &before, &after),
            Verdict::Crash(vec!["crash-new".into()])
        );
    }
}
