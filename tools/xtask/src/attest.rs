//! `cargo xtask attest [SCENARIO] [--tamper kernel]`: one boot and the verifier together.
//! The verifier (`tools/verifier`) gets this run's nonce, the evidence the guest exported, and
//! reference values from this build (the SHA-256 of `firmware.bin` and of the `Image`, the
//! scenario's command line as the policy's); it prints one line per check and the verdict and
//! writes `target/catena/runs/attest/report.json`. `--tamper kernel` boots a copy of the Image
//! with one byte changed (a character of a console message, so it still boots) against the
//! reference of the real one: the verdict must be untrusted and name the kernel's event.

use crate::{Prep, boot_quiet, build, config, evidence, prereq, root, scenario_args};
use anyhow::{Context, Result, bail};
use std::path::Path;

/// What to boot instead of the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tamper {
    /// The kernel Image with one byte changed.
    Kernel,
}

/// The byte changed by `--tamper kernel`: the first character of the kernel's first console
/// message, which it prints before anything depends on it.
const TAMPER_MARK: &[u8] = b"Catena: entered at EL";

fn tamper_kernel(image: &Path, out: &Path) -> Result<usize> {
    let mut bytes = std::fs::read(image)?;
    let at = bytes
        .windows(TAMPER_MARK.len())
        .position(|w| w == TAMPER_MARK)
        .context("the Image lacks its first console message")?;
    bytes[at] ^= 0x20; // 'C' -> 'c'
    std::fs::write(out, bytes)?;
    Ok(at)
}

fn digest(path: &Path) -> Result<[u8; 32]> {
    verifier::digest_file(path)
}

/// One attestation: the boot, the evidence in `target/catena/runs/attest-NAME/`, the verdict.
pub struct Attested {
    /// The verifier's verdict.
    pub verdict: verifier::Verdict,
    /// Reset to the end of the boot.
    pub boot: std::time::Duration,
    /// Reset to the verdict.
    pub total: std::time::Duration,
    /// Where the evidence and report.json are.
    pub dir: std::path::PathBuf,
}

/// Boots `name` (with `tamper`) and verifies it against this build.
pub fn attest(
    root: &Path,
    cfg: &config::Config,
    images: &build::Images,
    name: &str,
    tamper: Option<Tamper>,
) -> Result<Attested> {
    let s = cfg.scenario(name)?;
    if !s.tpm {
        bail!("`{name}` has no TPM (tpm = true in qemu.toml): nothing to attest");
    }
    let suffix = if tamper.is_some() { "-tampered" } else { "" };
    let dir = root.join(format!("target/catena/runs/attest-{name}{suffix}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // The kernel this scenario boots, and what the verifier takes as its reference.
    let reference_kernel = if s.hooks {
        &images.image_hooks
    } else {
        &images.image
    };
    let mut boot_images = images.clone();
    if tamper == Some(Tamper::Kernel) {
        let t = dir.join("Image-tampered");
        let at = tamper_kernel(reference_kernel, &t)?;
        println!("xtask: booting a copy of the Image with byte {at:#x} changed");
        if s.hooks {
            boot_images.image_hooks = t;
        } else {
            boot_images.image = t;
        }
    }
    let mut parts = scenario_args(root, cfg, name, s, &boot_images, Prep::default())?;
    let nonce = parts
        .nonce
        .clone()
        .context("no nonce was given to the kernel")?;
    let started = std::time::Instant::now();
    let (o, _) = boot_quiet(root, cfg, name, s, &mut parts)?;
    let boot = started.elapsed();
    let ev = evidence::collect(&o.events)?;
    evidence::write(&dir, &ev)?;
    let get = |n: &str| ev.get(n).cloned().unwrap_or_default();
    let e = verifier::Evidence {
        eventlog: get("eventlog"),
        ima: get("ima"),
        ak_pub: get("ak-pub"),
        quote_msg: get("quote-msg"),
        quote_sig: get("quote-sig"),
    };
    let r = verifier::Reference {
        firmware: Some(digest(&images.firmware)?),
        kernel: Some(digest(reference_kernel)?),
        bl33: match s.boot {
            Some(config::BootPath::Uboot | config::BootPath::UbootFit) => {
                Some(digest(&prereq::program(prereq::UBOOT_QEMU)?.path)?)
            }
            _ => None,
        },
        cmdlines: vec![s.cmdline.clone()],
        require_secure_boot: false,
    };
    let nonce_bytes: Vec<u8> = (0..nonce.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&nonce[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let verdict = verifier::verify(&e, &nonce_bytes, &r);
    let total = started.elapsed();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&verdict.json())?,
    )?;
    Ok(Attested {
        verdict,
        boot,
        total,
        dir,
    })
}

/// `cargo xtask attest`: prints every check and the verdict; 0 trusted, 1 untrusted.
pub fn run(scenario: Option<&str>, tamper: Option<Tamper>) -> Result<i32> {
    let root = root();
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    prereq::ensure_qemu()?;
    let images = build::build(&root, true)?;
    let name = scenario.unwrap_or("full");
    let a = attest(&root, &cfg, &images, name, tamper)?;
    for l in a.verdict.lines() {
        println!("verifier: {l}");
    }
    println!(
        "xtask: report {}; reset to verdict {:.2} s (boot {:.2} s, evidence and verifier {:.3} s)",
        a.dir.join("report.json").display(),
        a.total.as_secs_f64(),
        a.boot.as_secs_f64(),
        (a.total - a.boot).as_secs_f64()
    );
    Ok(if a.verdict.trusted() { 0 } else { 1 })
}

/// The attestations `cargo xtask test` makes: (scenario, tamper, the checks that must fail —
/// none: trusted).
pub const TEST_CASES: &[(&str, Option<Tamper>, &[&str])] = &[
    ("full", None, &[]),
    (
        "full",
        Some(Tamper::Kernel),
        &["PCR8 EV_COMPACT_HASH linux (kernel)"],
    ),
    ("uboot", None, &[]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampering_changes_exactly_one_byte() {
        let dir = std::env::temp_dir().join(format!("catena-tamper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("Image");
        let mut bytes = vec![0u8; 100];
        bytes.extend_from_slice(TAMPER_MARK);
        bytes.extend_from_slice(&[7; 50]);
        std::fs::write(&img, &bytes).unwrap();
        let out = dir.join("t");
        assert_eq!(tamper_kernel(&img, &out).unwrap(), 100);
        let t = std::fs::read(&out).unwrap();
        let diff: Vec<usize> = (0..t.len()).filter(|i| t[*i] != bytes[*i]).collect();
        assert_eq!(diff, [100]);
        std::fs::write(&img, [1u8; 10]).unwrap();
        assert!(tamper_kernel(&img, &out).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
