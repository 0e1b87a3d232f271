//! Checking a TPM quote, as a verifier must: nothing in it is trusted until checked.
//!
//! - the AK's public area (TPM2B_PUBLIC): an ECC NIST P-256 signing key with a valid point;
//! - the TPMS_ATTEST: TPM_GENERATED_VALUE, a quote (TPM_ST_ATTEST_QUOTE), over the
//!   verifier's nonce (extraData), signed by that AK (qualifiedSigner = the AK's qualified
//!   name as a primary key of the endorsement hierarchy);
//! - the TPMT_SIGNATURE: ECDSA with SHA-256 over the TPMS_ATTEST bytes (Part 1 §18.4);
//! - the PCRs: the selection quoted and the digest of their values (SHA-256 over the
//!   concatenated values in selection order, Part 3 §18.4), which [`pcr_digest`] recomputes
//!   from values the verifier replayed.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};
use tpm2_protocol::TpmUnmarshal;
use tpm2_protocol::data::{
    Tpm2bPublic, TpmAlgId, TpmEccCurve, TpmSt, TpmsAttest, TpmtSignature, TpmuAttest, TpmuPublicId,
    TpmuPublicParms, TpmuSignature,
};

/// Why a quote is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The AK's public area does not parse, or is not an ECC P-256 key.
    AkPublic(&'static str),
    /// The attestation does not parse or is not a quote from a TPM.
    Attest(&'static str),
    /// The signature does not parse or is not ECDSA/SHA-256.
    SignatureFormat(&'static str),
    /// The signature does not verify with the AK.
    BadSignature,
    /// The quote is over another nonce (a replay, or another verifier's).
    Nonce,
    /// The quote was signed by another key than this AK.
    Signer,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::AkPublic(w) => write!(f, "AK public area: {w}"),
            Error::Attest(w) => write!(f, "attestation: {w}"),
            Error::SignatureFormat(w) => write!(f, "signature: {w}"),
            Error::BadSignature => write!(f, "the signature does not verify with the AK"),
            Error::Nonce => write!(f, "the quote is not over the verifier's nonce"),
            Error::Signer => write!(f, "the quote names another signer than the AK"),
        }
    }
}

/// An AK, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AkKey {
    /// SEC1 uncompressed point (0x04 || x || y).
    pub point: Vec<u8>,
    /// The TPM name: nameAlg (SHA-256) || SHA-256(TPMT_PUBLIC).
    pub name: Vec<u8>,
    /// Its qualified name as a primary key of the endorsement hierarchy (what a quote names
    /// as its signer): nameAlg || SHA-256(TPM_RH_ENDORSEMENT || name) (Part 1 §16).
    pub qualified_name: Vec<u8>,
}

/// Reads a TPM2B_PUBLIC that must be an ECC P-256 signing key.
pub fn ak_key(tpm2b_public: &[u8]) -> Result<AkKey, Error> {
    let (p, rest) =
        Tpm2bPublic::unmarshal(tpm2b_public).map_err(|_| Error::AkPublic("does not parse"))?;
    if !rest.is_empty() {
        return Err(Error::AkPublic("trailing bytes"));
    }
    let t = &p.inner;
    if t.object_type != TpmAlgId::Ecc || t.name_alg != TpmAlgId::Sha256 {
        return Err(Error::AkPublic("not an ECC key with SHA-256 names"));
    }
    let TpmuPublicParms::Ecc(parms) = &t.parameters else {
        return Err(Error::AkPublic("no ECC parameters"));
    };
    if parms.curve_id != TpmEccCurve::NistP256 {
        return Err(Error::AkPublic("not NIST P-256"));
    }
    let TpmuPublicId::Ecc(pt) = &t.unique else {
        return Err(Error::AkPublic("no ECC point"));
    };
    if pt.x.len() != 32 || pt.y.len() != 32 {
        return Err(Error::AkPublic("point coordinates are not 32 bytes"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&pt.x);
    point.extend_from_slice(&pt.y);
    VerifyingKey::from_sec1_bytes(&point).map_err(|_| Error::AkPublic("point not on the curve"))?;
    let body = &tpm2b_public[2..];
    let mut name = Vec::with_capacity(34);
    name.extend_from_slice(&(TpmAlgId::Sha256 as u16).to_be_bytes());
    name.extend_from_slice(&Sha256::digest(body));
    let mut qualified_name = Vec::with_capacity(34);
    qualified_name.extend_from_slice(&(TpmAlgId::Sha256 as u16).to_be_bytes());
    let mut h = Sha256::new();
    h.update(0x4000_000bu32.to_be_bytes());
    h.update(&name);
    qualified_name.extend_from_slice(&h.finalize());
    Ok(AkKey {
        point,
        name,
        qualified_name,
    })
}

/// The RSA modulus of an EK's public area (TPM2B_PUBLIC of an RSA key), to compare with its
/// certificate's.
pub fn rsa_modulus(tpm2b_public: &[u8]) -> Result<Vec<u8>, Error> {
    let (p, rest) =
        Tpm2bPublic::unmarshal(tpm2b_public).map_err(|_| Error::AkPublic("EK does not parse"))?;
    if !rest.is_empty() || p.inner.object_type != TpmAlgId::Rsa {
        return Err(Error::AkPublic("EK is not an RSA key"));
    }
    let TpmuPublicId::Rsa(n) = &p.inner.unique else {
        return Err(Error::AkPublic("EK has no modulus"));
    };
    Ok(n.to_vec())
}

/// What a checked quote says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteInfo {
    /// The SHA-256 bank's PCRs quoted, a bit per PCR (other banks are refused).
    pub pcrs: u32,
    /// The digest of their values.
    pub pcr_digest: Vec<u8>,
    /// The TPM's clock (ms) and reset count, as the verifier may log them.
    pub clock: u64,
    /// TPM resets since manufacture.
    pub reset_count: u32,
}

/// Checks a quote: `attest` (TPMS_ATTEST) signed (`signature`, TPMT_SIGNATURE) by the AK
/// (`ak_public`, TPM2B_PUBLIC) over `nonce`.
pub fn check_quote(
    ak_public: &[u8],
    attest: &[u8],
    signature: &[u8],
    nonce: &[u8],
) -> Result<QuoteInfo, Error> {
    let ak = ak_key(ak_public)?;
    let (sig, rest) = TpmtSignature::unmarshal(signature)
        .map_err(|_| Error::SignatureFormat("does not parse"))?;
    if !rest.is_empty() {
        return Err(Error::SignatureFormat("trailing bytes"));
    }
    let TpmuSignature::Ecdsa(ecc) = &sig.signature else {
        return Err(Error::SignatureFormat("not ECDSA"));
    };
    if ecc.hash != TpmAlgId::Sha256 || ecc.signature_r.len() > 32 || ecc.signature_s.len() > 32 {
        return Err(Error::SignatureFormat("not ECDSA P-256 with SHA-256"));
    }
    let mut rs = [0u8; 64];
    rs[32 - ecc.signature_r.len()..32].copy_from_slice(&ecc.signature_r);
    rs[64 - ecc.signature_s.len()..].copy_from_slice(&ecc.signature_s);
    let sig =
        Signature::from_slice(&rs).map_err(|_| Error::SignatureFormat("r or s out of range"))?;
    let key = VerifyingKey::from_sec1_bytes(&ak.point).map_err(|_| Error::AkPublic("point"))?;
    // The signature first: nothing in an unsigned attestation is worth reading.
    key.verify(attest, &sig).map_err(|_| Error::BadSignature)?;
    let (a, rest) = TpmsAttest::unmarshal(attest).map_err(|_| Error::Attest("does not parse"))?;
    if !rest.is_empty() {
        return Err(Error::Attest("trailing bytes"));
    }
    if attest.get(..4) != Some(&[0xff, 0x54, 0x43, 0x47][..]) {
        return Err(Error::Attest("not TPM_GENERATED_VALUE"));
    }
    if a.attest_type != TpmSt::AttestQuote {
        return Err(Error::Attest("not a quote"));
    }
    if &a.extra_data[..] != nonce {
        return Err(Error::Nonce);
    }
    if a.qualified_signer[..] != ak.qualified_name[..] {
        return Err(Error::Signer);
    }
    let TpmuAttest::Quote(q) = &a.attested else {
        return Err(Error::Attest("no quote information"));
    };
    let mut pcrs = 0u32;
    for s in q.pcr_select.iter() {
        let bits: &[u8] = &s.pcr_select;
        if bits.iter().all(|b| *b == 0) {
            continue;
        }
        if s.hash != TpmAlgId::Sha256 {
            return Err(Error::Attest("a bank other than SHA-256 is quoted"));
        }
        for (i, b) in bits.iter().enumerate().take(3) {
            pcrs |= u32::from(*b) << (8 * i);
        }
    }
    Ok(QuoteInfo {
        pcrs,
        pcr_digest: q.pcr_digest.to_vec(),
        clock: a.clock_info.clock.value(),
        reset_count: a.clock_info.reset_count.value(),
    })
}

/// The digest a quote carries for these SHA-256 PCR values (in PCR order).
pub fn pcr_digest(values: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in values {
        h.update(v);
    }
    h.finalize().into()
}

/// The agent's side of the verifier protocol (docs/measured-boot.md): reading what the
/// verifier answers, strictly.
pub mod wire {
    use alloc::format;
    use alloc::vec::Vec;

    /// The string value of `"key"` in a flat JSON object, if it is there.
    pub fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
        let pat = format!("\"{key}\":\"");
        let start = json.find(&pat)? + pat.len();
        let end = json[start..].find('"')? + start;
        Some(&json[start..end])
    }

    /// Lower-case hex of `b`.
    pub fn hex(b: &[u8]) -> alloc::string::String {
        use core::fmt::Write;
        let mut s = alloc::string::String::with_capacity(2 * b.len());
        for x in b {
            let _ = write!(s, "{x:02x}");
        }
        s
    }

    /// Decodes hex (even length, hex digits only).
    pub fn unhex(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// Parses the verifier's address, `A.B.C.D:PORT` (`catena.verifier=`).
    pub fn parse_server(s: &str) -> Option<([u8; 4], u16)> {
        let (ip, port) = s.split_once(':')?;
        let mut a = [0u8; 4];
        let mut parts = ip.split('.');
        for o in a.iter_mut() {
            *o = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some((a, port.parse().ok().filter(|p| *p != 0)?))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use alloc::vec;

        #[test]
        fn the_verifier_s_answers_are_read_strictly() {
            assert_eq!(json_str("{\"nonce\":\"00ff\"}", "nonce"), Some("00ff"));
            assert_eq!(json_str("{\"nonce\":1}", "nonce"), None);
            assert_eq!(json_str("{\"nonce\":\"00ff", "nonce"), None);
            assert_eq!(unhex("00ff"), Some(vec![0, 255]));
            assert_eq!(unhex("0g"), None);
            assert_eq!(unhex("abc"), None);
            assert_eq!(parse_server("10.0.2.2:8080"), Some(([10, 0, 2, 2], 8080)));
            for bad in [
                "10.0.2:1",
                "10.0.2.2.1:1",
                "10.0.2.2",
                "10.0.2.2:0",
                "10.0.2.256:1",
                "a.b.c.d:1",
            ] {
                assert_eq!(parse_server(bad), None, "{bad}");
            }
        }
    }
}
