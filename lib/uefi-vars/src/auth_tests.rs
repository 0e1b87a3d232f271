//! Authenticated variables with vectors made by openssl and efitools
//! (`testdata/uefi-auth/gen.sh`), through the service as a caller would write them.
extern crate std;

use crate::siglist::{self, IMAGE_SECURITY_DATABASE};
use crate::{GLOBAL_VARIABLE, Limits, Vars, attr, auth, status};
use std::vec::Vec;
use varstore::Store;
use varstore::sim::SimFlash;

macro_rules! vector {
    ($f:literal) => {
        include_bytes!(concat!("../../../testdata/uefi-auth/", $f)).as_slice()
    };
}

const SB: u32 = attr::NON_VOLATILE
    | attr::BOOTSERVICE_ACCESS
    | attr::RUNTIME_ACCESS
    | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
const APPEND: u32 = SB | attr::APPEND_WRITE;

fn n(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn service() -> Vars<SimFlash> {
    let (store, _) = Store::open(SimFlash::new(65536, 8192)).unwrap();
    Vars::new(
        store,
        Limits {
            max_var_size: 16384,
            volatile_bytes: 4096,
        },
    )
}

fn set(v: &mut Vars<SimFlash>, name: &str, attrs: u32, data: &[u8]) -> Result<(), u64> {
    let g = if name == "PK" || name == "KEK" {
        GLOBAL_VARIABLE
    } else {
        IMAGE_SECURITY_DATABASE
    };
    v.set(&g, &n(name), attrs, data)
}

fn value(v: &Vars<SimFlash>, name: &str) -> Option<Vec<u8>> {
    let g = if name == "PK" || name == "KEK" {
        GLOBAL_VARIABLE
    } else {
        IMAGE_SECURITY_DATABASE
    };
    v.get(&g, &n(name)).ok().map(|x| x.data.clone())
}

fn mode(v: &Vars<SimFlash>) -> (u8, u8) {
    let f = |s: &str| v.get(&GLOBAL_VARIABLE, &n(s)).unwrap().data[0];
    (f("SetupMode"), f("SecureBoot"))
}

/// PK, KEK, db, dbx enrolled the usual way (each signed as efitools signs it).
fn enrolled() -> Vars<SimFlash> {
    let mut v = service();
    assert_eq!(mode(&v), (1, 0), "setup mode without a PK");
    set(&mut v, "PK", SB, vector!("PK.auth")).unwrap();
    assert_eq!(mode(&v), (0, 1), "user mode, Secure Boot on");
    set(&mut v, "KEK", SB, vector!("KEK.auth")).unwrap();
    set(&mut v, "db", SB, vector!("db.auth")).unwrap();
    set(&mut v, "dbx", SB, vector!("dbx.auth")).unwrap();
    v
}

#[test]
fn enrolment_stores_the_signature_lists_and_flips_secure_boot() {
    let v = enrolled();
    assert_eq!(value(&v, "PK").unwrap(), vector!("PK.esl"));
    assert_eq!(value(&v, "KEK").unwrap(), vector!("KEK.esl"));
    assert_eq!(value(&v, "db").unwrap(), vector!("db.esl"));
    assert_eq!(value(&v, "dbx").unwrap(), vector!("revoked.esl"));
    let pk = v.get(&GLOBAL_VARIABLE, &n("PK")).unwrap();
    assert_eq!(pk.attrs, SB);
    assert_eq!(
        &pk.time[..4],
        &[0xea, 0x07, 1, 2],
        "2026-01-02, the file's timestamp"
    );
}

#[test]
fn refused_updates_change_nothing() {
    let mut v = enrolled();
    let before = value(&v, "db");
    // Signed by a key nobody trusts.
    assert_eq!(
        set(&mut v, "db", SB, vector!("db-wrong-key.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    // A replayed older timestamp.
    assert_eq!(
        set(&mut v, "db", SB, vector!("db-older.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    // Unsigned: the header with no signature in it.
    let mut unsigned = vector!("db-newer.auth").to_vec();
    let len = u32::from_le_bytes(unsigned[16..20].try_into().unwrap()) as usize;
    unsigned.drain(16 + 24..16 + len);
    unsigned[16..20].copy_from_slice(&24u32.to_le_bytes());
    assert_eq!(
        set(&mut v, "db", SB, &unsigned),
        Err(status::SECURITY_VIOLATION)
    );
    // Not authenticated at all.
    assert_eq!(
        set(
            &mut v,
            "db",
            SB & !attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
            vector!("db2.esl")
        ),
        Err(status::SECURITY_VIOLATION)
    );
    assert_eq!(set(&mut v, "db", 0, &[]), Err(status::SECURITY_VIOLATION));
    // The signed value or timestamp changed after signing.
    let mut tampered = vector!("db-newer.auth").to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        set(&mut v, "db", SB, &tampered),
        Err(status::SECURITY_VIOLATION)
    );
    let mut later = vector!("db-newer.auth").to_vec();
    later[3] += 1;
    assert_eq!(
        set(&mut v, "db", SB, &later),
        Err(status::SECURITY_VIOLATION)
    );
    // Signed with the attributes of a replacement, sent as an append.
    assert_eq!(
        set(&mut v, "db", APPEND, vector!("db-newer.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    // KEK signed by KEK (only the PK may).
    assert_eq!(
        set(&mut v, "KEK", SB, vector!("db-newer.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    assert_eq!(value(&v, "db"), before);
}

#[test]
fn accepted_updates_replace_append_and_delete() {
    let mut v = enrolled();
    // An append with an older timestamp is fine; it adds db2 once.
    set(&mut v, "db", APPEND, vector!("db-append.auth")).unwrap();
    let both: Vec<u8> = [vector!("db.esl"), vector!("db2.esl")].concat();
    assert_eq!(value(&v, "db").unwrap(), both);
    set(&mut v, "db", APPEND, vector!("db-append.auth")).unwrap();
    assert_eq!(value(&v, "db").unwrap(), both, "nothing new to append");
    // The stored time is the later of the two: the 2026-01-01 append did not move it back.
    let t = v.get(&IMAGE_SECURITY_DATABASE, &n("db")).unwrap().time;
    assert_eq!(&t[..4], &[0xea, 0x07, 1, 2]);
    // A replacement, later, signed by KEK; then one signed by PK is also accepted.
    set(&mut v, "db", SB, vector!("db-newer.auth")).unwrap();
    assert_eq!(value(&v, "db").unwrap(), vector!("db2.esl"));
    // Same timestamp again: a replay.
    assert_eq!(
        set(&mut v, "db", SB, vector!("db-by-pk.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    // The PK deletes itself: setup mode again.
    set(&mut v, "PK", SB, vector!("PK-delete.auth")).unwrap();
    assert_eq!(mode(&v), (1, 0));
    assert!(value(&v, "PK").is_none());
}

#[test]
fn db_signed_by_the_pk_is_accepted() {
    let mut v = enrolled();
    set(&mut v, "db", SB, vector!("db-by-pk.auth")).unwrap();
    assert_eq!(value(&v, "db").unwrap(), vector!("db2.esl"));
}

#[test]
fn setup_mode_rules() {
    let mut v = service();
    // Without a PK, KEK and db are written unverified (as EDK2 does) ...
    set(&mut v, "db", SB, vector!("db-wrong-key.auth")).unwrap();
    // ... but the PK must be signed by itself.
    let mut not_self = vector!("PK.auth").to_vec();
    let len = u32::from_le_bytes(not_self[16..20].try_into().unwrap()) as usize;
    let payload_at = 16 + len;
    not_self.truncate(payload_at);
    not_self.extend_from_slice(vector!("db2.esl"));
    assert_eq!(
        set(&mut v, "PK", SB, &not_self),
        Err(status::SECURITY_VIOLATION)
    );
    // Deleting an absent PK.
    assert_eq!(
        set(&mut v, "PK", SB, vector!("PK-delete.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    assert_eq!(mode(&v), (1, 0));
}

#[test]
fn attributes_names_and_shapes() {
    let mut v = service();
    // Secure Boot variables have exactly NV|BS|RT|AT (and PK cannot be appended to).
    assert_eq!(
        set(&mut v, "PK", SB & !attr::RUNTIME_ACCESS, vector!("PK.auth")),
        Err(status::INVALID_PARAMETER)
    );
    assert_eq!(
        set(&mut v, "PK", APPEND, vector!("PK.auth")),
        Err(status::INVALID_PARAMETER)
    );
    // Private authenticated variables are not offered.
    assert_eq!(
        v.set(&[3; 16], &n("Mine"), SB, vector!("db.auth")),
        Err(status::SECURITY_VIOLATION)
    );
    // A PK of two certificates, or a KEK of hashes, is not a PK or a KEK.
    let two: Vec<u8> = [vector!("PK.esl"), vector!("db.esl")].concat();
    let a = auth::parse_auth2(vector!("PK.auth")).unwrap();
    let mut two_pk = vector!("PK.auth")[..vector!("PK.auth").len() - a.payload.len()].to_vec();
    two_pk.extend_from_slice(&two);
    assert_eq!(
        set(&mut v, "PK", SB, &two_pk),
        Err(status::INVALID_PARAMETER)
    );
    // Malformed signature lists.
    let mut bad = vector!("db.auth").to_vec();
    let l = bad.len();
    bad[l - vector!("db.esl").len() + 16] ^= 0x40;
    assert_eq!(set(&mut v, "db", SB, &bad), Err(status::INVALID_PARAMETER));
}

#[test]
fn the_authentication_header_is_checked() {
    let good = vector!("db.auth");
    assert!(auth::parse_auth2(good).is_ok());
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for (at, x) in [(20, 1u8), (22, 1), (24, 1), (7, 1), (8, 1), (12, 1)] {
        let mut b = good.to_vec();
        b[at] ^= x;
        cases.push(b);
    }
    let mut long = good.to_vec();
    long[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(long);
    cases.push(good[..39].to_vec());
    for c in &cases {
        assert!(auth::parse_auth2(c).is_err());
    }
    // Garbage for the signature.
    let sd = auth::parse_auth2(good).unwrap();
    assert!(auth::verify(&sd.cert[..sd.cert.len() / 2], b"x", &[]).is_err());
}

#[test]
fn signature_lists_are_parsed_with_every_size_checked() {
    let db = siglist::parse(vector!("db.esl")).unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(db[0].sig_type, siglist::CERT_X509);
    assert_eq!(db[0].entries.len(), 1);
    assert_eq!(siglist::encode(&db), vector!("db.esl"));
    assert!(siglist::parse(&[]).unwrap().is_empty());
    let mk = |t: [u8; 16], list: u32, header: u32, size: u32, body: usize| {
        let mut b = t.to_vec();
        b.extend_from_slice(&list.to_le_bytes());
        b.extend_from_slice(&header.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend(std::iter::repeat_n(0u8, body));
        b
    };
    let sha = siglist::CERT_SHA256;
    assert_eq!(
        siglist::parse(&mk(sha, 28 + 96, 0, 48, 96)).unwrap()[0]
            .entries
            .len(),
        2
    );
    for bad in [
        mk(sha, 27, 0, 48, 0),
        mk(sha, 28 + 96, 0, 48, 95),
        mk(sha, 28 + 96, 200, 48, 96),
        mk(sha, 28 + 96, 0, 0, 96),
        mk(sha, 28 + 96, 0, 16, 96),
        mk(sha, 28 + 95, 0, 48, 95),
        mk(sha, 28, 0, 48, 0),
        mk(sha, 28 + 80, 0, 40, 80),
        mk(sha, u32::MAX, 0, 48, 96),
        vec_of(20),
    ] {
        assert!(siglist::parse(&bad).is_err(), "{bad:x?}");
    }
}

fn vec_of(n: usize) -> Vec<u8> {
    std::vec![0; n]
}

#[test]
fn signed_attributes_in_a_content_info_are_verified_too() {
    // openssl's CMS signer: a ContentInfo wrapper and signed attributes, whose messageDigest
    // must be the data's: the signature covers the attributes, not the data itself.
    let mut v = enrolled();
    let mut changed = vector!("db-attrs.auth").to_vec();
    *changed.last_mut().unwrap() ^= 1;
    assert_eq!(
        set(&mut v, "db", SB, &changed),
        Err(status::SECURITY_VIOLATION)
    );
    set(&mut v, "db", SB, vector!("db-attrs.auth")).unwrap();
    assert_eq!(value(&v, "db").unwrap(), vector!("db2.esl"));
}
