//! Linux's `load_uefi_certs()` (security/integrity/platform_certs/load_uefi.c and
//! keyring_handler.c) as pure logic: which UEFI variables are read in which order, what each
//! signature type in them becomes, and the keyrings that result — `.platform`, `.machine` and
//! `.blacklist` (hashes named as Linux names them, `bin:<sha256>` and `tbs:<sha256>`, and
//! revoked certificates).
//!
//! Owns: the order (MokIgnoreDB → db → dbx → [only with Secure Boot] MokListXRT → MokListRT),
//! the handlers, the revocation checks (a key whose certificate is listed in dbx, or whose
//! TBS or whole-certificate SHA-256 is, is refused; one revoked after it was added is taken
//! out), and every check on the outside input (signature lists through
//! `uefi_vars::siglist`, certificates through `x509-cert`). Must not: reach the variables
//! itself — a [`Source`] does (the kernel's efivar driver, or a map in tests).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use uefi_vars::guid;
use uefi_vars::siglist::{self, CERT_SHA256, CERT_X509, CERT_X509_SHA256, IMAGE_SECURITY_DATABASE};
use x509_cert::Certificate;

/// EFI_SHIM_LOCK_GUID: shim's MOK variables.
pub const SHIM_LOCK: [u8; 16] = guid("605dab50-e046-4300-abb6-3dd810dd8b23");

/// A SHA-256 digest.
pub type Digest256 = [u8; 32];

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where the variables come from.
pub trait Source {
    /// The variable's value; `Ok(None)` when it does not exist (quiet); `Err` names what went
    /// wrong reading it (a size probe that did not answer BUFFER_TOO_SMALL, a transport error).
    fn get(&mut self, guid: &[u8; 16], name: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A key in a keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER certificate (its "bin:" hash).
    pub fpr: Digest256,
    /// SHA-256 of its TBSCertificate (its "tbs:" hash).
    pub tbs: Digest256,
    /// The variable it came from.
    pub source: &'static str,
    /// The DER certificate (what IMA measures for a key).
    pub der: Vec<u8>,
}

/// Why a key is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The certificate itself is in dbx (EFI_CERT_X509 entry).
    DbxCert,
    /// Its TBS hash is (EFI_CERT_X509_SHA256).
    DbxTbs,
    /// Its whole-certificate hash is (EFI_CERT_SHA256).
    DbxBin,
}

impl Revocation {
    /// The name events use.
    pub fn name(self) -> &'static str {
        match self {
            Revocation::DbxCert => "dbx-cert",
            Revocation::DbxTbs => "dbx-tbs",
            Revocation::DbxBin => "dbx-bin",
        }
    }
}

/// What happened, in order, for the kernel to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A key went into a keyring.
    Added(&'static str, Key),
    /// A key was refused (or taken out) as revoked.
    Revoked(&'static str, Key, Revocation),
    /// A variable's signature lists did not parse ("Couldn't parse db signatures"): skipped.
    Unparsable(&'static str, &'static str),
    /// An X.509 entry that is not a certificate: skipped.
    BadCertificate(&'static str),
    /// Reading a variable failed (its name, why): skipped.
    ReadError(&'static str, String),
    /// MokIgnoreDB exists: db not read.
    IgnoreDb,
    /// Secure Boot is off: the MOK lists are not trusted and not read.
    NoSecureBoot,
}

/// `.blacklist`.
#[derive(Clone, Debug, Default)]
pub struct Blacklist {
    /// `bin:` entries: SHA-256 of whole certificates (or binaries).
    pub bin: BTreeSet<Digest256>,
    /// `tbs:` entries: SHA-256 of TBSCertificates.
    pub tbs: BTreeSet<Digest256>,
    /// Revocation certificates, by their DER's SHA-256.
    pub certs: BTreeSet<Digest256>,
}

impl Blacklist {
    /// Its size: hashes and revocation certificates.
    pub fn len(&self) -> usize {
        self.bin.len() + self.tbs.len() + self.certs.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why `k` is revoked, if it is (each lookup logarithmic: loading stays linear in the
    /// number of entries, give or take the log).
    pub fn revokes(&self, k: &Key) -> Option<Revocation> {
        if self.certs.contains(&k.fpr) {
            Some(Revocation::DbxCert)
        } else if self.tbs.contains(&k.tbs) {
            Some(Revocation::DbxTbs)
        } else if self.bin.contains(&k.fpr) {
            Some(Revocation::DbxBin)
        } else {
            None
        }
    }
}

/// The keyrings.
#[derive(Clone, Debug, Default)]
pub struct Keyrings {
    /// `.platform`: db (and MokListRT without trust).
    pub platform: Vec<Key>,
    /// `.machine`: MokListRT when MokListTrustedRT says so.
    pub machine: Vec<Key>,
    /// `.blacklist`.
    pub blacklist: Blacklist,
}

impl Keyrings {
    /// Takes out of `.platform` and `.machine` every key the blacklist now revokes.
    fn sweep(&mut self, out: &mut Vec<Event>) {
        let bl = &self.blacklist;
        for (name, ring) in [
            (".platform", &mut self.platform),
            (".machine", &mut self.machine),
        ] {
            ring.retain(|k| match bl.revokes(k) {
                Some(r) => {
                    out.push(Event::Revoked(name, k.clone(), r));
                    false
                }
                None => true,
            });
        }
    }
}

/// A key from a DER certificate (`None`: not a certificate).
pub fn key_of(der_bytes: &[u8], source: &'static str) -> Option<Key> {
    let c = Certificate::from_der(der_bytes).ok()?;
    let tbs = c.tbs_certificate.to_der().ok()?;
    Some(Key {
        subject: c.tbs_certificate.subject.to_string(),
        issuer: c.tbs_certificate.issuer.to_string(),
        serial: hex(c.tbs_certificate.serial_number.as_bytes()),
        fpr: Sha256::digest(der_bytes).into(),
        tbs: Sha256::digest(&tbs).into(),
        source,
        der: der_bytes.to_vec(),
    })
}

/// Which handler a variable's entries go to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// X509 → `.platform`.
    Db,
    /// X509_SHA256 → tbs, SHA256 → bin, X509 → revocation.
    Dbx,
    /// X509 → `.machine` or `.platform`.
    Mok { trusted: bool },
}

fn apply(rings: &mut Keyrings, var: &'static str, value: &[u8], h: Handler, out: &mut Vec<Event>) {
    let lists = match siglist::parse(value) {
        Ok(l) => l,
        Err(why) => {
            out.push(Event::Unparsable(var, why));
            return;
        }
    };
    for l in &lists {
        for e in &l.entries {
            match (h, l.sig_type) {
                (Handler::Db | Handler::Mok { .. }, CERT_X509) => {
                    let Some(k) = key_of(e.data, var) else {
                        out.push(Event::BadCertificate(var));
                        continue;
                    };
                    let name = if h == (Handler::Mok { trusted: true }) {
                        ".machine"
                    } else {
                        ".platform"
                    };
                    if let Some(r) = rings.blacklist.revokes(&k) {
                        out.push(Event::Revoked(name, k, r));
                        continue;
                    }
                    let ring = if name == ".machine" {
                        &mut rings.machine
                    } else {
                        &mut rings.platform
                    };
                    // A certificate listed twice is one key.
                    if ring.iter().any(|x| x.fpr == k.fpr) {
                        continue;
                    }
                    ring.push(k.clone());
                    out.push(Event::Added(name, k));
                }
                (Handler::Dbx, CERT_X509_SHA256) => {
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&e.data[..32]);
                    rings.blacklist.tbs.insert(d);
                }
                (Handler::Dbx, CERT_SHA256) => {
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&e.data[..32]);
                    rings.blacklist.bin.insert(d);
                }
                (Handler::Dbx, CERT_X509) => match key_of(e.data, var) {
                    Some(k) => {
                        rings.blacklist.certs.insert(k.fpr);
                    }
                    None => out.push(Event::BadCertificate(var)),
                },
                // Types without a handler are skipped, as in Linux.
                _ => {}
            }
        }
    }
    if h == Handler::Dbx {
        rings.sweep(out);
    }
}

fn read(
    src: &mut dyn Source,
    guid: &[u8; 16],
    name: &'static str,
    out: &mut Vec<Event>,
) -> Option<Vec<u8>> {
    match src.get(guid, name) {
        Ok(v) => v,
        Err(why) => {
            out.push(Event::ReadError(name, why));
            None
        }
    }
}

/// `load_uefi_certs()`: reads the variables in Linux's order into `rings`; the events in
/// order. `secure_boot` gates the MOK lists; `mok_trusted` (MokListTrustedRT, which Linux reads
/// only from the MOK config table) sends MokListRT to `.machine`.
pub fn load(
    src: &mut dyn Source,
    secure_boot: bool,
    mok_trusted: bool,
    rings: &mut Keyrings,
) -> Vec<Event> {
    let mut out = Vec::new();
    if read(src, &SHIM_LOCK, "MokIgnoreDB", &mut out).is_some() {
        out.push(Event::IgnoreDb);
    } else if let Some(db) = read(src, &IMAGE_SECURITY_DATABASE, "db", &mut out) {
        apply(rings, "db", &db, Handler::Db, &mut out);
    }
    if let Some(dbx) = read(src, &IMAGE_SECURITY_DATABASE, "dbx", &mut out) {
        apply(rings, "dbx", &dbx, Handler::Dbx, &mut out);
    }
    if !secure_boot {
        out.push(Event::NoSecureBoot);
        return out;
    }
    if let Some(x) = read(src, &SHIM_LOCK, "MokListXRT", &mut out) {
        apply(rings, "MokListXRT", &x, Handler::Dbx, &mut out);
    }
    if let Some(m) = read(src, &SHIM_LOCK, "MokListRT", &mut out) {
        apply(
            rings,
            "MokListRT",
            &m,
            Handler::Mok {
                trusted: mok_trusted,
            },
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests;
