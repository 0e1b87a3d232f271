//! Secure Boot keys for the variable store, made the way a user makes them: openssl for the
//! keys and certificates, efitools for the signature lists (`cert-to-efi-sig-list`) and the
//! signed `EFI_VARIABLE_AUTHENTICATION_2` files (`sign-efi-sig-list`); and the fw_cfg files
//! that hand them to the guest (`run --enroll DIR`), whose efivar driver sets them through the
//! variable partition.

use crate::prereq;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The owner GUID in the signature lists (Catena's test vendor GUID).
const OWNER: &str = "c47e7a11-ca7e-4a5b-9e3f-0f1e2d3c4b5a";

/// The enrolment files, in the order the guest sets them: PK first, so every later write is
/// checked against it (user mode from then on).
pub const ENROLL: [(&str, &str); 4] = [
    ("1-PK", "PK.auth"),
    ("2-KEK", "KEK.auth"),
    ("3-db", "db.auth"),
    ("4-dbx", "dbx.auth"),
];

/// Updates the guest must refuse with EFI_SECURITY_VIOLATION, each leaving db as it was: a db
/// signed by a key nobody enrolled, a replayed older db signed by the KEK, and a db sent as a
/// bare signature list (no authentication header at all).
pub const REFUSED: [(&str, &str); 3] = [
    ("5-db", "db-wrong-key.auth"),
    ("6-db", "db-older.auth"),
    ("7-db", "db-unsigned.auth"),
];

fn run(mut c: Command, what: &str) -> Result<()> {
    let out = c.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// UTC now plus `days`, as sign-efi-sig-list's `-t` takes it.
fn timestamp(days: i32) -> Result<String> {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("{days} days"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .context("running date")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `cargo xtask varstore pki DIR`: keys, certificates, signature lists and signed updates.
pub fn pki(dir: &Path) -> Result<()> {
    let openssl = prereq::program("openssl")?;
    let cert2esl = prereq::program("cert-to-efi-sig-list")?;
    let sign = cert2esl.path.with_file_name("sign-efi-sig-list");
    if !sign.is_file() {
        bail!("{} is missing (it comes with efitools)", sign.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let at = |f: &str| dir.join(f);
    for name in ["PK", "KEK", "db", "db2", "wrong", "revoked"] {
        let mut c = openssl.command();
        c.args([
            "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        ])
        .args(["-days", "36500", "-subj", &format!("/CN=catena-{name}/")])
        .arg("-keyout")
        .arg(at(&format!("{name}.key")))
        .arg("-out")
        .arg(at(&format!("{name}.crt")));
        run(c, "openssl req")?;
        let mut c = cert2esl.command();
        c.args(["-g", OWNER])
            .arg(at(&format!("{name}.crt")))
            .arg(at(&format!("{name}.esl")));
        run(c, "cert-to-efi-sig-list")?;
    }
    let now = timestamp(0)?;
    let older = timestamp(-1)?;
    let sign_as = |var: &str, esl: &str, key: &str, out: &str, t: &str| -> Result<()> {
        let mut c = Command::new(&sign);
        c.args(["-g", OWNER, "-t", t, "-k"])
            .arg(at(&format!("{key}.key")))
            .arg("-c")
            .arg(at(&format!("{key}.crt")))
            .arg(var)
            .arg(at(esl))
            .arg(at(out));
        run(c, "sign-efi-sig-list")
    };
    sign_as("PK", "PK.esl", "PK", "PK.auth", &now)?;
    sign_as("KEK", "KEK.esl", "PK", "KEK.auth", &now)?;
    sign_as("db", "db.esl", "KEK", "db.auth", &now)?;
    sign_as("dbx", "revoked.esl", "KEK", "dbx.auth", &now)?;
    sign_as(
        "db",
        "db2.esl",
        "wrong",
        "db-wrong-key.auth",
        &timestamp(1)?,
    )?;
    sign_as("db", "db2.esl", "KEK", "db-older.auth", &older)?;
    std::fs::copy(at("db2.esl"), at("db-unsigned.auth"))?;
    revocations(dir, &sign_as, &timestamp(1)?)?;
    println!(
        "xtask: Secure Boot test PKI in {}: PK, KEK, db, dbx (revoking catena-revoked), and updates the guest must refuse",
        dir.display()
    );
    Ok(())
}

/// sign-efi-sig-list for (variable, signature list, signing key, output, timestamp).
type Signer<'a> = dyn Fn(&str, &str, &str, &str, &str) -> Result<()> + 'a;

/// The revocation set, for `load_uefi_certs`: a db of four certificates (catena-db and three
/// more) and a dbx that revokes the three, one each way Linux's dbx handler knows — the
/// certificate itself (EFI_CERT_X509), its TBS hash (EFI_CERT_X509_SHA256) and its file hash
/// (EFI_CERT_SHA256). The hash lists are built here (efitools hashes only PE images); both
/// are signed by the KEK with sign-efi-sig-list, later than db.auth and dbx.auth.
fn revocations(dir: &Path, sign_as: &Signer<'_>, t: &str) -> Result<()> {
    use uefi_vars::siglist::{CERT_SHA256, CERT_X509, CERT_X509_SHA256, Entry, List, encode};
    let owner = uefi_vars::CATENA_TEST_VENDOR;
    let openssl = prereq::program("openssl")?;
    let at = |f: &str| dir.join(f);
    let mut db = std::fs::read(at("db.esl"))?;
    let mut ders = Vec::new();
    for name in ["revoked-cert", "revoked-tbs", "revoked-bin"] {
        let mut c = openssl.command();
        c.args([
            "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        ])
        .args(["-days", "36500", "-subj", &format!("/CN=catena-{name}/")])
        .arg("-keyout")
        .arg(at(&format!("{name}.key")))
        .arg("-outform")
        .arg("DER")
        .arg("-out")
        .arg(at(&format!("{name}.der")));
        run(c, "openssl req")?;
        let der = std::fs::read(at(&format!("{name}.der")))?;
        db.extend(encode(&[List {
            sig_type: CERT_X509,
            header: &[],
            entries: vec![Entry { owner, data: &der }],
        }]));
        ders.push(der);
    }
    let key = uefi_certs::key_of(&ders[1], "dbx").context("a certificate openssl made")?;
    let mut tbs = key.tbs.to_vec();
    // EFI_CERT_X509_SHA256: the TBS hash, then the revocation time (EFI_TIME; zero: always).
    tbs.extend_from_slice(&[0; 16]);
    let bin = uefi_certs::key_of(&ders[2], "dbx")
        .context("a certificate openssl made")?
        .fpr;
    let dbx = encode(&[
        List {
            sig_type: CERT_X509,
            header: &[],
            entries: vec![Entry {
                owner,
                data: &ders[0],
            }],
        },
        List {
            sig_type: CERT_X509_SHA256,
            header: &[],
            entries: vec![Entry { owner, data: &tbs }],
        },
        List {
            sig_type: CERT_SHA256,
            header: &[],
            entries: vec![Entry { owner, data: &bin }],
        },
    ]);
    std::fs::write(at("db-revocations.esl"), db)?;
    std::fs::write(at("dbx-revocations.esl"), dbx)?;
    sign_as("db", "db-revocations.esl", "KEK", "db-revocations.auth", t)?;
    sign_as(
        "dbx",
        "dbx-revocations.esl",
        "KEK",
        "dbx-revocations.auth",
        t,
    )
}

/// A scale set for `cargo xtask bench certs`: `db-LABEL.auth` with `certs` certificates
/// (one key, distinct subjects and serials, made by openssl) and `dbx-LABEL.auth` with
/// `hashes` SHA-256 entries, both signed by the KEK (from a PKI `pki` made) with a timestamp
/// later than its db/dbx.
pub fn scale_set(dir: &Path, label: &str, certs: u32, hashes: u32) -> Result<()> {
    use uefi_vars::siglist::{CERT_SHA256, CERT_X509, Entry, List, encode};
    let owner = uefi_vars::CATENA_TEST_VENDOR;
    let openssl = prereq::program("openssl")?;
    let cert2esl = prereq::program("cert-to-efi-sig-list")?;
    let sign = cert2esl.path.with_file_name("sign-efi-sig-list");
    let at = |f: &str| dir.join(f);
    if !at("scale.key").is_file() {
        let mut c = openssl.command();
        c.args(["genrsa", "-out"]).arg(at("scale.key")).arg("2048");
        run(c, "openssl genrsa")?;
    }
    let mut ders = Vec::new();
    for i in 0..certs {
        let out = at(&format!("scale-{i}.der"));
        if !out.is_file() {
            let mut c = openssl.command();
            c.args(["req", "-new", "-x509", "-sha256", "-days", "36500", "-key"])
                .arg(at("scale.key"))
                .args(["-subj", &format!("/CN=catena-scale-{i}/")])
                .args([
                    "-set_serial",
                    &(i + 1).to_string(),
                    "-outform",
                    "DER",
                    "-out",
                ])
                .arg(&out);
            run(c, "openssl req")?;
        }
        ders.push(std::fs::read(&out)?);
    }
    let db: Vec<u8> = ders
        .iter()
        .flat_map(|d| {
            encode(&[List {
                sig_type: CERT_X509,
                header: &[],
                entries: vec![Entry { owner, data: d }],
            }])
        })
        .collect();
    let digests: Vec<[u8; 32]> = (0..hashes)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            h[31] = 0xdb;
            h
        })
        .collect();
    let dbx = encode(&[List {
        sig_type: CERT_SHA256,
        header: &[],
        entries: digests.iter().map(|h| Entry { owner, data: h }).collect(),
    }]);
    std::fs::write(at(&format!("db-{label}.esl")), db)?;
    std::fs::write(at(&format!("dbx-{label}.esl")), dbx)?;
    let t = timestamp(2)?;
    for var in ["db", "dbx"] {
        let mut c = Command::new(&sign);
        c.args(["-g", OWNER, "-t", &t, "-k"])
            .arg(at("KEK.key"))
            .arg("-c")
            .arg(at("KEK.crt"))
            .arg(var)
            .arg(at(&format!("{var}-{label}.esl")))
            .arg(at(&format!("{var}-{label}.auth")));
        run(c, "sign-efi-sig-list")?;
    }
    Ok(())
}

/// Enrolled after the standard set for `enroll = "revocations"`: db grows to four
/// certificates, dbx revokes three of them.
pub const REVOCATIONS: [(&str, &str); 2] = [
    ("5-db", "db-revocations.auth"),
    ("6-dbx", "dbx-revocations.auth"),
];

/// QEMU arguments that hand `dir`'s enrolment files to the guest (and, with `refused`, the
/// updates it must refuse after them).
pub fn enroll_args(dir: &Path, extra: &[(&str, &str)]) -> Result<Vec<String>> {
    let mut files: Vec<(&str, &str)> = ENROLL.to_vec();
    files.extend(extra);
    let mut args = Vec::new();
    for (name, file) in files {
        let path: PathBuf = dir.join(file);
        if !path.is_file() {
            bail!(
                "{} is missing: make the keys with `cargo xtask varstore pki {}`",
                path.display(),
                dir.display()
            );
        }
        let path = std::path::absolute(&path)?;
        args.extend([
            "-fw_cfg".to_string(),
            format!("name=opt/catena/enroll/{name},file={}", path.display()),
        ]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_files_are_named_in_order_and_missing_ones_are_an_error() {
        let dir = std::env::temp_dir().join(format!("catena-enroll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            enroll_args(&dir, &[])
                .unwrap_err()
                .to_string()
                .contains("varstore pki")
        );
        for (_, f) in ENROLL.iter().chain(REFUSED.iter()) {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let a = enroll_args(&dir, &[]).unwrap();
        assert_eq!(a.len(), 8);
        assert!(a[1].starts_with("name=opt/catena/enroll/1-PK,file="));
        assert_eq!(enroll_args(&dir, &REFUSED).unwrap().len(), 14);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
