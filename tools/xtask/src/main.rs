//! `cargo xtask`: Catena's single entry point to build, boot and test.
//!
//! - `cargo xtask build` — the images at `target/catena/` (`Image`, `Image-hooks`, firmware).
//! - `cargo xtask run [SCENARIO]` — build, boot a `qemu.toml` scenario headless, judge it.
//! - `cargo xtask test` — host tests, then every test scenario; `N passed, N failed`.
//! - `cargo xtask doctor [--install]` — the host prerequisites, and installing them.

mod attest;
mod bench;
mod boards;
mod build;
mod chain;
mod config;
mod evidence;
mod flash;
mod fuzz;
mod judge;
mod linux;
mod powercut;
mod prereq;
mod profile;
mod report;
mod runner;
mod timing;
mod tpm;
mod trace;
mod varstore;
mod verifier_server;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test Catena")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// `cargo xtask run`'s arguments.
#[derive(clap::Args)]
struct RunArgs {
    /// Scenario name (default: qemu.toml's default_scenario).
    scenario: Option<String>,
    /// Seconds before QEMU is killed (default: from qemu.toml).
    #[arg(long)]
    timeout: Option<u64>,
    /// Write the JSON report here (and the boot chart beside it, as .svg).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write a Chrome trace-event JSON file here (Perfetto, chrome://tracing).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Console on the terminal (QEMU monitor on Ctrl-A c); no judging.
    #[arg(long)]
    interactive: bool,
    /// Print the firmware's secure-UART log after the run.
    #[arg(long)]
    secure_log: bool,
    /// Keep the TPM's state in DIR across runs (default: a fresh TPM per run).
    #[arg(long, value_name = "DIR")]
    tpm_state: Option<PathBuf>,
    /// Start the scenario's persistent state (its secure flash) over.
    #[arg(long)]
    fresh_state: bool,
    /// Write the evidence the guest exports (the measured-boot event log) into DIR.
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Hand DIR's Secure Boot files (from `cargo xtask varstore pki DIR`) to the guest, whose
    /// efivar driver sets PK, KEK, db, dbx through the variable partition.
    #[arg(long, value_name = "DIR")]
    enroll: Option<PathBuf>,
}

/// `cargo xtask varstore ...`.
#[derive(Subcommand)]
enum VarstoreCmd {
    /// Make a Secure Boot test PKI in DIR with openssl and efitools: PK, KEK, db keys, their
    /// signature lists, the signed .auth files, and updates a guest must refuse.
    Pki {
        /// Where the files go.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Build every image into target/catena/.
    Build,
    /// Build, then boot a scenario from qemu.toml and judge it.
    Run(RunArgs),
    /// Boot two scenarios and draw their boot charts in one picture, one above the other
    /// (e.g. `full` and `tpm-consumer-late`: the right order and the wrong one), and print both
    /// chain trees.
    Compare {
        /// The first scenario.
        a: String,
        /// The second scenario.
        b: String,
        /// The SVG to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// The UEFI variable store's tools.
    Varstore {
        #[command(subcommand)]
        cmd: VarstoreCmd,
    },
    /// Count guest instructions for a benchmark in qemu.toml (`[bench.NAME]`).
    Bench {
        /// Benchmark name (e.g. `ffa`).
        name: String,
        /// Override the number of calls.
        #[arg(long)]
        calls: Option<u32>,
        /// Also print where each side's instructions go, by function.
        #[arg(long)]
        profile: bool,
    },
    /// Fuzz the parsers of outside input (nightly + cargo-fuzz; not part of `test`).
    Fuzz {
        /// One target (default: all).
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only build the targets (what CI checks).
        #[arg(long)]
        build_only: bool,
    },
    /// Boot a scenario with a TPM and verify its attestation: the quote over this run's nonce,
    /// both logs replayed, every event against the build's reference values and the policy.
    /// Exit 0 trusted, 1 untrusted.
    Attest {
        /// The scenario (default `full`).
        scenario: Option<String>,
        /// Boot something other than what was built: `kernel` (one byte of the Image changed).
        #[arg(long)]
        tamper: Option<attest::Tamper>,
        /// Over the network in one boot: the guest's agent talks to the verifier on
        /// 127.0.0.1 (virtio-net, QEMU user networking) instead of fw_cfg and two boots.
        #[arg(long)]
        net: bool,
    },
    /// Which host prerequisites are present, where, and how to install what is missing.
    Doctor {
        /// Install what `run` and `test` need (root: apt-get, never removing a package).
        #[arg(long)]
        install: bool,
        /// Also require (and with --install, install) what `fuzz` needs: nightly, cargo-fuzz.
        #[arg(long)]
        with_fuzz: bool,
    },
    /// Host unit tests, then every QEMU scenario marked `test = true`.
    Test {
        /// Only the host tests.
        #[arg(long)]
        host_only: bool,
        /// Only the QEMU scenarios.
        #[arg(long, conflicts_with = "host_only")]
        qemu_only: bool,
        /// Only these test scenarios (repeatable; implies --qemu-only).
        #[arg(long = "scenario", conflicts_with = "host_only")]
        scenarios: Vec<String>,
    },
}

/// Exit codes of `run`.
const EXIT_GUEST_FAIL: i32 = 1;
const EXIT_TIMEOUT: i32 = 2;
const EXIT_QEMU_ERROR: i32 = 3;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| ".".into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Build => build::build(&root(), false).map(|_| 0),
        Cmd::Run(a) => run(a),
        Cmd::Compare { a, b, out } => compare(&a, &b, &out),
        Cmd::Varstore {
            cmd: VarstoreCmd::Pki { dir },
        } => varstore::pki(&dir).map(|()| 0),
        Cmd::Test {
            host_only,
            qemu_only,
            scenarios,
        } => test(!qemu_only && scenarios.is_empty(), !host_only, &scenarios),
        Cmd::Bench {
            name,
            calls,
            profile,
        } => bench::run(&root(), &name, calls, profile),
        Cmd::Fuzz {
            target,
            seconds,
            build_only,
        } => fuzz::run(&root(), target.as_deref(), seconds, build_only),
        Cmd::Doctor { install, with_fuzz } => prereq::doctor(install, with_fuzz),
        Cmd::Attest {
            scenario,
            tamper,
            net,
        } => attest::run(scenario.as_deref(), tamper, net),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code for a finished, non-interactive run.
fn exit_code(o: &judge::Outcome) -> i32 {
    match o.status() {
        "ok" => 0,
        "timeout" => EXIT_TIMEOUT,
        _ if o.done().is_none() => EXIT_QEMU_ERROR,
        _ => EXIT_GUEST_FAIL,
    }
}

fn fault_symbol(o: &judge::Outcome, elf: &Path) -> Option<String> {
    let off = o
        .events
        .iter()
        .find(|e| e.kind == "fault")?
        .get("elr_offset")?;
    let off = u64::from_str_radix(off.trim_start_matches("0x"), 16).ok()?;
    build::symbolize(elf, off)
}

/// The firmware's log lines just before its `fw ev=fail` event (at most five), events left out.
fn firmware_complaint(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let Some(fail) = lines
        .iter()
        .position(|l| l.starts_with("@event fw ev=fail"))
    else {
        return Vec::new();
    };
    let mut said: Vec<&str> = lines[..fail]
        .iter()
        .rev()
        .take_while(|l| !l.starts_with("@event"))
        .copied()
        .filter(|l| !l.trim().is_empty())
        .take(5)
        .collect();
    said.reverse();
    said
}

/// What a run needs besides QEMU: its TPM, if the scenario has one (ended with the run).
/// How a run is prepared.
#[derive(Clone, Copy, Default)]
pub struct Prep<'a> {
    /// The console on the terminal.
    pub interactive: bool,
    /// A kept TPM state directory (`run --tpm-state`).
    pub tpm_state: Option<&'a Path>,
    /// Start the persistent flash over.
    pub fresh: bool,
    /// Enrolment files to hand to the guest (`run --enroll DIR`).
    pub enroll: Option<&'a Path>,
    /// A credential for the kernel to activate (`attest`'s second boot).
    pub credential: Option<&'a Path>,
}

pub(crate) struct RunParts {
    args: Vec<String>,
    /// The nonce given to the kernel's quote (TPM scenarios).
    pub(crate) nonce: Option<String>,
    _tpm: Option<tpm::Swtpm>,
    /// For a scenario with `tpm_stop`: kill swtpm at that event.
    on_event: Option<runner::OnEvent>,
    /// Lines typed at the shell's prompts.
    pub(crate) input: Vec<String>,
}

/// QEMU's arguments for a scenario, and the processes beside it: for one with `tpm`, a fresh
/// swtpm under `target/catena/state/NAME/tpm`; for one with `dt_nops`, its DT is made first
/// (QEMU's own, dumped, with the NOPs added) and booted with `-dtb`.
pub(crate) fn scenario_args(
    root: &Path,
    cfg: &config::Config,
    name: &str,
    s: &config::Scenario,
    images: &build::Images,
    opts: Prep<'_>,
) -> Result<RunParts> {
    let Prep {
        interactive,
        tpm_state,
        fresh,
        enroll,
        credential,
    } = opts;
    let flash = if s.flash {
        Some(flash::prepare(
            &state_dir(root, name, s),
            &images.firmware,
            fresh,
        )?)
    } else {
        None
    };
    let mut args = cfg.qemu_args(
        s,
        images,
        &secure_log_path(root, name),
        interactive,
        flash.as_deref(),
    );
    if let Some(config::Os::Linux) = s.os {
        // Debian's Linux and its initramfs in the kernel's place; the firmware loads both
        // from fw_cfg as it loads Catena's.
        let files = linux::files(root)?;
        let k = args
            .iter()
            .position(|a| a == "-kernel")
            .context("QEMU's arguments have no -kernel")?;
        args[k + 1] = files.image.display().to_string();
        args.extend(["-initrd".into(), files.initramfs.display().to_string()]);
    }
    if let Some(path) = s.boot {
        let files = boot_files(root, name, s, images, path)?;
        config::boot_args(&mut args, path, &files);
        if let Some(fit) = &files.fit {
            // The FIT carries the DT of this very machine: QEMU's, dumped (QEMU reads fw_cfg's
            // kernel file while it builds the machine, so the Image stands in until then).
            std::fs::copy(&images.image, fit)?;
            let qemu_dtb = fit.with_extension("qemu.dtb");
            runner::dump_dtb(&args, &qemu_dtb)?;
            let dir = fit.parent().context("the FIT's folder")?;
            boards::fit(dir, &images.image, &std::fs::read(&qemu_dtb)?, &s.cmdline)?;
        }
    }
    // Secure Boot enrolment: the files given, or the scenario's own test PKI (made once per
    // state with openssl and efitools, like `cargo xtask varstore pki`).
    match (enroll, s.enroll) {
        (Some(dir), _) => args.extend(varstore::enroll_args(dir, &[])?),
        (None, Some(mode)) => {
            let dir = state_dir(root, name, s).join("pki");
            if fresh || !dir.join("PK.auth").is_file() {
                varstore::pki(&dir)?;
            }
            let extra: &[(&str, &str)] = match mode {
                config::Enroll::Standard => &[],
                config::Enroll::WithRefused => &varstore::REFUSED,
                config::Enroll::Revocations => &varstore::REVOCATIONS,
                config::Enroll::DbxUpdate => &varstore::REVOCATIONS[1..],
            };
            args.extend(varstore::enroll_args(&dir, extra)?);
        }
        (None, None) => {}
    }
    if let Some(n) = &s.dt_nops {
        let dir = root.join("target/catena/runs");
        std::fs::create_dir_all(&dir)?;
        let plain = dir.join(format!("{name}.qemu.dtb"));
        runner::dump_dtb(&args, &plain)?;
        let blob = std::fs::read(&plain)?;
        let nopped = dtinfo::testing::add_nops(&blob, n.per_token, n.nop_out.as_deref())
            .map_err(|e| anyhow::anyhow!("{}: {e}", plain.display()))?;
        let path = dir.join(format!("{name}.dtb"));
        std::fs::write(&path, nopped)?;
        args.extend(["-dtb".into(), path.display().to_string()]);
    }
    let nonce = if s.tpm {
        // A fresh nonce per run for the kernel's quote (drivers/src/attest.rs).
        let n = fresh_nonce()?;
        args.extend([
            "-fw_cfg".into(),
            format!("name=opt/catena/nonce,string={n}"),
        ]);
        if let Some(c) = credential {
            args.extend([
                "-fw_cfg".into(),
                format!("name=opt/catena/credential,file={}", c.display()),
            ]);
        }
        Some(n)
    } else {
        None
    };
    let tpm = if s.tpm {
        let t = match tpm_state {
            Some(dir) => tpm::Swtpm::start(dir, true)?,
            None => tpm::Swtpm::start(
                &root.join("target/catena/state").join(name).join("tpm"),
                false,
            )?,
        };
        args.extend(t.qemu_args());
        Some(t)
    } else {
        None
    };
    let on_event = match (&s.tpm_stop, &tpm) {
        (Some(p), Some(t)) => Some(runner::OnEvent {
            when: judge::Pattern::parse(p)?,
            then: Box::new(t.stopper()),
        }),
        _ => None,
    };
    Ok(RunParts {
        args,
        nonce,
        _tpm: tpm,
        on_event,
        input: s.input.clone(),
    })
}

/// What a U-Boot path needs, made for this run under `target/catena/runs/NAME-boot/`.
fn boot_files(
    root: &Path,
    name: &str,
    s: &config::Scenario,
    images: &build::Images,
    path: config::BootPath,
) -> Result<config::BootFiles> {
    let dir = root.join("target/catena/runs").join(format!("{name}-boot"));
    Ok(match path {
        config::BootPath::Uboot | config::BootPath::UbootFit => {
            let how = if path == config::BootPath::UbootFit {
                boards::VirtBoot::Fit
            } else {
                boards::VirtBoot::Booti
            };
            config::BootFiles {
                uboot: prereq::program(prereq::UBOOT_QEMU)?.path,
                disk: boards::virt_flash1(
                    &dir,
                    &s.cmdline,
                    how,
                    // booti hands over the initramfs; a FIT would carry its own.
                    match (s.initrd, how) {
                        (true, boards::VirtBoot::Booti) => {
                            Some(std::fs::metadata(&images.initramfs)?.len())
                        }
                        _ => None,
                    },
                )?,
                // Made once the machine's DT is known (see `scenario_args`).
                fit: (how == boards::VirtBoot::Fit).then(|| dir.join("catena.itb")),
                dtb: None,
            }
        }
        config::BootPath::Raspi3b => {
            let rpi = boards::rpi_files(root)?;
            config::BootFiles {
                uboot: rpi.uboot,
                disk: boards::rpi_sd(
                    &dir,
                    if s.hooks {
                        &images.image_hooks
                    } else {
                        &images.image
                    },
                    &s.cmdline,
                )?,
                fit: None,
                dtb: Some(rpi.dtb),
            }
        }
    })
}

/// 32 random bytes in hex (from the host's /dev/urandom).
pub fn fresh_nonce() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(::attest::wire::hex(&b))
}

/// A scenario's persistent state (its secure flash): `target/catena/state/STATE`, STATE
/// being the scenario's `state` or its name.
pub fn state_dir(root: &Path, name: &str, s: &config::Scenario) -> PathBuf {
    root.join("target/catena/state")
        .join(s.state.as_deref().unwrap_or(name))
}

/// Boots a prepared scenario without echoing its console, with its timeout, its secure log
/// and its on-event action: the outcome and QEMU's stderr.
pub(crate) fn boot_quiet(
    root: &Path,
    cfg: &config::Config,
    name: &str,
    s: &config::Scenario,
    parts: &mut RunParts,
) -> Result<(judge::Outcome, String)> {
    let log = secure_log_path(root, name);
    let fw_log = s.firmware.then_some(log.as_path());
    let on_event = parts.on_event.take();
    runner::boot(
        &parts.args,
        Duration::from_secs(cfg.timeout(s)),
        false,
        fw_log,
        on_event,
        &parts.input,
    )
}

/// `cargo xtask compare A B --out FILE.svg`.
fn compare(a: &str, b: &str, out: &Path) -> Result<i32> {
    let root = root();
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    prereq::ensure_qemu()?;
    let images = build::build(&root, true)?;
    let mut layouts = Vec::new();
    for name in [a, b] {
        let s = cfg.scenario(name)?;
        if s.powercut.is_some() {
            anyhow::bail!("`{name}` is a power-cut campaign, not one boot");
        }
        let mut parts = scenario_args(
            &root,
            &cfg,
            name,
            s,
            &images,
            Prep {
                fresh: s.fresh_state,
                ..Prep::default()
            },
        )?;
        let (o, _) = boot_quiet(&root, &cfg, name, s, &mut parts)?;
        println!("xtask: `{name}` ({}):", o.status());
        print!("{}", chain::tree(&o.events, &o.fw_events));
        let title = format!("{name} ({}): {}", o.status(), s.description);
        layouts.push((
            title,
            chain::layout(name, &timing::timing(&o.events, &o.fw_events)),
        ));
    }
    let charts: Vec<(&str, &chain::Layout)> =
        layouts.iter().map(|(t, l)| (t.as_str(), l)).collect();
    std::fs::write(out, chain::stacked(&charts))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("xtask: both boot charts in {}", out.display());
    Ok(0)
}

/// Where a scenario's secure-UART log goes.
fn secure_log_path(root: &Path, scenario: &str) -> PathBuf {
    let dir = root.join("target/catena/runs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{scenario}.secure.log"))
}

fn run(a: RunArgs) -> Result<i32> {
    let RunArgs {
        scenario: name,
        timeout,
        report: report_path,
        trace: trace_path,
        interactive,
        secure_log: show_secure_log,
        tpm_state,
        fresh_state,
        enroll,
        evidence,
    } = a;
    let root = root();
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    let name = name.unwrap_or_else(|| cfg.default_scenario.clone());
    let scenario = cfg.scenario(&name)?;
    prereq::ensure_qemu()?;
    let images = build::build(&root, false)?;
    let log = secure_log_path(&root, &name);
    if tpm_state.is_some() && !scenario.tpm {
        anyhow::bail!("--tpm-state: scenario `{name}` has no TPM (tpm = true in qemu.toml)");
    }
    if fresh_state && !scenario.flash {
        anyhow::bail!(
            "--fresh-state: scenario `{name}` keeps no state (flash = true in qemu.toml)"
        );
    }
    let tpm_state = tpm_state.map(|d| std::path::absolute(&d)).transpose()?;
    if let Some(p) = &scenario.powercut {
        println!("xtask: `{name}`: {}", scenario.description);
        let problems = powercut::campaign(&root, &cfg, &name, scenario, p, &images, true)?;
        for p in &problems {
            println!("     - {p}");
        }
        return Ok(if problems.is_empty() {
            0
        } else {
            EXIT_GUEST_FAIL
        });
    }
    let mut parts = scenario_args(
        &root,
        &cfg,
        &name,
        scenario,
        &images,
        Prep {
            interactive,
            tpm_state: tpm_state.as_deref(),
            fresh: fresh_state,
            enroll: enroll.as_deref(),
            credential: None,
        },
    )?;
    let args = &parts.args;
    println!("xtask: booting `{name}`: {}", scenario.description);
    println!(
        "xtask: {} {}",
        prereq::qemu()?.path.display(),
        shell_words(args)
    );
    if interactive {
        return runner::interactive(args, timeout.map(Duration::from_secs));
    }
    let secs = timeout.unwrap_or(cfg.timeout(scenario));
    let fw_log = scenario.firmware.then_some(log.as_path());
    let on_event = parts.on_event.take();
    let (outcome, stderr) = runner::boot(
        &parts.args,
        Duration::from_secs(secs),
        true,
        fw_log,
        on_event,
        &parts.input,
    )?;
    if let Some(dir) = &evidence {
        evidence::write(dir, &evidence::collect(&outcome.events)?)?;
    }
    if !stderr.trim().is_empty() {
        eprintln!("xtask: QEMU said:\n{}", stderr.trim_end());
    }
    if let Some(p) = fw_log {
        if show_secure_log {
            println!("xtask: secure UART ({}):", p.display());
            print!("{}", std::fs::read_to_string(p).unwrap_or_default());
        } else {
            println!(
                "xtask: secure UART log in {} (--secure-log prints it)",
                p.display()
            );
            if outcome.fw_failure().is_some() {
                // The firmware's own words on why, which the event does not carry.
                let text = std::fs::read_to_string(p).unwrap_or_default();
                for line in firmware_complaint(&text) {
                    println!("xtask: firmware said: {line}");
                }
            }
        }
    }
    let code = exit_code(&outcome);
    let elf = if scenario.hooks {
        &images.elf_hooks
    } else {
        &images.elf
    };
    let symbol = fault_symbol(&outcome, elf);
    print!("{}", report::timeline(&outcome));
    print!("{}", chain::tree(&outcome.events, &outcome.fw_events));
    if let Some(s) = &symbol {
        println!("  fault in {s}");
    }
    if let Some(path) = report_path {
        let r = report::report(&name, &outcome, code, symbol.as_deref());
        std::fs::write(&path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let svg = path.with_extension("svg");
        std::fs::write(&svg, chain::svg(&name, &outcome.events, &outcome.fw_events))
            .with_context(|| format!("writing {}", svg.display()))?;
        println!(
            "xtask: report written to {} (boot chart in {})",
            path.display(),
            svg.display()
        );
    }
    if let Some(path) = trace_path {
        let t = trace::chrome_trace(&name, &timing::timing(&outcome.events, &outcome.fw_events));
        let problems = trace::check(&t);
        if !problems.is_empty() {
            anyhow::bail!("the trace is malformed: {}", problems.join("; "));
        }
        std::fs::write(&path, serde_json::to_string(&t)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "xtask: trace written to {} (open it in ui.perfetto.dev or chrome://tracing)",
            path.display()
        );
    }
    match code {
        0 => println!("xtask: `{name}` ok"),
        _ => eprintln!("xtask: `{name}` {}: {}", outcome.status(), outcome.reason()),
    }
    Ok(code)
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') || a.is_empty() {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sums `test result: ... N passed; M failed` lines of cargo test output.
fn count_results(line: &str) -> Option<(u32, u32)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num_before = |word: &str| -> Option<u32> {
        let idx = rest.find(word)?;
        rest[..idx]
            .trim_end()
            .rsplit([' ', '.'])
            .next()?
            .parse()
            .ok()
    };
    Some((num_before(" passed")?, num_before(" failed")?))
}

fn host_tests(root: &Path) -> Result<(u32, u32)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("xtask: host tests (cargo test)");
    let mut child = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--color", "never"])
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().context("cargo test stdout")?).lines() {
        let line = line?;
        if let Some((p, f)) = count_results(&line) {
            passed += p;
            failed += f;
        }
        if line.starts_with("test result:") || line.contains("FAILED") || line.contains("panicked")
        {
            println!("  {line}");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        // It did not get as far as running tests (a build error): count that as a failure.
        eprintln!("xtask: cargo test failed before reporting test results");
        failed += 1;
    }
    Ok((passed, failed))
}

fn test(host: bool, qemu: bool, only: &[String]) -> Result<i32> {
    let root = root();
    let (mut passed, mut failed) = (0u32, 0u32);
    if host {
        let (p, f) = host_tests(&root)?;
        println!("xtask: host tests: {p} passed, {f} failed");
        passed += p;
        failed += f;
    }
    if qemu {
        let cfg = config::Config::load(&root.join("qemu.toml"))?;
        prereq::ensure_qemu()?;
        let images = build::build(&root, true)?;
        for n in only {
            if !cfg.scenario(n)?.test {
                anyhow::bail!("scenario `{n}` is not a test scenario (test = true)");
            }
        }
        let chosen = cfg
            .scenarios
            .iter()
            .filter(|(n, s)| s.test && (only.is_empty() || only.contains(n)));
        for (name, s) in chosen {
            if let Some(p) = &s.powercut {
                match powercut::campaign(&root, &cfg, name, s, p, &images, false) {
                    Ok(problems) if problems.is_empty() => {
                        passed += 1;
                        println!("PASS qemu {name} (power cut at every step of the write)");
                    }
                    Ok(problems) => {
                        failed += 1;
                        println!("FAIL qemu {name}: {}", s.description);
                        for p in &problems {
                            println!("     - {p}");
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        println!("FAIL qemu {name}: {e:#}");
                    }
                }
                continue;
            }
            let mut parts = match scenario_args(
                &root,
                &cfg,
                name,
                s,
                &images,
                Prep {
                    fresh: s.fresh_state,
                    ..Prep::default()
                },
            ) {
                Ok(a) => a,
                Err(e) => {
                    failed += 1;
                    println!("FAIL qemu {name}: could not prepare the run: {e:#}");
                    continue;
                }
            };
            let (outcome, stderr) = boot_quiet(&root, &cfg, name, s, &mut parts)?;
            let mut problems = judge::judge(s, &outcome);
            if s.evidence_check {
                match evidence::check(&state_dir(&root, name, s).join("evidence"), &outcome.events)
                {
                    Ok(p) => problems.extend(p.into_iter().map(|p| format!("evidence: {p}"))),
                    Err(e) => problems.push(format!("evidence: {e:#}")),
                }
            }
            // What a person reads of this boot must hold up too: the trace against the
            // trace-event format, the chart against its layout rules.
            let model = timing::timing(&outcome.events, &outcome.fw_events);
            problems.extend(
                trace::check(&trace::chrome_trace(name, &model))
                    .into_iter()
                    .map(|p| format!("trace: {p}")),
            );
            problems.extend(
                chain::collisions(&chain::layout(name, &model))
                    .into_iter()
                    .map(|p| format!("boot chart: {p}")),
            );
            if problems.is_empty() {
                passed += 1;
                let fw = match outcome.fw_events.len() {
                    0 => String::new(),
                    n => format!(" + {n} firmware"),
                };
                println!(
                    "PASS qemu {name} ({} kernel{fw} events, status {})",
                    outcome.events.len(),
                    outcome.status()
                );
            } else {
                failed += 1;
                println!("FAIL qemu {name}: {}", s.description);
                for p in &problems {
                    println!("     - {p}");
                }
                if !stderr.trim().is_empty() {
                    println!("     QEMU stderr: {}", stderr.trim());
                }
                print!("{}", report::timeline(&outcome));
            }
        }
    }
    if qemu && only.is_empty() {
        let cfg = config::Config::load(&root.join("qemu.toml"))?;
        let images = build::build(&root, true)?;
        for (name, tamper, net, must_fail) in attest::TEST_CASES {
            let mut label = match tamper {
                Some(t) => format!("{name} --tamper {t:?}").to_lowercase(),
                None => (*name).to_string(),
            };
            if *net {
                label.push_str(" --net");
            }
            let attested = if *net {
                attest::attest_net(&root, &cfg, &images, name, *tamper)
            } else {
                attest::attest(&root, &cfg, &images, name, *tamper)
            };
            match attested {
                Ok(a) => {
                    let bad: Vec<&str> = a
                        .verdict
                        .checks
                        .iter()
                        .filter(|c| !c.ok)
                        .map(|c| c.what.as_str())
                        .collect();
                    if bad == *must_fail {
                        passed += 1;
                        println!(
                            "PASS attest {label}: {}",
                            a.verdict.lines().last().cloned().unwrap_or_default()
                        );
                    } else {
                        failed += 1;
                        println!(
                            "FAIL attest {label}: failed checks {bad:?}, expected {must_fail:?}"
                        );
                        for l in a.verdict.lines() {
                            println!("     {l}");
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL attest {label}: {e:#}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cargo_test_summaries() {
        assert_eq!(
            count_results(
                "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"
            ),
            Some((5, 0))
        );
        assert_eq!(
            count_results("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            Some((3, 2))
        );
        assert_eq!(count_results("running 3 tests"), None);
    }

    #[test]
    fn the_firmware_s_words_before_its_failure() {
        let log = "Catena firmware\n@event fw ev=boot cpus=2\nkernel from fw_cfg: too big\n\n@event fw ev=fail reason=bad-payload\nafter\n";
        assert_eq!(firmware_complaint(log), ["kernel from fw_cfg: too big"]);
        assert!(firmware_complaint("@event fw ev=boot\n").is_empty());
        assert!(firmware_complaint("@event fw ev=boot\n@event fw ev=fail reason=x\n").is_empty());
    }
}
