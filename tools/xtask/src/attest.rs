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

/// Runs the boot and the verifier; 0 trusted, 1 untrusted.
pub fn run(scenario: Option<&str>, tamper: Option<Tamper>) -> Result<i32> {
    let root = root();
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    let name = scenario.unwrap_or("full");
    let s = cfg.scenario(name)?;
    if !s.tpm {
        bail!("`{name}` has no TPM (tpm = true in qemu.toml): nothing to attest");
    }
    prereq::ensure_qemu()?;
    let images = build::build(&root, false)?;
    let dir = root.join("target/catena/runs/attest");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut boot_images = images.clone();
    if tamper == Some(Tamper::Kernel) {
        let t = dir.join("Image-tampered");
        let at = tamper_kernel(&images.image, &t)?;
        println!("xtask: booting a copy of the Image with byte {at:#x} changed");
        boot_images.image = t;
    }
    let mut parts = scenario_args(&root, &cfg, name, s, &boot_images, Prep::default())?;
    let nonce = parts
        .nonce
        .clone()
        .context("no nonce was given to the kernel")?;
    let started = std::time::Instant::now();
    let (o, _) = boot_quiet(&root, &cfg, name, s, &mut parts)?;
    let booted = started.elapsed();
    println!(
        "xtask: `{name}` booted ({}) in {:.2} s",
        o.status(),
        booted.as_secs_f64()
    );
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
        kernel: Some(digest(&images.image)?),
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
    let v = verifier::verify(&e, &nonce_bytes, &r);
    let verified = started.elapsed();
    for l in v.lines() {
        println!("verifier: {l}");
    }
    let report = dir.join("report.json");
    std::fs::write(&report, serde_json::to_string_pretty(&v.json())?)?;
    println!(
        "xtask: report {}; reset to verdict {:.2} s (boot {:.2} s, verifier {:.3} s)",
        report.display(),
        verified.as_secs_f64(),
        booted.as_secs_f64(),
        (verified - booted).as_secs_f64()
    );
    Ok(if v.trusted() { 0 } else { 1 })
}

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
