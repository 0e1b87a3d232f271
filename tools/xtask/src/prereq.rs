//! Host prerequisites: the one list of what Catena needs on the machine, the diagnosis
//! (`cargo xtask doctor`), and installing what is missing without taking anything away.
//!
//! Debian packages come from apt. Installing never removes a package the machine already
//! has: apt is asked first (`apt-get install -s`), and when it would remove something (on a
//! Debian 12 machine with backported `qemu-utils` 10, QEMU 7.2's `qemu-system-common` is
//! broken by it, so apt wants `qemu-utils` gone) the packages apt would install are instead
//! fetched with `apt-get download` and unpacked under `target/catena/host/root`, and run from
//! there; the machine is left as it was. The real install also passes `--no-remove`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The bare-metal target every image builds for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The QEMU binary's name.
pub const QEMU: &str = "qemu-system-aarch64";
/// Debian's U-Boot for QEMU virt (package u-boot-qemu): a file, not a program.
pub const UBOOT_QEMU: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// What a prerequisite is needed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `cargo xtask run` and `cargo xtask test` (and so CI).
    RunTest,
    /// `cargo xtask bench`.
    Bench,
    /// `cargo xtask fuzz`.
    Fuzz,
}

impl Need {
    fn words(self) -> &'static str {
        match self {
            Need::RunTest => "needed by run and test",
            Need::Bench => "needed by bench (optional)",
            Need::Fuzz => "needed by fuzz (optional)",
        }
    }
}

/// A host tool that comes from a Debian package.
#[derive(Clone, Copy, Debug)]
pub struct HostPackage {
    /// The Debian package.
    pub package: &'static str,
    /// The program it provides, looked up on `PATH` (then in the private root); an absolute
    /// path is a file the package installs there.
    pub program: &'static str,
    /// The argument that makes the program print its version on its first line.
    pub version_arg: Option<&'static str>,
    /// The oldest version that works (major, minor), if it matters.
    pub min_version: Option<(u32, u32)>,
    /// What needs it.
    pub need: Need,
}

/// The host packages, in one place: `cargo xtask doctor --install` (and so `.ci/run`),
/// `run`, `test` and `bench` all read this list. Later work adds its tools here.
pub const HOST_PACKAGES: &[HostPackage] = &[
    HostPackage {
        package: "qemu-system-arm",
        program: QEMU,
        version_arg: Some("--version"),
        // QEMU 7.2 is Debian 12's and the version every fact in shared/reference was
        // checked against.
        min_version: Some((7, 2)),
        need: Need::RunTest,
    },
    HostPackage {
        package: "swtpm",
        program: "swtpm",
        version_arg: Some("--version"),
        // The TPM behind QEMU's tpm-tis-device in scenarios with `tpm = true`.
        min_version: Some((0, 7)),
        need: Need::RunTest,
    },
    HostPackage {
        package: "swtpm-tools",
        program: "swtpm_setup",
        // `swtpm_setup --version` prints its version but exits 1.
        version_arg: None,
        // Manufactures each run's TPM: an RSA EK at its persistent handle and its certificate
        // in NV, signed by a local CA kept under target/ (the attestation's EK binding).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "openssl",
        program: "openssl",
        version_arg: Some("version"),
        // The Secure Boot test PKI's keys and certificates (`cargo xtask varstore pki`).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "efitools",
        program: "cert-to-efi-sig-list",
        version_arg: Some("--version"),
        // Signature lists and signed EFI_VARIABLE_AUTHENTICATION_2 files, made as a user
        // enrolling keys makes them (sign-efi-sig-list is in the same package).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "tpm2-tools",
        program: "tpm2_eventlog",
        version_arg: Some("--version"),
        // Checks the exported measured-boot evidence independently (scenarios with
        // `evidence_check`).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "tpm2-tools",
        program: "tpm2_checkquote",
        version_arg: Some("--version"),
        // Verifies the exported quote (scenarios with `evidence_check`).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "u-boot-qemu",
        program: UBOOT_QEMU,
        version_arg: None,
        // Debian's U-Boot for QEMU virt: the BL33 of the `uboot` scenarios.
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "u-boot-tools",
        program: "mkenvimage",
        version_arg: Some("-V"),
        // U-Boot environment images and FIT images (mkimage, same package).
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "device-tree-compiler",
        program: "dtc",
        version_arg: Some("--version"),
        // mkimage compiles a FIT's source with dtc: only a Recommends of u-boot-tools, so a
        // --no-install-recommends install lacks it.
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "dosfstools",
        program: "mkfs.vfat",
        version_arg: None,
        // The FAT partition of the Raspberry Pi's SD card image.
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "mtools",
        program: "mcopy",
        version_arg: Some("--version"),
        // Copies files into that FAT partition without mounting it.
        min_version: None,
        need: Need::RunTest,
    },
    HostPackage {
        package: "gcc",
        program: "cc",
        version_arg: Some("--version"),
        min_version: None,
        need: Need::Bench,
    },
];

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0")
}

/// Where unpacked packages live when a system install would remove something.
fn private_root() -> PathBuf {
    crate::root().join("target/catena/host/root")
}

/// The library folders inside the private root (`usr/lib/<triple>`, `lib/<triple>`, and
/// their sub-folders, where packages such as swtpm keep private libraries).
fn private_lib_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = top_lib_dirs(root);
    let subs: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()))
        .collect();
    dirs.extend(subs);
    dirs
}

fn top_lib_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["usr/lib", "lib"] {
        if let Ok(rd) = std::fs::read_dir(root.join(base)) {
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with("-linux-gnu"))
                })
                .collect();
            found.sort();
            dirs.extend(found);
        }
    }
    dirs
}

/// A host program from the package list, found (see [`probe`]) or the diagnosis.
pub fn program(name: &str) -> Result<Found> {
    let p = HOST_PACKAGES
        .iter()
        .find(|p| p.program == name)
        .with_context(|| format!("{name} is not in the host package list"))?;
    match probe(p) {
        State::Ok(f) => Ok(f),
        _ => {
            let (text, _) = diagnose();
            eprint!("{text}");
            bail!("{name} is missing or too old (see above)")
        }
    }
}

/// A program found on the host.
#[derive(Clone, Debug)]
pub struct Found {
    /// Its path.
    pub path: PathBuf,
    /// The private root it was unpacked into, if it is not a system install.
    pub private: Option<PathBuf>,
    /// The first line of its version output.
    pub version: Option<String>,
}

impl Found {
    /// A command that runs it (with the private root's libraries when it has one).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(root) = &self.private {
            let mut paths: Vec<PathBuf> = private_lib_dirs(root);
            if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                paths.extend(std::env::split_paths(&old));
            }
            if let Ok(joined) = std::env::join_paths(paths) {
                c.env("LD_LIBRARY_PATH", joined);
            }
        }
        c
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    if program.starts_with('/') {
        return Some(PathBuf::from(program)).filter(|p| p.is_file());
    }
    // /usr/sbin too: mkfs.vfat lives there, outside a normal user's PATH.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn version_of(found: &Found, arg: Option<&str>) -> Option<String> {
    let arg = arg?;
    let out = output(found.command().arg(arg))?;
    out.lines().next().map(|l| l.trim().to_string())
}

/// The first `major.minor` in a version line ("QEMU emulator version 7.2.22 (Debian ...)").
pub fn parse_version(line: &str) -> Option<(u32, u32)> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|w| {
            let mut it = w.split('.');
            let major = it.next()?.parse().ok()?;
            let minor = it.next()?.parse().ok()?;
            Some((major, minor))
        })
}

/// The version word of a version line ("7.2.22" of "QEMU emulator version 7.2.22 (...)").
fn short_version(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find(|w| parse_version(w).is_some() && w.starts_with(|c: char| c.is_ascii_digit()))
}

/// The state of one host package's program.
#[derive(Clone, Debug)]
pub enum State {
    /// Present and new enough.
    Ok(Found),
    /// Present but older than needed.
    TooOld(Found),
    /// Not found, or found but it does not run.
    Missing,
}

/// Looks for a host package's program: on `PATH`, then in the private root.
pub fn probe(p: &HostPackage) -> State {
    let candidates = [
        on_path(p.program).map(|path| Found {
            path,
            private: None,
            version: None,
        }),
        Some(private_root())
            .map(|r| {
                let path = match p.program.strip_prefix('/') {
                    Some(file) => r.join(file),
                    None => ["usr/bin", "usr/sbin"]
                        .iter()
                        .map(|d| r.join(d).join(p.program))
                        .find(|p| p.is_file())
                        .unwrap_or_else(|| r.join("usr/bin").join(p.program)),
                };
                (path, r)
            })
            .filter(|(path, _)| path.is_file())
            .map(|(path, r)| Found {
                path,
                private: Some(r),
                version: None,
            }),
    ];
    for mut f in candidates.into_iter().flatten() {
        f.version = version_of(&f, p.version_arg);
        if p.version_arg.is_some() && f.version.is_none() {
            // Present but does not run (a missing library, say): try the next place.
            continue;
        }
        let old = match (p.min_version, f.version.as_deref().and_then(parse_version)) {
            (Some(min), Some(v)) => v < min,
            _ => false,
        };
        return if old { State::TooOld(f) } else { State::Ok(f) };
    }
    State::Missing
}

/// The command a person runs to install `packages`.
fn install_hint(packages: &[&str]) -> String {
    let sudo = if is_root() { "" } else { "sudo " };
    format!(
        "{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends --no-remove {}",
        packages.join(" ")
    )
}

/// One line of the diagnosis.
struct Line {
    ok: bool,
    what: String,
    detail: String,
}

fn rust_lines() -> Vec<Line> {
    let mut lines = Vec::new();
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]));
    let have_target = targets
        .as_deref()
        .is_some_and(|t| t.lines().any(|l| l.trim() == TARGET));
    lines.push(Line {
        ok: have_target,
        what: format!("rust target {TARGET}"),
        detail: match (&targets, have_target) {
            (None, _) => "rustup not found: install it from rustup.rs".into(),
            (Some(_), true) => "installed (rustup)".into(),
            (Some(_), false) => format!("install: rustup target add {TARGET}"),
        },
    });
    let objcopy = llvm_tool("llvm-objcopy");
    lines.push(Line {
        ok: objcopy.is_ok(),
        what: "llvm-tools (llvm-objcopy, llvm-nm)".into(),
        detail: match &objcopy {
            Ok(p) => p
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            Err(_) => "install: rustup component add llvm-tools".into(),
        },
    });
    lines
}

fn fuzz_lines() -> Vec<Line> {
    let nightly = output(Command::new("rustc").args(["+nightly", "--version"]));
    let fuzz = output(Command::new("cargo").args(["+nightly", "fuzz", "--version"]));
    vec![
        Line {
            ok: nightly.is_some(),
            what: "nightly toolchain".into(),
            detail: nightly.map_or_else(
                || "install: rustup toolchain install nightly".into(),
                |v| v.trim().to_string(),
            ),
        },
        Line {
            ok: fuzz.is_some(),
            what: "cargo-fuzz".into(),
            detail: fuzz.map_or_else(
                || "install: cargo +nightly install cargo-fuzz".into(),
                |v| v.trim().to_string(),
            ),
        },
    ]
}

fn package_line(p: &HostPackage) -> Line {
    let what =
        |f: Option<&Found>| match f.and_then(|f| f.version.as_deref()).and_then(short_version) {
            Some(v) => format!("{} {v}", p.program),
            None => p.program.to_string(),
        };
    match probe(p) {
        State::Ok(f) => Line {
            ok: true,
            what: what(Some(&f)),
            detail: match &f.private {
                None => format!("{} (package {})", f.path.display(), p.package),
                Some(_) => format!(
                    "{} (Debian's {}, unpacked here: a system install would remove packages)",
                    f.path.display(),
                    p.package
                ),
            },
        },
        State::TooOld(f) => Line {
            ok: false,
            what: what(Some(&f)),
            detail: format!(
                "{} is older than {}.{}; install: {}",
                f.path.display(),
                p.min_version.map_or(0, |v| v.0),
                p.min_version.map_or(0, |v| v.1),
                install_hint(&[p.package])
            ),
        },
        State::Missing => Line {
            ok: false,
            what: what(None),
            detail: format!("missing; install: {}", install_hint(&[p.package])),
        },
    }
}

/// The diagnosis: every prerequisite, grouped by what needs it. Returns the text and
/// whether everything `run` and `test` need is there.
pub fn diagnose() -> (String, bool) {
    let mut groups: Vec<(Need, Vec<Line>)> = vec![
        (Need::RunTest, rust_lines()),
        (Need::Bench, Vec::new()),
        (Need::Fuzz, fuzz_lines()),
    ];
    for p in HOST_PACKAGES {
        if let Some((_, lines)) = groups.iter_mut().find(|(n, _)| *n == p.need) {
            lines.push(package_line(p));
        }
    }
    // The Raspberry Pi's U-Boot and DT: Debian arm64 packages, fetched, never installed.
    let rpi = crate::boards::rpi_files_present(&crate::root());
    groups[0].1.push(Line {
        ok: rpi.is_some(),
        what: "arm64 board files".into(),
        detail: match rpi {
            Some(f) => format!(
                "{} and {} (from Debian's arm64 u-boot-rpi and linux-image)",
                f.uboot.display(),
                f.dtb.display()
            ),
            None => "missing; fetch: cargo xtask doctor --install (apt-get download, arm64)".into(),
        },
    });
    // Debian's Linux for the `linux` scenarios: arm64 packages, fetched, never installed.
    let linux = crate::linux::present(&crate::root());
    groups[0].1.push(Line {
        ok: linux.is_some(),
        what: "Debian arm64 Linux (scenario linux)".into(),
        detail: match linux {
            Some(f) => format!(
                "Linux {} in {} (from Debian's linux-binary, linux-modules, busybox-static)",
                f.release,
                f.image.parent().unwrap_or(&f.image).display()
            ),
            None => "missing; fetch: cargo xtask doctor --install (apt-get download, arm64)".into(),
        },
    });
    let mut s = String::from("Catena host prerequisites\n");
    let mut ready = true;
    for (need, lines) in &groups {
        s.push_str(&format!("  {}:\n", need.words()));
        for l in lines {
            if *need == Need::RunTest && !l.ok {
                ready = false;
            }
            s.push_str(&format!(
                "    {:<8} {:<44} {}\n",
                if l.ok { "ok" } else { "MISSING" },
                l.what,
                l.detail
            ));
        }
    }
    s.push_str(if ready {
        "  run and test have what they need\n"
    } else {
        "  run and test cannot work until the MISSING lines above are fixed \
         (`cargo xtask doctor --install` does it as root)\n"
    });
    (s, ready)
}

/// `cargo xtask doctor [--install] [--with-fuzz]`. With `with_fuzz`, the fuzz tools count
/// too (and are installed with `install`).
pub fn doctor(install: bool, with_fuzz: bool) -> Result<i32> {
    if install {
        ensure_rust()?;
        ensure(Need::RunTest)?;
        crate::boards::rpi_files(&crate::root())?;
        crate::linux::files(&crate::root())?;
        if with_fuzz {
            ensure_fuzz()?;
        }
    }
    let (text, ready) = diagnose();
    print!("{text}");
    let fuzz_ready = !with_fuzz || fuzz_lines().iter().all(|l| l.ok);
    Ok(if ready && fuzz_ready { 0 } else { 1 })
}

/// Installs a nightly toolchain and cargo-fuzz if they are missing (what `fuzz` needs).
pub fn ensure_fuzz() -> Result<()> {
    if output(Command::new("rustc").args(["+nightly", "--version"])).is_none() {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if output(Command::new("cargo").args(["+nightly", "fuzz", "--version"])).is_none() {
        run(Command::new("cargo").args(["+nightly", "install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Installs the rustup target and `llvm-tools` if they are missing.
pub fn ensure_rust() -> Result<()> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("`rustup` is needed to install the aarch64 target (https://rustup.rs)")?;
    if !targets.lines().any(|l| l.trim() == TARGET) {
        run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    let components = output(Command::new("rustup").args(["component", "list", "--installed"]))
        .context("listing rustup components")?;
    if !components.lines().any(|l| l.starts_with("llvm-tools")) {
        run(Command::new("rustup").args(["component", "add", "llvm-tools"]))?;
    }
    Ok(())
}

/// What `apt-get install -s` says it would do: packages installed and removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AptPlan {
    /// Packages it would install (new or upgraded).
    pub install: Vec<String>,
    /// Packages it would remove.
    pub remove: Vec<String>,
}

/// Parses `apt-get install -s` output (`Inst NAME ...` and `Remv NAME ...` lines).
pub fn parse_apt_simulation(text: &str) -> AptPlan {
    let mut plan = AptPlan::default();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("Inst"), Some(p)) => plan.install.push(p.to_string()),
            (Some("Remv"), Some(p)) => plan.remove.push(p.to_string()),
            _ => {}
        }
    }
    plan
}

fn apt(args: &[&str]) -> Command {
    let mut c = Command::new("apt-get");
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Installs the host packages `need` requires that are missing: as root with apt-get (never
/// removing a package), or unpacked privately when apt would remove one. Not root: prints the
/// diagnosis and fails.
pub fn ensure(need: Need) -> Result<()> {
    let missing: Vec<&HostPackage> = HOST_PACKAGES
        .iter()
        .filter(|p| p.need == need && !matches!(probe(p), State::Ok(_)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.package).collect();
    if !is_root() {
        let (text, _) = diagnose();
        eprint!("{text}");
        bail!(
            "missing host packages: {}; install with:\n    {}",
            names.join(" "),
            install_hint(&names)
        );
    }
    eprintln!(
        "xtask: installing missing host packages: {}",
        names.join(" ")
    );
    run(&mut apt(&["update", "-q"]))?;
    let mut sim_args = vec!["install", "-s", "--no-install-recommends"];
    sim_args.extend(&names);
    let sim = apt(&sim_args).output().context("running apt-get -s")?;
    if !sim.status.success() {
        bail!(
            "apt-get cannot install {}: {}",
            names.join(" "),
            String::from_utf8_lossy(&sim.stderr).trim()
        );
    }
    let plan = parse_apt_simulation(&String::from_utf8_lossy(&sim.stdout));
    if plan.remove.is_empty() {
        let mut args = vec![
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "--no-remove",
        ];
        args.extend(&names);
        run(&mut apt(&args))?;
    } else {
        eprintln!(
            "xtask: installing {} system-wide would remove {}; leaving the system as it is and \
             unpacking Debian's packages into {} instead",
            names.join(" "),
            plan.remove.join(" "),
            private_root().display()
        );
        unpack_privately(&plan.install)?;
    }
    let still: Vec<&str> = missing
        .iter()
        .filter(|p| !matches!(probe(p), State::Ok(_)))
        .map(|p| p.package)
        .collect();
    if !still.is_empty() {
        let (text, _) = diagnose();
        eprint!("{text}");
        bail!("still missing after installing: {}", still.join(" "));
    }
    Ok(())
}

/// `apt-get download`s `packages` and unpacks each into the private root.
fn unpack_privately(packages: &[String]) -> Result<()> {
    let root = private_root();
    let debs = root.with_file_name("debs");
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs)?;
    std::fs::create_dir_all(&root)?;
    let mut cmd = apt(&["download", "-q", "-o", "APT::Sandbox::User=root"]);
    cmd.args(packages).current_dir(&debs);
    run(&mut cmd)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&debs)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    for deb in files {
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    }
    Ok(())
}

static QEMU_FOUND: OnceLock<Found> = OnceLock::new();

/// Makes sure QEMU is there (installing it when possible) and remembers where.
pub fn ensure_qemu() -> Result<()> {
    ensure(Need::RunTest)?;
    qemu().map(|_| ())
}

/// QEMU, as found by [`ensure_qemu`] (or looked up now).
pub fn qemu() -> Result<&'static Found> {
    if let Some(f) = QEMU_FOUND.get() {
        return Ok(f);
    }
    let p = HOST_PACKAGES
        .iter()
        .find(|p| p.program == QEMU)
        .context("QEMU is not in the host package list")?;
    match probe(p) {
        State::Ok(f) => Ok(QEMU_FOUND.get_or_init(|| f)),
        _ => {
            let (text, _) = diagnose();
            eprint!("{text}");
            bail!("{QEMU} is missing or too old (see above)")
        }
    }
}

/// A command that runs QEMU; a private copy also gets its own data folder (`-L`).
pub fn qemu_command() -> Result<Command> {
    let f = qemu()?;
    let mut c = f.command();
    if let Some(root) = &f.private {
        c.arg("-L").arg(root.join("usr/share/qemu"));
    }
    Ok(c)
}

/// A tool from rustup's `llvm-tools` (llvm-objcopy, llvm-nm).
pub fn llvm_tool(name: &str) -> Result<PathBuf> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))
        .context("rustc --print sysroot")?;
    let vv = output(Command::new("rustc").arg("-vV")).context("rustc -vV")?;
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .context("no host triple in rustc -vV")?;
    let path = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin")
        .join(name);
    if !path.exists() {
        bail!(
            "{} not found (rustup component add llvm-tools)",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_first_line() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"),
            Some((7, 2))
        );
        assert_eq!(parse_version("cc (Debian 12.2.0-14) 12.2.0"), Some((12, 2)));
        assert_eq!(parse_version("no version here"), None);
        assert_eq!(
            short_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)"),
            Some("7.2.22")
        );
    }

    #[test]
    fn apt_simulation_names_what_would_be_removed() {
        let text = "NOTE: This is only a simulation!\n\
                    Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                    Inst libfdt1 (1.6.1-4+b1 Debian:12.15/oldstable [amd64])\n\
                    Inst qemu-system-arm (1:7.2+dfsg-7+deb12u18+b3 Debian:12.15/oldstable [amd64])\n\
                    Conf libfdt1 (1.6.1-4+b1 Debian:12.15/oldstable [amd64])\n";
        let plan = parse_apt_simulation(text);
        assert_eq!(plan.install, ["libfdt1", "qemu-system-arm"]);
        assert_eq!(plan.remove, ["qemu-utils"]);
        assert_eq!(parse_apt_simulation("Inst a (1)\n").remove.len(), 0);
    }

    #[test]
    fn the_host_package_list_is_consistent() {
        assert!(HOST_PACKAGES.iter().any(|p| p.program == QEMU));
        for p in HOST_PACKAGES {
            assert_eq!(
                HOST_PACKAGES
                    .iter()
                    .filter(|q| q.program == p.program)
                    .count(),
                1,
                "{} listed twice",
                p.program
            );
        }
    }

    #[test]
    fn install_hints_never_allow_removals() {
        assert!(install_hint(&["qemu-system-arm"]).contains("--no-remove"));
        assert!(install_hint(&["qemu-system-arm"]).contains("--no-install-recommends"));
    }
}
