//! EFI_VARIABLE_AUTHENTICATION_2 blobs and signature lists from an untrusted caller: the
//! header parse, the PKCS#7 verification against a trusted certificate and the signature-list
//! parse never panic, and nothing the fuzzer makes verifies (the signed bytes name a GUID no
//! real vector was signed for: a pass would be a forgery).
#![no_main]
use libfuzzer_sys::fuzz_target;
use uefi_vars::{auth, siglist};

const PK_ESL: &[u8] = include_bytes!("../../testdata/uefi-auth/PK.esl");

fuzz_target!(|data: &[u8]| {
    let _ = siglist::parse(data);
    let Ok(a) = auth::parse_auth2(data) else {
        return;
    };
    let lists = siglist::parse(PK_ESL).expect("the PK vector parses");
    let trusted = auth::certificates(&siglist::x509_certs(&lists));
    let signed = auth::signed_bytes(&[b'P', 0, b'K', 0, 0, 0], &[0; 16], 0x27, &a.time, a.payload);
    assert!(auth::verify(a.cert, &signed, &trusted).is_err(), "a forged signature verified");
    if let Ok(l) = siglist::parse(a.payload) {
        let _ = siglist::encode(&l);
    }
});
