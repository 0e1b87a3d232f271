//! Evidence as a hostile guest could export it: the AK, the quote, its signature, the event
//! log and the measurement list, cut from the fuzzer's bytes (four u16 lengths first). The
//! quote check and the verifier must refuse or judge, never panic; a verdict on bytes that
//! were never signed by a TPM can never be "trusted". The same bytes as a verifier's answer
//! to the agent (`attest::wire`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The agent's reading of a verifier's answers and of its address.
    let text = String::from_utf8_lossy(data);
    for key in ["nonce", "credential", "verdict"] {
        if let Some(v) = attest::wire::json_str(&text, key) {
            let _ = attest::wire::unhex(v);
        }
    }
    let _ = attest::wire::parse_server(&text);
    if data.len() < 8 {
        return;
    }
    let mut lens = [0usize; 4];
    for (i, l) in lens.iter_mut().enumerate() {
        *l = usize::from(u16::from_le_bytes([data[2 * i], data[2 * i + 1]]));
    }
    let mut rest = &data[8..];
    let mut take = |n: usize| {
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        rest = b;
        a.to_vec()
    };
    let e = verifier::Evidence {
        ak_pub: take(lens[0]),
        quote_msg: take(lens[1]),
        quote_sig: take(lens[2]),
        eventlog: take(lens[3]),
        ek_pub: Vec::new(),
        ek_cert: take(lens[3] / 2),
        credential_secret: Vec::new(),
        ima: rest.to_vec(),
    };
    let _ = attest::check_quote(&e.ak_pub, &e.quote_msg, &e.quote_sig, &[1; 32]);
    let v = verifier::verify(&e, &[1; 32], &verifier::Reference::default());
    assert!(!v.trusted(), "no reference values: never trusted");
});
