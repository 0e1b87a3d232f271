extern crate std;

use super::*;
use sha2::{Digest as _, Sha256};
use std::format;
use std::vec::Vec;

/// A TPM with one SHA-256 bank of 24 PCRs that decodes commands by hand (from Part 3's
/// layouts, independently of tpm2-protocol) and can be told to misbehave.
#[derive(Default)]
struct FakeTpm {
    pcrs: [[u8; 32]; 24],
    started: bool,
    sent: Vec<Vec<u8>>,
    /// Replaces the response to the next command.
    next: Option<Vec<u8>>,
}

fn frame(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&tag.to_be_bytes());
    r.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    r.extend_from_slice(&rc.to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn pcr_read_body(counter: u32, alg: u16, bits: [u8; 3], digest: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&counter.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&alg.to_be_bytes());
    b.push(3);
    b.extend_from_slice(&bits);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&(digest.len() as u16).to_be_bytes());
    b.extend_from_slice(digest);
    b
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

impl FakeTpm {
    fn answer(&mut self, cmd: &[u8]) -> Vec<u8> {
        let cc = be32(&cmd[6..]);
        match cc {
            0x144 if self.started => frame(0x8001, RC_INITIALIZE, &[]),
            0x144 => {
                self.started = true;
                frame(0x8001, 0, &[])
            }
            0x143 => frame(0x8001, 0, &[]),
            // PCR_Read: count, alg, sizeofSelect, 3 bytes.
            0x17e => {
                let bits: [u8; 3] = cmd[17..20].try_into().unwrap();
                let i = (0..24)
                    .find(|&i| bits[i / 8] & (1 << (i % 8)) != 0)
                    .unwrap();
                frame(0x8001, 0, &pcr_read_body(7, 0x000b, bits, &self.pcrs[i]))
            }
            // PCR_Extend: handle, authSize, auth area, count, alg, digest.
            0x182 => {
                let pcr = be32(&cmd[10..]) as usize;
                let auth = be32(&cmd[14..]) as usize;
                let p = 18 + auth;
                assert_eq!(be32(&cmd[p..]), 1);
                assert_eq!(&cmd[p + 4..p + 6], &[0, 0x0b]);
                let d = &cmd[p + 6..p + 38];
                let mut h = Sha256::new();
                h.update(self.pcrs[pcr]);
                h.update(d);
                self.pcrs[pcr] = h.finalize().into();
                // parameterSize 0, then the password session's response (empty nonce,
                // continueSession, empty hmac).
                frame(0x8002, 0, &[0, 0, 0, 0, 0, 0, 1, 0, 0])
            }
            0x17b => {
                let n = u16::from_be_bytes([cmd[10], cmd[11]]) as usize;
                let mut b = (n as u16).to_be_bytes().to_vec();
                b.extend((0..n).map(|i| i as u8 ^ 0x5a));
                frame(0x8001, 0, &b)
            }
            _ => frame(0x8001, 0x143, &[]), // TPM_RC_COMMAND_CODE
        }
    }
}

impl Transport for FakeTpm {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        assert_eq!(be32(&cmd[2..]) as usize, cmd.len(), "command size field");
        self.sent.push(cmd.to_vec());
        let r = match self.next.take() {
            Some(r) => r,
            None => self.answer(cmd),
        };
        rsp.get_mut(..r.len())
            .ok_or("too long")?
            .copy_from_slice(&r);
        Ok(r.len())
    }
}

/// A fake whose next response is `r`.
fn replying(r: Vec<u8>) -> FakeTpm {
    FakeTpm {
        next: Some(r),
        ..FakeTpm::default()
    }
}

#[test]
fn startup_twice_is_already_started() {
    let mut t = Tpm::new(FakeTpm::default());
    assert_eq!(t.startup(), Ok(false));
    assert_eq!(t.startup(), Ok(true));
    assert_eq!(
        t.into_transport().sent[0],
        [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0]
    );
}

#[test]
fn an_extend_reads_back_as_the_hash_of_old_and_digest() {
    let mut t = Tpm::new(FakeTpm::default());
    let d: [u8; 32] = Sha256::digest(b"catena").into();
    let old = t.pcr_read(ALG_SHA256, 16).unwrap();
    t.pcr_extend_sha256(16, &d).unwrap();
    let new = t.pcr_read(ALG_SHA256, 16).unwrap();
    let mut h = Sha256::new();
    h.update(old.as_bytes());
    h.update(d);
    assert_eq!(new.as_bytes(), &h.finalize()[..]);
    // The extend's wire form, from Part 3 §22.2: sessions tag, PCR handle, one password
    // session (TPM_RS_PW, empty nonce, no attributes, empty password), one SHA-256 digest.
    let sent = &t.into_transport().sent[1];
    let mut want = std::vec![0x80, 0x02, 0, 0, 0, 65, 0, 0, 0x01, 0x82, 0, 0, 0, 16];
    want.extend_from_slice(&[0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0]);
    want.extend_from_slice(&[0, 0, 0, 1, 0, 0x0b]);
    want.extend_from_slice(&d);
    assert_eq!(sent, &want);
}

#[test]
fn a_pcr_read_must_answer_the_question_asked() {
    let bits = [0, 0, 1]; // PCR 16
    let cases: [(Vec<u8>, &str); 4] = [
        (
            frame(0x8001, 0, &pcr_read_body(1, 0x000b, [1, 0, 0], &[0; 32])),
            "another PCR selection than asked",
        ),
        (
            frame(0x8001, 0, &pcr_read_body(1, 0x000b, bits, &[0; 20])),
            "digest size is not the bank's",
        ),
        (
            frame(0x8001, 0, &pcr_read_body(1, 0x000b, bits, &[0; 32])[..20]),
            "body does not match the command",
        ),
        (
            std::vec![0x80, 0x01, 0, 0, 0, 99, 0, 0, 0, 0],
            "not a TPM response frame",
        ),
    ];
    for (rsp, why) in cases {
        let mut t = Tpm::new(replying(rsp));
        assert_eq!(t.pcr_read(ALG_SHA256, 16), Err(Error::Malformed(why)));
    }
}

#[test]
fn response_codes_come_back_by_name() {
    let mut t = Tpm::new(replying(frame(0x8001, 0x101, &[])));
    let e = t.self_test().unwrap_err();
    assert_eq!(e, Error::Rc(0x101));
    assert_eq!(format!("{e}"), "TPM_RC_FAILURE");
    assert_eq!(format!("{}", RcName(RC_INITIALIZE)), "TPM_RC_INITIALIZE");
    assert_eq!(format!("{}", RcName(0xdead_beef)), "0xdeadbeef");
}

#[test]
fn a_failed_backend_s_tpm_1_2_error_is_named() {
    // What QEMU's TIS answers once swtpm is gone.
    let mut t = Tpm::new(replying(std::vec![0, 0xc4, 0, 0, 0, 10, 0, 0, 0, 9]));
    let e = t.startup().unwrap_err();
    assert_eq!(e, Error::Legacy(9));
    assert!(format!("{e}").starts_with("TPM_FAIL"));
}

#[test]
fn get_random_refuses_more_than_asked() {
    let mut t = Tpm::new(FakeTpm::default());
    let mut out = [0u8; 8];
    assert_eq!(t.get_random(&mut out), Ok(8));
    assert_eq!(out[1], 1 ^ 0x5a);
    let mut b = 9u16.to_be_bytes().to_vec();
    b.extend([0; 9]);
    let mut t = Tpm::new(replying(frame(0x8001, 0, &b)));
    assert_eq!(
        t.get_random(&mut out),
        Err(Error::Malformed("more random bytes than asked"))
    );
}

#[test]
fn arguments_out_of_range_are_refused_before_sending() {
    let mut t = Tpm::new(FakeTpm::default());
    assert_eq!(
        t.pcr_read(ALG_SHA256, 24),
        Err(Error::Argument("PCR index above 23"))
    );
    assert_eq!(
        t.pcr_extend_sha256(24, &[0; 32]),
        Err(Error::Argument("PCR index above 23"))
    );
    assert!(t.into_transport().sent.is_empty());
}

#[test]
fn a_multi_bank_extend_carries_one_digest_per_bank() {
    // A canned success (the fake's PCR model is SHA-256 only).
    let mut t = Tpm::new(replying(frame(0x8002, 0, &[0, 0, 0, 0, 0, 0, 1, 0, 0])));
    let (d1, d256) = ([1u8; 20], [2u8; 32]);
    t.pcr_extend(0, &[(0x0004, &d1), (ALG_SHA256, &d256)])
        .unwrap();
    let sent = &t.into_transport().sent[0];
    // TPML_DIGEST_VALUES: count 2, then (alg, digest) per bank, after the session.
    let at = 14 + 13;
    assert_eq!(&sent[at..at + 6], &[0, 0, 0, 2, 0, 0x04]);
    assert_eq!(&sent[at + 6..at + 26], &d1);
    assert_eq!(&sent[at + 26..at + 28], &[0, 0x0b]);
    assert_eq!(&sent[at + 28..at + 60], &d256);
    let mut t = Tpm::new(FakeTpm::default());
    assert_eq!(
        t.pcr_extend(0, &[(ALG_SHA256, &d1)]),
        Err(Error::Argument("a digest of the wrong size for its bank"))
    );
    assert!(t.into_transport().sent.is_empty());
}

/// swtpm (a host prerequisite, as for every TPM scenario) on a unix socket: raw TPM commands,
/// started with TPM2_Startup done, ended when dropped.
struct Swtpm {
    child: std::process::Child,
    dir: std::path::PathBuf,
    sock: std::os::unix::net::UnixStream,
}

impl Swtpm {
    fn start(name: &str) -> Swtpm {
        let dir =
            std::env::temp_dir().join(format!("catena-tpm-core-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Swtpm::start_in(&dir)
    }

    fn start_in(dir: &std::path::Path) -> Swtpm {
        let dir = dir.to_path_buf();
        let path = dir.join("tpm.sock");
        let child = std::process::Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", path.display()))
            .spawn()
            .expect("swtpm (cargo xtask doctor --install) runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let sock = loop {
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&path) {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "swtpm did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Swtpm { child, dir, sock }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Transport for &mut Swtpm {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        use std::io::{Read, Write};
        self.sock.write_all(cmd).map_err(|_| "write")?;
        self.sock
            .read_exact(&mut rsp[..10])
            .map_err(|_| "read header")?;
        let n = be32(&rsp[2..]) as usize;
        if !(10..=rsp.len()).contains(&n) {
            return Err("response size");
        }
        self.sock
            .read_exact(&mut rsp[10..n])
            .map_err(|_| "read body")?;
        Ok(n)
    }
}

#[test]
fn a_real_tpm_makes_an_ak_and_a_quote_a_verifier_accepts() {
    let mut sw = Swtpm::start("quote");
    let mut tpm = Tpm::new(&mut sw);
    let ak = tpm.create_ak().unwrap();
    // The same template and seed: the same key.
    let again = tpm.create_ak().unwrap();
    assert_eq!(ak.public, again.public);
    tpm.flush(again.handle).unwrap();
    tpm.pcr_extend_sha256(3, &[7u8; 32]).unwrap();
    let nonce: Vec<u8> = (1..=32).collect();
    let pcrs = 0x0fff; // 0..=11
    let q = tpm.quote(ak.handle, &nonce, pcrs).unwrap();
    let info = attest::check_quote(&ak.public, &q.attest, &q.signature, &nonce).unwrap();
    assert_eq!(info.pcrs, pcrs);
    let values: Vec<[u8; 32]> = (0..12)
        .map(|i| {
            tpm.pcr_read(ALG_SHA256, i)
                .unwrap()
                .as_bytes()
                .try_into()
                .unwrap()
        })
        .collect();
    assert_eq!(info.pcr_digest, attest::pcr_digest(&values));
    // What a verifier must refuse: another nonce, a flipped byte, another key's quote.
    assert_eq!(
        attest::check_quote(&ak.public, &q.attest, &q.signature, &[0; 32]),
        Err(attest::Error::Nonce)
    );
    for i in [0, 10, q.attest.len() - 1] {
        let mut bad = q.attest.clone();
        bad[i] ^= 1;
        assert_eq!(
            attest::check_quote(&ak.public, &bad, &q.signature, &nonce),
            Err(attest::Error::BadSignature),
            "byte {i}"
        );
    }
    let mut other = Swtpm::start("other");
    let mut tpm2 = Tpm::new(&mut other);
    let ak2 = tpm2.create_ak().unwrap();
    assert_ne!(ak2.public, ak.public, "another TPM's endorsement seed");
    assert_eq!(
        attest::check_quote(&ak2.public, &q.attest, &q.signature, &nonce),
        Err(attest::Error::BadSignature)
    );
    tpm.flush(ak.handle).unwrap();
    assert!(matches!(
        tpm.quote(ak.handle, &nonce, pcrs),
        Err(Error::Rc(_))
    ));
}

/// A manufactured swtpm: `swtpm_setup --create-ek-cert` (a local CA in the temp folder) first,
/// so the RSA EK sits at its persistent handle with its certificate in NV.
fn manufactured(name: &str) -> Swtpm {
    let dir =
        std::env::temp_dir().join(format!("catena-tpm-core-ca-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("localca.conf"),
        format!("statedir = {d}/ca\nsigningkey = {d}/ca/signkey.pem\nissuercert = {d}/ca/issuercert.pem\ncertserial = {d}/ca/certserial\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("setup.conf"),
        format!("create_certs_tool = swtpm_localca\ncreate_certs_tool_config = {d}/localca.conf\ncreate_certs_tool_options = /etc/swtpm-localca.options\n"),
    )
    .unwrap();
    let st = std::process::Command::new("swtpm_setup")
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--overwrite",
            "--pcr-banks",
            "sha256",
        ])
        .arg("--tpmstate")
        .arg(dir.join("state"))
        .arg("--config")
        .arg(dir.join("setup.conf"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("swtpm_setup (swtpm-tools) runs");
    assert!(st.success());
    let mut sw = Swtpm::start_in(&dir.join("state"));
    sw.dir = dir;
    sw
}

#[test]
fn an_ak_proves_it_shares_a_tpm_with_the_ek() {
    let mut sw = manufactured("credential");
    let dir = sw.dir.clone();
    let mut tpm = Tpm::new(&mut sw);
    let ek = tpm.read_public(EK_RSA_HANDLE).unwrap();
    let cert = tpm.nv_read_all(EK_RSA_CERT_INDEX, 4096).unwrap();
    assert_eq!(cert.first(), Some(&0x30), "a DER certificate");
    assert!(matches!(
        tpm.nv_read_all(EK_RSA_CERT_INDEX, 16),
        Err(Error::Malformed(_))
    ));
    let ak = tpm.create_ak().unwrap();
    let name = attest::ak_key(&ak.public).unwrap().name;
    std::fs::write(dir.join("ek.pub"), &ek).unwrap();
    std::fs::write(dir.join("secret"), b"catena credential secret 32 byte").unwrap();
    let make = |name: &[u8], out: &str| {
        let hexname: std::string::String = name.iter().map(|b| format!("{b:02x}")).collect();
        let st = std::process::Command::new("tpm2_makecredential")
            .current_dir(&dir)
            .args([
                "-T", "none", "-u", "ek.pub", "-s", "secret", "-n", &hexname, "-o", out,
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("tpm2_makecredential runs");
        assert!(st.success());
        Credential::parse(&std::fs::read(dir.join(out)).unwrap()).unwrap()
    };
    let good = make(&name, "cred");
    let secret = tpm
        .activate_credential(ak.handle, EK_RSA_HANDLE, &good)
        .unwrap();
    assert_eq!(secret, b"catena credential secret 32 byte");
    // A credential for another key's name is refused: the AK must be the one it names.
    let mut other = name.clone();
    other[5] ^= 1;
    let bad = make(&other, "cred-other");
    assert!(matches!(
        tpm.activate_credential(ak.handle, EK_RSA_HANDLE, &bad),
        Err(Error::Rc(_))
    ));
    // The policy session of a failed activation does not leak: it works again.
    assert!(
        tpm.activate_credential(ak.handle, EK_RSA_HANDLE, &good)
            .is_ok()
    );
}

#[test]
fn credential_files_are_read_with_every_size_checked() {
    let mut f = std::vec![0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1];
    f.extend_from_slice(&[0, 3, 1, 2, 3, 0, 2, 9, 9]);
    let c = Credential::parse(&f).unwrap();
    assert_eq!(
        (c.blob.as_slice(), c.secret.as_slice()),
        (&[1, 2, 3][..], &[9, 9][..])
    );
    for cut in 0..f.len() {
        assert!(Credential::parse(&f[..cut]).is_err(), "cut {cut}");
    }
    let mut long = f.clone();
    long.push(0);
    assert!(Credential::parse(&long).is_err());
    let mut v2 = f.clone();
    v2[7] = 2;
    assert!(Credential::parse(&v2).is_err());
    let mut huge = std::vec![0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1, 0xff, 0xff];
    huge.extend(std::iter::repeat_n(0, 70000));
    assert!(Credential::parse(&huge).is_err());
}
