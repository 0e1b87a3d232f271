use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/attest/");

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap()
}

fn unhex32(s: &[u8]) -> [u8; 32] {
    let s = std::str::from_utf8(s).unwrap().trim();
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn evidence() -> Evidence {
    Evidence {
        eventlog: file("eventlog.bin"),
        ima: file("ima.bin"),
        ak_pub: file("ak-pub.bin"),
        quote_msg: file("quote-msg.bin"),
        quote_sig: file("quote-sig.bin"),
        ek_pub: file("ek-pub.bin"),
        ek_cert: file("ek-cert.bin"),
        credential_secret: file("credential-secret.bin"),
    }
}

fn nonce() -> Vec<u8> {
    unhex32(&file("nonce.hex")).to_vec()
}

fn reference() -> Reference {
    Reference {
        firmware: Some(unhex32(&file("firmware.sha256"))),
        kernel: Some(unhex32(&file("kernel.sha256"))),
        bl33: None,
        initrd: Some(unhex32(&file("initrd.sha256"))),
        programs: programs(),
        cmdlines: vec!["loglevel=info".into()],
        require_secure_boot: false,
        secure_boot_vars: Some(not_enrolled()),
        ek_ca: vec![file("ca-root.der"), file("ca-issuer.der")],
        credential_secret: Some(file("registration-secret.bin")),
    }
}

/// The build's programs as the kernel measures them (`programs.txt`: path and SHA-256).
fn programs() -> Vec<(String, [u8; 32])> {
    String::from_utf8(file("programs.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let (n, d) = l.split_once(' ').unwrap();
            (n.to_string(), unhex32(d.as_bytes()))
        })
        .collect()
}

/// `full` enrols nothing: PK, KEK, db and dbx are measured empty.
fn not_enrolled() -> Vec<(String, Vec<u8>)> {
    ["PK", "KEK", "db", "dbx"]
        .iter()
        .map(|n| (n.to_string(), Vec::new()))
        .collect()
}

fn failed(v: &Verdict) -> Vec<String> {
    v.checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.what.clone())
        .collect()
}

#[test]
fn a_real_boot_s_evidence_is_trusted() {
    let v = verify(&evidence(), &nonce(), &reference());
    assert!(v.trusted(), "{:#?}", failed(&v));
    assert!(v.checks.len() > 20);
    assert_eq!(v.json()["verdict"], "trusted");
}

#[test]
fn a_changed_kernel_is_named() {
    let mut r = reference();
    r.kernel = Some([0x11; 32]);
    let v = verify(&evidence(), &nonce(), &r);
    assert_eq!(failed(&v), ["PCR8 EV_COMPACT_HASH linux (kernel)"]);
    assert!(v.lines().last().unwrap().contains("untrusted: PCR8"));
    // No reference at all is no better.
    r.kernel = None;
    assert!(!verify(&evidence(), &nonce(), &r).trusted());
}

#[test]
fn a_replayed_nonce_another_command_line_or_secure_boot_policy_fail() {
    let mut n = nonce();
    n[0] ^= 1;
    assert_eq!(failed(&verify(&evidence(), &n, &reference())), ["quote"]);
    let mut r = reference();
    r.cmdlines = vec!["loglevel=debug".into()];
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR1 EV_PLATFORM_CONFIG_FLAGS (command line)"]
    );
    let mut r = reference();
    r.require_secure_boot = true;
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR7 EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot"]
    );
}

#[test]
fn a_log_that_lies_does_not_replay_to_the_quote() {
    // The kernel event's SHA-256 digest rewritten to the reference's own value would hide a
    // changed kernel from a verifier that did not replay: the quote catches it.
    let e0 = evidence();
    let log = tcglog::parse(&e0.eventlog).unwrap();
    let k = log.events.iter().find(|e| e.pcr == 8).unwrap();
    let d = k.digests.iter().find(|(a, _)| *a == alg::SHA256).unwrap().1;
    let off = d.as_ptr() as usize - e0.eventlog.as_ptr() as usize;
    let mut e = evidence();
    e.eventlog[off] ^= 0xff;
    let f = failed(&verify(&e, &nonce(), &reference()));
    assert!(
        f.contains(&"PCRs 0-11 replayed from both logs".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(&"PCR8 EV_COMPACT_HASH linux (kernel)".to_string()),
        "{f:?}"
    );
}

#[test]
fn chain_milestones_out_of_order_are_refused() {
    let mut list = tcglog::ima::parse(&file("ima.bin")).unwrap();
    let pos = |l: &[tcglog::ima::Entry], s: &str| {
        l.iter()
            .position(|e| ima_buf(e).is_some_and(|(_, b)| b.starts_with(s.as_bytes())))
            .unwrap()
    };
    let (fin, ffa) = (
        pos(&list, "hyp state=finalised"),
        pos(&list, "ffa state=ready"),
    );
    list.swap(fin, ffa);
    let mut e = evidence();
    e.ima = tcglog::ima::encode(&list);
    let f = failed(&verify(&e, &nonce(), &reference()));
    assert!(
        f.contains(&"policy: the hyp finalised before FF-A came up".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(&"PCRs 0-11 replayed from both logs".to_string()),
        "{f:?}"
    );
}

#[test]
fn malformed_evidence_is_refused_without_a_panic() {
    let full = evidence();
    for cut in [0, 1, 10, 100] {
        let mut e = evidence();
        e.eventlog.truncate(cut.min(full.eventlog.len()));
        e.ima.truncate(cut.min(full.ima.len()));
        e.ak_pub.truncate(cut.min(full.ak_pub.len()));
        e.quote_msg.truncate(cut);
        e.quote_sig.truncate(cut.min(full.quote_sig.len()));
        assert!(
            !verify(&e, &nonce(), &reference()).trusted(),
            "cut at {cut}"
        );
    }
    let e = Evidence::default();
    assert!(!verify(&e, &[], &Reference::default()).trusted());
}

#[test]
fn an_ak_not_bound_to_a_genuine_ek_is_untrusted() {
    // Another CA (the issuer alone as root does not chain; an empty list has nothing).
    let mut r = reference();
    r.ek_ca = vec![file("ca-issuer.der"), file("ca-root.der")];
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["EK certificate"]
    );
    let mut r = reference();
    r.ek_ca.clear();
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["EK certificate"]
    );
    // An EK that is not the certificate's key.
    let mut e = evidence();
    let n = e.ek_pub.len();
    e.ek_pub[n - 10] ^= 1;
    assert_eq!(
        failed(&verify(&e, &nonce(), &reference())),
        ["EK public key"]
    );
    // No activation, or another secret: the AK's binding is unproven.
    let mut e = evidence();
    e.credential_secret.clear();
    assert_eq!(
        failed(&verify(&e, &nonce(), &reference())),
        ["AK bound to the EK (credential activation)"]
    );
    let mut r = reference();
    r.credential_secret = None;
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["AK bound to the EK (credential activation)"]
    );
    // A certificate whose signature was altered.
    let mut e = evidence();
    let n = e.ek_cert.len();
    e.ek_cert[n - 5] ^= 1;
    assert!(failed(&verify(&e, &nonce(), &reference())).contains(&"EK certificate".to_string()));
}

#[test]
fn a_secure_boot_database_other_than_the_reference_is_named() {
    // The reference says dbx revokes something; the machine's dbx is empty.
    let mut r = reference();
    let mut vars = not_enrolled();
    vars[3].1 = vec![0x26; 76];
    r.secure_boot_vars = Some(vars);
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR7 EV_EFI_VARIABLE_DRIVER_CONFIG dbx"]
    );
    // A variable the reference does not list.
    let mut r = reference();
    r.secure_boot_vars = Some(not_enrolled()[..3].to_vec());
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR7 EV_EFI_VARIABLE_DRIVER_CONFIG dbx"]
    );
}

#[test]
fn a_program_other_than_the_build_s_is_named() {
    let mut r = reference();
    r.programs[1].1[0] ^= 1;
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR10 program /bin/hello"]
    );
    // A program the reference does not know at all.
    let mut r = reference();
    r.programs.remove(2);
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR10 program /bin/probe"]
    );
    // The initramfs itself (PCR 9).
    let mut r = reference();
    r.initrd = Some([7; 32]);
    assert_eq!(
        failed(&verify(&evidence(), &nonce(), &r)),
        ["PCR9 EV_COMPACT_HASH initrd"]
    );
}
