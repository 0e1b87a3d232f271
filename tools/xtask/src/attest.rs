//! `cargo xtask attest [SCENARIO] [--tamper kernel]`: two boots and the verifier together —
//! registration (the EK, its certificate and the AK exported; a credential made for them),
//! then the attestation (the credential activated, the quote over this run's nonce).
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
    /// A command line outside the policy (one harmless word added: `catena.tick_hz=200`).
    Cmdline,
    /// A replayed quote: the guest quotes over an old nonce, not the verifier's fresh one.
    Nonce,
    /// A dbx other than the enrolled one (a scenario that enrols: the machine's dbx updated
    /// with a revocation list the verifier's reference does not have).
    Dbx,
}

/// The word `--tamper cmdline` adds to the command line the policy allows.
const EXTRA_WORD: &str = "catena.tick_hz=200";

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
    /// The registration: its boot and the credential made.
    pub registration: std::time::Duration,
    /// Reset to the end of the boot.
    pub boot: std::time::Duration,
    /// Reset to the verdict.
    pub total: std::time::Duration,
    /// Where the evidence and report.json are.
    pub dir: std::path::PathBuf,
}

/// An attestation's folder (made fresh) and what it boots.
struct Setup {
    dir: std::path::PathBuf,
    /// The build's images, or with `--tamper kernel` a copy of the scenario's kernel with one
    /// byte changed in their place.
    boot_images: build::Images,
    /// The kernel the verifier takes as its reference: the one built for the scenario.
    reference_kernel: std::path::PathBuf,
}

fn setup(
    root: &Path,
    images: &build::Images,
    name: &str,
    s: &config::Scenario,
    tamper: Option<Tamper>,
    tag: &str,
) -> Result<Setup> {
    if !s.tpm {
        bail!("`{name}` has no TPM (tpm = true in qemu.toml): nothing to attest");
    }
    let suffix = if tamper.is_some() { "-tampered" } else { "" };
    let dir = root.join(format!("target/catena/runs/attest-{name}{tag}{suffix}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let reference_kernel = if s.hooks {
        images.image_hooks.clone()
    } else {
        images.image.clone()
    };
    let mut boot_images = images.clone();
    if tamper == Some(Tamper::Kernel) {
        let t = dir.join("Image-tampered");
        let at = tamper_kernel(&reference_kernel, &t)?;
        println!("xtask: booting a copy of the Image with byte {at:#x} changed");
        if s.hooks {
            boot_images.image_hooks = t;
        } else {
            boot_images.image = t;
        }
    }
    Ok(Setup {
        dir,
        boot_images,
        reference_kernel,
    })
}

/// What the verifier expects of scenario `s` booted from this build: the SHA-256 of the
/// firmware, the kernel, U-Boot (on its path), the initramfs and its programs (when given),
/// the command line `cmdline`, Secure Boot (required when the scenario enrols), the EK's CA
/// and the credential's secret (when registration made one).
fn reference(
    root: &Path,
    name: &str,
    s: &config::Scenario,
    images: &build::Images,
    kernel: &Path,
    cmdline: String,
    credential_secret: Option<Vec<u8>>,
) -> Result<verifier::Reference> {
    Ok(verifier::Reference {
        firmware: Some(digest(&images.firmware)?),
        kernel: Some(digest(kernel)?),
        bl33: match s.boot {
            Some(config::BootPath::Uboot | config::BootPath::UbootFit) => {
                Some(digest(&prereq::program(prereq::UBOOT_QEMU)?.path)?)
            }
            _ => None,
        },
        initrd: if s.initrd {
            Some(digest(&images.initramfs)?)
        } else {
            None
        },
        programs: if s.initrd {
            programs(&images.initramfs)?
        } else {
            Vec::new()
        },
        cmdlines: vec![cmdline],
        require_secure_boot: s.enroll.is_some(),
        secure_boot_vars: secure_boot_reference(root, name, s)?,
        ek_ca: ek_ca()?,
        credential_secret,
    })
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
    let Setup {
        dir,
        boot_images,
        reference_kernel,
    } = setup(root, images, name, s, tamper, "")?;
    // Registration (Keylime's registrar step, once per TPM): a boot on a freshly manufactured
    // TPM exports its EK, EK certificate and AK; the verifier makes a credential against that
    // EK for that AK's name (tpm2_makecredential, offline). The AK is a primary key, so the
    // same TPM makes the same AK at the next boot, which must activate the credential.
    let tpm_dir = dir.join("tpm");
    let registration_started = std::time::Instant::now();
    // It also enrols the Secure Boot keys of a scenario that enrols (on fresh flash), so that
    // the judged boot's firmware measures them.
    let mut reg_s = s.clone();
    if tamper == Some(Tamper::Dbx) {
        if s.enroll.is_none() {
            bail!("--tamper dbx: `{name}` enrols no Secure Boot keys");
        }
        reg_s.enroll = Some(config::Enroll::DbxUpdate);
    }
    let mut reg = scenario_args(
        root,
        cfg,
        name,
        &reg_s,
        images,
        Prep {
            tpm_state: Some(&tpm_dir),
            fresh: s.flash,
            ..Prep::default()
        },
    )?;
    let (o, _) = boot_quiet(root, cfg, name, &reg_s, &mut reg)?;
    drop(reg);
    let first = evidence::collect(&o.events)?;
    let secret = attest::wire::unhex(&crate::fresh_nonce()?).context("a fresh secret")?;
    // A TPM the boot could not reach (ffa-early-tpm) exports no EK or AK: nothing to make a
    // credential for; the judged boot goes on and the verifier says what is missing.
    let cred = dir.join("credential.bin");
    let registered = if first.contains_key("ek-pub") && first.contains_key("ak-pub") {
        make_credential(&dir, &first, &secret, &cred)?;
        true
    } else {
        println!("xtask: registration: the guest exported no EK or AK (no TPM reached)");
        false
    };
    let registration = registration_started.elapsed();
    // Attestation: the boot that is judged, with this verifier's nonce and the credential.
    let mut boot_s = s.clone();
    // Enrolled already (and kept in the flash): not again.
    boot_s.enroll = None;
    if tamper == Some(Tamper::Cmdline) {
        boot_s.cmdline = format!("{} {EXTRA_WORD}", s.cmdline).trim().to_string();
    }
    let mut parts = scenario_args(
        root,
        cfg,
        name,
        &boot_s,
        &boot_images,
        Prep {
            tpm_state: Some(&tpm_dir),
            credential: registered.then_some(cred.as_path()),
            ..Prep::default()
        },
    )?;
    let given = parts
        .nonce
        .clone()
        .context("no nonce was given to the kernel")?;
    let started = std::time::Instant::now();
    let (o, _) = boot_quiet(root, cfg, name, &boot_s, &mut parts)?;
    let boot = started.elapsed();
    let ev = evidence::collect(&o.events)?;
    evidence::write(&dir, &ev)?;
    std::fs::write(dir.join("nonce.hex"), &given)?;
    // The verifier's nonce: the one the guest was given, unless the quote is a replay of an
    // older exchange (`--tamper nonce`: the verifier has moved on to a fresh one).
    let nonce = if tamper == Some(Tamper::Nonce) {
        crate::fresh_nonce()?
    } else {
        given
    };
    let get = |n: &str| ev.get(n).cloned().unwrap_or_default();
    let e = verifier::Evidence {
        eventlog: get("eventlog"),
        ima: get("ima"),
        ak_pub: get("ak-pub"),
        quote_msg: get("quote-msg"),
        quote_sig: get("quote-sig"),
        ek_pub: get("ek-pub"),
        ek_cert: get("ek-cert"),
        credential_secret: get("credential-secret"),
    };
    let r = reference(
        root,
        name,
        s,
        images,
        &reference_kernel,
        s.cmdline.clone(),
        registered.then_some(secret),
    )?;
    let nonce_bytes = attest::wire::unhex(&nonce).context("the nonce is not hex")?;
    let verdict = verifier::verify(&e, &nonce_bytes, &r);
    let total = started.elapsed();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&verdict.json())?,
    )?;
    Ok(Attested {
        verdict,
        registration,
        boot,
        total,
        dir,
    })
}

/// Secure Boot variables by name, with their contents.
type SecureBootVars = Vec<(String, Vec<u8>)>;

/// What the verifier expects in PCR 7: a scenario that enrols nothing has PK, KEK, db and dbx
/// empty (measured as such); one that enrols the standard keys has the payloads of its PKI's
/// signed updates (`PK.auth` ... `dbx.auth`, made per state by `cargo xtask varstore pki`).
fn secure_boot_reference(
    root: &Path,
    name: &str,
    s: &config::Scenario,
) -> Result<Option<SecureBootVars>> {
    let vars = ["PK", "KEK", "db", "dbx"];
    Ok(match s.enroll {
        None => Some(vars.iter().map(|n| (n.to_string(), Vec::new())).collect()),
        Some(config::Enroll::Standard) => {
            let pki = crate::state_dir(root, name, s).join("pki");
            let mut out = Vec::new();
            for v in vars {
                let auth = std::fs::read(pki.join(format!("{v}.auth")))?;
                let a = uefi_vars::auth::parse_auth2(&auth)
                    .map_err(|e| anyhow::anyhow!("{v}.auth: {e}"))?;
                out.push((v.to_string(), a.payload.to_vec()));
            }
            Some(out)
        }
        Some(_) => None,
    })
}

/// The programs of the build's initramfs, as the kernel names them when it measures them
/// (`/bin/NAME`), with their SHA-256.
fn programs(initramfs: &Path) -> Result<Vec<(String, [u8; 32])>> {
    let archive = std::fs::read(initramfs)?;
    let entries =
        cpio::parse(&archive).map_err(|e| anyhow::anyhow!("{}: {}", initramfs.display(), e.0))?;
    Ok(entries
        .iter()
        .filter(|e| e.is_file() && e.name.starts_with("bin/"))
        .map(|e| (format!("/{}", e.name), verifier::digest(e.data)))
        .collect())
}

/// The CA's certificates as DER (openssl converts swtpm_localca's PEM files), root first.
fn ek_ca() -> Result<Vec<Vec<u8>>> {
    crate::tpm::ca_certs()
        .iter()
        .map(|pem| {
            let out = prereq::program("openssl")?
                .command()
                .args(["x509", "-outform", "der", "-in"])
                .arg(pem)
                .output()
                .context("running openssl x509")?;
            if !out.status.success() || out.stdout.is_empty() {
                bail!("openssl could not read {}", pem.display());
            }
            Ok(out.stdout)
        })
        .collect()
}

/// The verifier's side of registration: the EK's public area and the AK's name from the
/// first boot's evidence, and `tpm2_makecredential -T none` (offline) wrapping `secret` for
/// them into `out`.
pub fn make_credential(
    dir: &Path,
    ev: &std::collections::BTreeMap<String, Vec<u8>>,
    secret: &[u8],
    out: &Path,
) -> Result<()> {
    let ek = ev
        .get("ek-pub")
        .context("registration: the TPM exported no EK")?;
    let ak = ev
        .get("ak-pub")
        .context("registration: the TPM exported no AK")?;
    let name = ::attest::ak_key(ak)
        .map_err(|e| anyhow::anyhow!("registration: {e}"))?
        .name;
    let name_hex = attest::wire::hex(&name);
    std::fs::write(dir.join("registration-ek.pub"), ek)?;
    std::fs::write(dir.join("registration-secret"), secret)?;
    let tool = prereq::program("tpm2_checkquote")?
        .path
        .with_file_name("tpm2_makecredential");
    let st = std::process::Command::new(&tool)
        .current_dir(dir)
        .args([
            "-T",
            "none",
            "-u",
            "registration-ek.pub",
            "-s",
            "registration-secret",
            "-n",
        ])
        .arg(&name_hex)
        .arg("-o")
        .arg(out)
        .output()
        .with_context(|| format!("running {}", tool.display()))?;
    if !st.status.success() {
        bail!(
            "tpm2_makecredential failed: {}",
            String::from_utf8_lossy(&st.stderr).trim()
        );
    }
    Ok(())
}

/// The same over the network, in one boot: the guest's agent registers, takes a nonce, and
/// sends its evidence to the verifier service (`verifier_server.rs`) on 127.0.0.1, which the
/// guest reaches at 10.0.2.2 through QEMU's user networking (virtio-net on virtio-mmio).
pub fn attest_net(
    root: &Path,
    cfg: &config::Config,
    images: &build::Images,
    name: &str,
    tamper: Option<Tamper>,
) -> Result<Attested> {
    let s0 = cfg.scenario(name)?;
    let Setup {
        dir,
        boot_images,
        reference_kernel,
    } = setup(root, images, name, s0, tamper, "-net")?;
    let listener = crate::verifier_server::Server::bind()?;
    let port = listener.local_addr()?.port();
    if tamper == Some(Tamper::Nonce) {
        bail!("--tamper nonce: over the network the verifier hands out the nonce itself");
    }
    let mut s = s0.clone();
    s.cmdline = format!("{} catena.verifier=10.0.2.2:{port}", s0.cmdline)
        .trim()
        .to_string();
    let allowed = s.cmdline.clone();
    if tamper == Some(Tamper::Cmdline) {
        s.cmdline = format!("{} {EXTRA_WORD}", s.cmdline);
    }
    s.qemu_args.extend(
        [
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-device,netdev=n0",
        ]
        .map(String::from),
    );
    let reference = reference(root, name, &s, images, &reference_kernel, allowed, None)?;
    let server = crate::verifier_server::Server::start(listener, reference, dir.clone())?;
    let tpm_dir = dir.join("tpm");
    let mut parts = scenario_args(
        root,
        cfg,
        name,
        &s,
        &boot_images,
        Prep {
            tpm_state: Some(&tpm_dir),
            ..Prep::default()
        },
    )?;
    let started = std::time::Instant::now();
    let (o, _) = boot_quiet(root, cfg, name, &s, &mut parts)?;
    let boot = started.elapsed();
    let verdict = server
        .verdicts
        .recv_timeout(std::time::Duration::from_secs(1))
        .map_err(|_| {
            let said = o
                .events
                .iter()
                .filter(|e| e.kind == "attest")
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join("; ");
            anyhow::anyhow!("the agent reached no verdict ({}; {said})", o.status())
        })?;
    let total = started.elapsed();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&verdict.json())?,
    )?;
    // What the guest was told must be what the verifier decided.
    let told = o
        .events
        .iter()
        .find(|e| e.kind == "attest" && e.get("state") == Some("verdict"))
        .and_then(|e| e.get("verdict").map(String::from));
    let decided = if verdict.trusted() {
        "trusted"
    } else {
        "untrusted"
    };
    if told.as_deref() != Some(decided) {
        bail!("the guest reported {told:?}, the verifier decided {decided}");
    }
    Ok(Attested {
        verdict,
        registration: std::time::Duration::ZERO,
        boot,
        total,
        dir,
    })
}

/// `cargo xtask attest`: prints every check and the verdict; 0 trusted, 1 untrusted.
pub fn run(scenario: Option<&str>, tamper: Option<Tamper>, net: bool) -> Result<i32> {
    let root = root();
    let cfg = config::Config::load(&root.join("qemu.toml"))?;
    prereq::ensure_qemu()?;
    let images = build::build(&root, true)?;
    let name = scenario.unwrap_or("full");
    let a = if net {
        attest_net(&root, &cfg, &images, name, tamper)?
    } else {
        attest(&root, &cfg, &images, name, tamper)?
    };
    for l in a.verdict.lines() {
        println!("verifier: {l}");
    }
    if net {
        println!(
            "xtask: report {}; reset to verdict {:.2} s: registration, nonce, quote and verdict in one boot over the network",
            a.dir.join("report.json").display(),
            a.total.as_secs_f64()
        );
    } else {
        println!(
            "xtask: report {}; registration {:.2} s (once per TPM); reset to verdict {:.2} s (boot {:.2} s, evidence and verifier {:.3} s)",
            a.dir.join("report.json").display(),
            a.registration.as_secs_f64(),
            a.total.as_secs_f64(),
            a.boot.as_secs_f64(),
            (a.total - a.boot).as_secs_f64()
        );
    }
    Ok(if a.verdict.trusted() { 0 } else { 1 })
}

/// The attestations `cargo xtask test` makes: (scenario, tamper, over the network, the checks
/// that must fail — none: trusted).
pub const TEST_CASES: &[(&str, Option<Tamper>, bool, &[&str])] = &[
    ("full", None, false, &[]),
    (
        "full",
        Some(Tamper::Kernel),
        false,
        &["PCR8 EV_COMPACT_HASH linux (kernel)"],
    ),
    ("uboot", None, false, &[]),
    (
        "full",
        Some(Tamper::Cmdline),
        false,
        &["PCR1 EV_PLATFORM_CONFIG_FLAGS (command line)"],
    ),
    ("full", Some(Tamper::Nonce), false, &["quote"]),
    // The init-order bug: no TPM was reached, so there is no quote and no EK, and the
    // measurement list (kept without a TPM) shows FF-A before the hyp.
    (
        "ffa-early-tpm",
        None,
        false,
        &[
            "quote",
            "EK certificate",
            "EK public key",
            "AK bound to the EK (credential activation)",
            "PCR10 boot_aggregate",
            "policy: the hyp finalised before FF-A came up",
        ],
    ),
    ("secure-boot", None, false, &[]),
    (
        "secure-boot",
        Some(Tamper::Dbx),
        false,
        &["PCR7 EV_EFI_VARIABLE_DRIVER_CONFIG dbx"],
    ),
    ("full", None, true, &[]),
    (
        "full",
        Some(Tamper::Kernel),
        true,
        &["PCR8 EV_COMPACT_HASH linux (kernel)"],
    ),
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
