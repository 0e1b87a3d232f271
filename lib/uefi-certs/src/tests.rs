//! The loader against variables built from the openssl/efitools vectors.
extern crate std;

use super::*;
use std::collections::BTreeMap;
use std::vec;

macro_rules! esl {
    ($f:literal) => {
        include_bytes!(concat!("../../../testdata/uefi-auth/", $f)).as_slice()
    };
}

/// The DER certificate in a one-certificate signature list.
fn der(esl: &[u8]) -> Vec<u8> {
    siglist::parse(esl).unwrap()[0].entries[0].data.to_vec()
}

/// A signature list of one type from entries.
fn list(t: [u8; 16], entries: &[&[u8]]) -> Vec<u8> {
    let l = siglist::List {
        sig_type: t,
        header: &[],
        entries: entries
            .iter()
            .map(|d| siglist::Entry {
                owner: [7; 16],
                data: d,
            })
            .collect(),
    };
    siglist::encode(&[l])
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

#[derive(Default)]
struct Vars(BTreeMap<&'static str, Result<Vec<u8>, String>>);

impl Source for Vars {
    fn get(&mut self, _: &[u8; 16], name: &str) -> Result<Option<Vec<u8>>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v.clone())),
            Some(Err(e)) => Err(e.clone()),
        }
    }
}

fn subjects(keys: &[Key]) -> Vec<&str> {
    keys.iter().map(|k| k.subject.as_str()).collect()
}

#[test]
fn db_fills_platform_and_dbx_revokes_by_certificate_tbs_and_binary_hash() {
    let (db, db2, wrong, revoked) = (
        der(esl!("db.esl")),
        der(esl!("db2.esl")),
        der(esl!("wrong.esl")),
        der(esl!("revoked.esl")),
    );
    let wrong_tbs = {
        let c = Certificate::from_der(&wrong).unwrap();
        sha(&c.tbs_certificate.to_der().unwrap())
    };
    let mut tbs_entry = wrong_tbs.clone();
    tbs_entry.extend_from_slice(&[0; 16]); // TimeOfRevocation
    let mut v = Vars::default();
    v.0.insert(
        "db",
        Ok([
            esl!("db.esl"),
            esl!("db2.esl"),
            esl!("wrong.esl"),
            esl!("revoked.esl"),
        ]
        .concat()),
    );
    v.0.insert(
        "dbx",
        Ok([
            list(CERT_X509, &[&revoked]),
            list(CERT_SHA256, &[&sha(&db2)]),
            list(CERT_X509_SHA256, &[&tbs_entry]),
        ]
        .concat()),
    );
    let mut r = Keyrings::default();
    let ev = load(&mut v, false, false, &mut r);
    assert_eq!(subjects(&r.platform), ["CN=Catena test db"]);
    assert_eq!(r.platform[0].source, "db");
    assert_eq!(r.platform[0].fpr.as_slice(), sha(&db).as_slice());
    assert_eq!(r.blacklist.len(), 3);
    let revocations: Vec<(&str, Revocation)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Revoked(_, k, why) => Some((k.subject.as_str(), *why)),
            _ => None,
        })
        .collect();
    assert_eq!(
        revocations,
        [
            ("CN=Catena test db2", Revocation::DbxBin),
            ("CN=Catena test wrong", Revocation::DbxTbs),
            ("CN=Catena test revoked", Revocation::DbxCert),
        ]
    );
    // db first, then dbx, then (Secure Boot off) nothing more.
    assert!(matches!(ev.first(), Some(Event::Added(".platform", _))));
    assert_eq!(ev.last(), Some(&Event::NoSecureBoot));
}

#[test]
fn mok_lists_only_with_secure_boot_and_to_machine_only_when_trusted() {
    let kek = der(esl!("KEK.esl"));
    let mut v = Vars::default();
    v.0.insert("MokListRT", Ok(esl!("KEK.esl").to_vec()));
    let mut r = Keyrings::default();
    load(&mut v, false, false, &mut r);
    assert!(r.platform.is_empty() && r.machine.is_empty());
    let mut r = Keyrings::default();
    load(&mut v, true, false, &mut r);
    assert_eq!(subjects(&r.platform), ["CN=Catena test KEK"]);
    let mut r = Keyrings::default();
    load(&mut v, true, true, &mut r);
    assert_eq!(subjects(&r.machine), ["CN=Catena test KEK"]);
    assert!(r.platform.is_empty());
    // MokListXRT revokes before MokListRT is read: refused at the door.
    v.0.insert("MokListXRT", Ok(list(CERT_SHA256, &[&sha(&kek)])));
    let mut r = Keyrings::default();
    let ev = load(&mut v, true, true, &mut r);
    assert!(r.machine.is_empty());
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Revoked(".machine", _, Revocation::DbxBin)))
    );
}

#[test]
fn mok_ignore_db_skips_db_but_not_dbx() {
    let mut v = Vars::default();
    v.0.insert("MokIgnoreDB", Ok(vec![1]));
    v.0.insert("db", Ok(esl!("db.esl").to_vec()));
    v.0.insert("dbx", Ok(list(CERT_SHA256, &[&[9; 32]])));
    let mut r = Keyrings::default();
    let ev = load(&mut v, false, false, &mut r);
    assert!(r.platform.is_empty());
    assert_eq!(ev[0], Event::IgnoreDb);
    assert_eq!(r.blacklist.bin.len(), 1);
}

#[test]
fn bad_input_is_reported_and_the_rest_still_loads() {
    let mut v = Vars::default();
    // A db whose second list is cut short: Linux's "Couldn't parse db signatures".
    let mut db = [esl!("db.esl"), esl!("db2.esl")].concat();
    db.truncate(db.len() - 5);
    v.0.insert("db", Ok(db));
    // A dbx whose X.509 entry is not a certificate, beside a good hash.
    v.0.insert(
        "dbx",
        Ok([
            list(CERT_X509, &[b"not a certificate"]),
            list(CERT_SHA256, &[&[1; 32]]),
        ]
        .concat()),
    );
    v.0.insert("MokListRT", Err("size probe answered success".into()));
    let mut r = Keyrings::default();
    let ev = load(&mut v, true, false, &mut r);
    assert!(ev.iter().any(|e| matches!(e, Event::Unparsable("db", _))));
    assert!(ev.contains(&Event::BadCertificate("dbx")));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::ReadError("MokListRT", _)))
    );
    assert!(r.platform.is_empty(), "nothing from the unparsable db");
    assert_eq!(r.blacklist.bin.len(), 1);
    // An empty list is not a list (Linux rejects it too).
    let mut v = Vars::default();
    let mut empty = list(CERT_SHA256, &[&[1; 32]]);
    empty[16..20].copy_from_slice(&28u32.to_le_bytes());
    empty.truncate(28);
    v.0.insert("dbx", Ok(empty));
    let ev = load(&mut v, false, false, &mut Keyrings::default());
    assert!(ev.iter().any(|e| matches!(e, Event::Unparsable("dbx", _))));
}

#[test]
fn a_hundred_certificates_and_four_hundred_hashes() {
    // Certificates made distinct by their serial (the loader does not verify signatures, as
    // Linux's platform keyring does not).
    let base = der(esl!("db.esl"));
    let c = Certificate::from_der(&base).unwrap();
    let serial = c.tbs_certificate.serial_number.as_bytes().to_vec();
    let at = base
        .windows(serial.len())
        .position(|w| w == serial.as_slice())
        .unwrap();
    let certs: Vec<Vec<u8>> = (0..100u8)
        .map(|i| {
            let mut d = base.clone();
            d[at + serial.len() - 1] = i;
            d
        })
        .collect();
    let db: Vec<u8> = certs.iter().flat_map(|c| list(CERT_X509, &[c])).collect();
    let hashes: Vec<[u8; 32]> = (0..400u32)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            h
        })
        .collect();
    let refs: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
    let mut v = Vars::default();
    v.0.insert("db", Ok(db));
    v.0.insert("dbx", Ok(list(CERT_SHA256, &refs)));
    let mut r = Keyrings::default();
    load(&mut v, false, false, &mut r);
    assert_eq!(r.platform.len(), 100);
    assert_eq!(r.blacklist.bin.len(), 400);
}
