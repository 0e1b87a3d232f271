//! Prerequisites, ensured rather than assumed.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// The bare-metal target every image builds for.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

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

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-aarch64";

/// Installs QEMU with apt-get when it is missing and we are root; otherwise says how.
pub fn ensure_qemu() -> Result<()> {
    if output(Command::new(QEMU).arg("--version")).is_some() {
        return Ok(());
    }
    let root = output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    if !root {
        bail!(
            "{QEMU} is not installed. Install it with:\n    sudo apt-get update && sudo apt-get install -y qemu-system-arm"
        );
    }
    eprintln!("xtask: {QEMU} is missing; installing qemu-system-arm with apt-get");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "qemu-system-arm",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if output(Command::new(QEMU).arg("--version")).is_none() {
        bail!("{QEMU} still not runnable after installing qemu-system-arm");
    }
    Ok(())
}

/// A tool from rustup's `llvm-tools` (llvm-objcopy, llvm-nm).
pub fn llvm_tool(name: &str) -> Result<std::path::PathBuf> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))
        .context("rustc --print sysroot")?;
    let vv = output(Command::new("rustc").arg("-vV")).context("rustc -vV")?;
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .context("no host triple in rustc -vV")?;
    let path = std::path::Path::new(sysroot.trim())
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
