//! `verifier`: checks exported evidence (`cargo xtask run ... --evidence DIR`, or `cargo
//! xtask attest`, which runs this same check in-process) and prints one line per check, the
//! verdict, and optionally a JSON report. Exit 0: trusted; 1: untrusted; 2: bad input.

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Catena's attestation verifier")]
struct Args {
    /// The evidence folder: eventlog.bin, ima.bin, ak-pub.bin, quote-msg.bin, quote-sig.bin.
    #[arg(long)]
    evidence: PathBuf,
    /// The nonce this verifier gave (hex).
    #[arg(long)]
    nonce: String,
    /// The reference firmware.bin.
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// The reference kernel Image.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// The reference boot loader (u-boot.bin) on the U-Boot path.
    #[arg(long)]
    bl33: Option<PathBuf>,
    /// The reference initramfs.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// A command line the policy allows (repeatable).
    #[arg(long)]
    cmdline: Vec<String>,
    /// Require Secure Boot on.
    #[arg(long)]
    require_secure_boot: bool,
    /// A CA certificate (DER) EK certificates must chain to: the root first, then
    /// intermediates (repeatable).
    #[arg(long)]
    ek_ca: Vec<PathBuf>,
    /// The secret of the credential made for this TPM's EK and AK (registration).
    #[arg(long)]
    credential_secret: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn run(a: Args) -> Result<bool> {
    let d = &a.evidence;
    let e = verifier::Evidence {
        eventlog: verifier::read(&d.join("eventlog.bin"))?,
        ima: verifier::read(&d.join("ima.bin"))?,
        ak_pub: verifier::read(&d.join("ak-pub.bin"))?,
        quote_msg: verifier::read(&d.join("quote-msg.bin"))?,
        quote_sig: verifier::read(&d.join("quote-sig.bin"))?,
        ek_pub: verifier::read(&d.join("ek-pub.bin")).unwrap_or_default(),
        ek_cert: verifier::read(&d.join("ek-cert.bin")).unwrap_or_default(),
        credential_secret: verifier::read(&d.join("credential-secret.bin")).unwrap_or_default(),
    };
    let nonce = attest::wire::unhex(&a.nonce).context("--nonce is not hex")?;
    let r = verifier::Reference {
        firmware: a
            .firmware
            .as_deref()
            .map(verifier::digest_file)
            .transpose()?,
        kernel: a.kernel.as_deref().map(verifier::digest_file).transpose()?,
        bl33: a.bl33.as_deref().map(verifier::digest_file).transpose()?,
        initrd: a.initrd.as_deref().map(verifier::digest_file).transpose()?,
        programs: Vec::new(),
        cmdlines: a.cmdline,
        require_secure_boot: a.require_secure_boot,
        secure_boot_vars: None,
        ek_ca: a
            .ek_ca
            .iter()
            .map(|p| verifier::read(p))
            .collect::<Result<_>>()?,
        credential_secret: a
            .credential_secret
            .as_deref()
            .map(verifier::read)
            .transpose()?,
    };
    let v = verifier::verify(&e, &nonce, &r);
    for l in v.lines() {
        println!("{l}");
    }
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_string_pretty(&v.json())?)?;
    }
    Ok(v.trusted())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("verifier: {e:#}");
            ExitCode::from(2)
        }
    }
}
