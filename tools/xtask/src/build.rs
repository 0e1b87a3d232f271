//! `cargo xtask build`: the images, at stable paths: `hyp.bin` (the hyp, embedded in both
//! kernels), `Image` (the product kernel), `Image-hooks`
//! (the same with the `test-hooks` feature, for the scenarios that need a hook), the firmware.

use crate::prereq::{self, TARGET};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built images.
#[derive(Clone, Debug)]
pub struct Images {
    /// Flat arm64 Linux Image: the product, without test hooks.
    pub image: PathBuf,
    /// The kernel ELF (symbols, for debugging).
    pub elf: PathBuf,
    /// The Image with the `test-hooks` feature (for scenarios with `hooks = true`).
    pub image_hooks: PathBuf,
    /// Its ELF.
    pub elf_hooks: PathBuf,
    /// The EL3 firmware, flat, for `-bios`.
    pub firmware: PathBuf,
    /// The initramfs (newc cpio): the user programs of `userland/`.
    pub initramfs: PathBuf,
}

/// Linux arm64 Image header: magic "ARM\x64" at 0x38, image_size at 0x10
/// (Documentation/arch/arm64/booting.rst).
fn check_image_header(bytes: &[u8]) -> Result<u64> {
    if bytes.len() < 64 || &bytes[0x38..0x3c] != b"ARM\x64" {
        bail!("Image lacks the arm64 header magic");
    }
    let image_size = u64::from_le_bytes(bytes[0x10..0x18].try_into()?);
    if image_size < bytes.len() as u64 {
        bail!("Image header image_size {image_size} is smaller than the file");
    }
    Ok(image_size)
}

/// Builds one package; `hooks` adds the `test-hooks` feature, in a target folder of its own
/// so the two kernels do not rebuild each other.
fn cargo_build(
    root: &Path,
    package: &str,
    quiet: bool,
    hooks: bool,
    env: &[(&str, &Path)],
) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = if hooks {
        root.join("target/hooks")
    } else {
        root.join("target")
    };
    // One package per invocation, so features of one image never leak into another.
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", package, "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(if hooks {
            &["--features", "test-hooks"][..]
        } else {
            &[][..]
        })
        .args(if quiet { &["--quiet"][..] } else { &[][..] })
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("{package} build failed");
    }
    Ok(target_dir.join(TARGET).join("release").join(package))
}

/// Builds a kernel and lays it out as `NAME.elf` and the flat Image `IMAGE`.
fn kernel(
    root: &Path,
    quiet: bool,
    hooks: bool,
    hyp: &Path,
    elf: &str,
    image: &str,
) -> Result<(PathBuf, PathBuf)> {
    let out = root.join("target/catena");
    let built = cargo_build(
        root,
        "catena-kernel",
        quiet,
        hooks,
        &[("CATENA_HYP_BIN", hyp)],
    )?;
    let elf = out.join(elf);
    std::fs::copy(&built, &elf).with_context(|| format!("copying {}", built.display()))?;
    let image = out.join(image);
    let bytes = objcopy(&elf, &image)?;
    let image_size = check_image_header(&bytes)?;
    println!(
        "xtask: {} {} bytes (loaded footprint {} KiB), {} {} bytes",
        rel(root, &image),
        bytes.len(),
        image_size / 1024,
        rel(root, &elf),
        std::fs::metadata(&elf)?.len()
    );
    Ok((image, elf))
}

fn objcopy(elf: &Path, out: &Path) -> Result<Vec<u8>> {
    let status = Command::new(prereq::llvm_tool("llvm-objcopy")?)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(out)
        .status()?;
    if !status.success() {
        bail!("llvm-objcopy failed on {}", elf.display());
    }
    Ok(std::fs::read(out)?)
}

/// Builds the kernel and the firmware and lays out `target/catena/`.
pub fn build(root: &Path, quiet: bool) -> Result<Images> {
    prereq::ensure_rust()?;
    let out = root.join("target/catena");
    std::fs::create_dir_all(&out)?;

    // The hyp first: the kernel embeds it.
    let hyp_elf = cargo_build(root, "catena-hyp", quiet, false, &[])?;
    std::fs::copy(&hyp_elf, out.join("hyp.elf"))?;
    let hyp = out.join("hyp.bin");
    let hyp_bytes = objcopy(&hyp_elf, &hyp)?;
    println!("xtask: {} {} bytes", rel(root, &hyp), hyp_bytes.len());
    let (image, elf) = kernel(root, quiet, false, &hyp, "kernel.elf", "Image")?;
    let (image_hooks, elf_hooks) =
        kernel(root, quiet, true, &hyp, "kernel-hooks.elf", "Image-hooks")?;

    let fw_elf = cargo_build(root, "catena-firmware", quiet, false, &[])?;
    std::fs::copy(&fw_elf, out.join("firmware.elf"))?;
    let firmware = out.join("firmware.bin");
    let fw = objcopy(&fw_elf, &firmware)?;
    if fw.len() > FLASH_SIZE {
        bail!(
            "firmware.bin is {} bytes; secure flash holds {FLASH_SIZE}",
            fw.len()
        );
    }
    println!("xtask: {} {} bytes", rel(root, &firmware), fw.len());
    let initramfs = initramfs(root, quiet)?;
    Ok(Images {
        image,
        elf,
        image_hooks,
        elf_hooks,
        firmware,
        initramfs,
    })
}

/// The user programs: (package, name in `bin/`).
const USER_PROGRAMS: &[(&str, &str)] = &[
    ("catena-user-hello", "hello"),
    ("catena-user-probe", "probe"),
    ("catena-user-crash", "crash"),
    ("catena-user-init", "init"),
    ("catena-user-sh", "sh"),
    ("catena-user-agent", "agent"),
    ("catena-user-fuzz", "fuzz"),
    ("catena-user-spin", "spin"),
];

/// The user programs, each built as a static ELF at the user range (debug info stripped),
/// packed with `lib/cpio` as Linux packs an initramfs (`bin/NAME`).
fn initramfs(root: &Path, quiet: bool) -> Result<PathBuf> {
    let out = root.join("target/catena");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (package, name) in USER_PROGRAMS {
        let elf = cargo_build(root, package, quiet, false, &[])?;
        let stripped = out.join(format!("user-{name}"));
        let status = Command::new(prereq::llvm_tool("llvm-objcopy")?)
            .arg("--strip-debug")
            .arg(&elf)
            .arg(&stripped)
            .status()?;
        if !status.success() {
            bail!("llvm-objcopy failed on {}", elf.display());
        }
        files.push((format!("bin/{name}"), std::fs::read(&stripped)?));
    }
    let mut entries: Vec<(&str, u32, &[u8])> = vec![("bin", cpio::S_IFDIR | 0o755, &[])];
    entries.extend(
        files
            .iter()
            .map(|(n, d)| (n.as_str(), cpio::S_IFREG | 0o755, d.as_slice())),
    );
    let archive = cpio::write(&entries);
    let path = out.join("initramfs.cpio");
    std::fs::write(&path, &archive)?;
    println!(
        "xtask: {} {} bytes ({} programs)",
        rel(root, &path),
        archive.len(),
        files.len()
    );
    Ok(path)
}

/// QEMU virt's secure flash (`-bios`).
const FLASH_SIZE: usize = 64 << 20;

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// The symbol containing `offset` in the ELF (linked at 0), via llvm-nm.
pub fn symbolize(elf: &Path, offset: u64) -> Option<String> {
    let nm = prereq::llvm_tool("llvm-nm").ok()?;
    let out = Command::new(nm)
        .args(["-n", "--demangle", "--defined-only"])
        .arg(elf)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut best: Option<(u64, String)> = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !matches!(kind, "t" | "T") {
            continue;
        }
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        if addr <= offset {
            best = Some((addr, name.to_string()));
        }
    }
    best.map(|(a, n)| format!("{n}+{:#x}", offset - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_header_is_checked() {
        let mut h = vec![0u8; 64];
        assert!(check_image_header(&h).is_err());
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h[0x10..0x18].copy_from_slice(&4096u64.to_le_bytes());
        assert_eq!(check_image_header(&h).unwrap(), 4096);
        h[0x10..0x18].copy_from_slice(&8u64.to_le_bytes());
        assert!(check_image_header(&h).is_err());
    }
}
