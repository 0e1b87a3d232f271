//! Time-based authenticated variables (UEFI 2.10 §8.2.6): the `EFI_VARIABLE_AUTHENTICATION_2`
//! header, the bytes that are signed, and PKCS#7 SignedData verification (RSA PKCS#1 v1.5 with
//! SHA-256) against trusted certificates, with the RustCrypto `cms`, `x509-cert`, `der` and
//! `rsa` crates (`cms` parses; the checks below are what a verifier must do with it).
//!
//! Every failure is one `&'static str` reason; the service answers EFI_SECURITY_VIOLATION.

use crate::siglist::CERT_TYPE_PKCS7;
use alloc::vec::Vec;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::{Decode, Encode};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

/// `EFI_TIME`, 16 bytes as stored.
pub type EfiTime = [u8; 16];

/// A parsed `EFI_VARIABLE_AUTHENTICATION_2` and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth2<'a> {
    /// TimeStamp.
    pub time: EfiTime,
    /// CertData: DER PKCS#7 SignedData (detached).
    pub cert: &'a [u8],
    /// The new value (EFI_SIGNATURE_LISTs for the Secure Boot variables).
    pub payload: &'a [u8],
}

/// WIN_CERTIFICATE's wRevision and wCertificateType (WIN_CERT_TYPE_EFI_GUID).
const WIN_CERT_REVISION: u16 = 0x0200;
const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0ef1;
/// WIN_CERTIFICATE (8) and CertType (16) before CertData.
const WIN_CERT_UEFI_GUID: usize = 24;

/// Parses the header at the start of `data` (UEFI 2.10 §8.2.6: `dwLength` covers the
/// WIN_CERTIFICATE, CertType and CertData; the value follows).
pub fn parse_auth2(data: &[u8]) -> Result<Auth2<'_>, &'static str> {
    if data.len() < 16 + WIN_CERT_UEFI_GUID {
        return Err("shorter than an authentication header");
    }
    let mut time = [0u8; 16];
    time.copy_from_slice(&data[..16]);
    let w = &data[16..];
    let len = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize;
    if u16::from_le_bytes([w[4], w[5]]) != WIN_CERT_REVISION
        || u16::from_le_bytes([w[6], w[7]]) != WIN_CERT_TYPE_EFI_GUID
    {
        return Err("not a WIN_CERTIFICATE_UEFI_GUID");
    }
    if w[8..24] != CERT_TYPE_PKCS7 {
        return Err("CertType is not PKCS#7");
    }
    if len <= WIN_CERT_UEFI_GUID || len > w.len() {
        return Err("dwLength outside the data");
    }
    // Pad1, Nanosecond, TimeZone, Daylight and Pad2 must be zero in an authenticated write.
    if time[7..].iter().any(|&b| b != 0) {
        return Err("timestamp has nonzero nanosecond, zone or pad fields");
    }
    Ok(Auth2 {
        time,
        cert: &w[WIN_CERT_UEFI_GUID..len],
        payload: &w[len..],
    })
}

/// The time as a comparable tuple: Year, Month, Day, Hour, Minute, Second.
fn key(t: &EfiTime) -> (u16, u8, u8, u8, u8, u8) {
    (
        u16::from_le_bytes([t[0], t[1]]),
        t[2],
        t[3],
        t[4],
        t[5],
        t[6],
    )
}

/// Whether `new` is strictly later than `old`.
pub fn later(new: &EfiTime, old: &EfiTime) -> bool {
    key(new) > key(old)
}

/// The later of two times.
pub fn max_time(a: EfiTime, b: EfiTime) -> EfiTime {
    if later(&b, &a) { b } else { a }
}

/// What is signed (UEFI 2.10 §8.2.6): the name without its NUL, the vendor GUID, the
/// attributes as given, the timestamp, the new value.
pub fn signed_bytes(
    name: &[u8],
    guid: &[u8; 16],
    attrs: u32,
    time: &EfiTime,
    payload: &[u8],
) -> Vec<u8> {
    let name = name.strip_suffix(&[0, 0]).unwrap_or(name);
    let mut v = Vec::with_capacity(name.len() + 36 + payload.len());
    v.extend_from_slice(name);
    v.extend_from_slice(guid);
    v.extend_from_slice(&attrs.to_le_bytes());
    v.extend_from_slice(time);
    v.extend_from_slice(payload);
    v
}

/// The RSA public key of `cert` (2048 bits or more).
pub fn rsa_key(cert: &Certificate) -> Result<RsaPublicKey, &'static str> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != rfc5912::RSA_ENCRYPTION {
        return Err("not an RSA key");
    }
    let der = spki.to_der().map_err(|_| "public key does not encode")?;
    let r =
        spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|_| "public key does not parse")?;
    let key = RsaPublicKey::try_from(r).map_err(|_| "not an RSA public key")?;
    // RSA-2048 at least (the floor; UEFI's is 2048 too).
    if rsa::traits::PublicKeyParts::size(&key) < 256 {
        return Err("RSA key shorter than 2048 bits");
    }
    Ok(key)
}

fn rsa_sha256_verify(key: &RsaPublicKey, msg: &[u8], sig: &[u8]) -> Result<(), &'static str> {
    let sig = Signature::try_from(sig).map_err(|_| "malformed signature")?;
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(msg, &sig)
        .map_err(|_| "signature does not verify")
}

/// Whether `issuer` signed `cert` (name and RSA-SHA256 signature).
pub fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject
        || cert.signature_algorithm.oid != rfc5912::SHA_256_WITH_RSA_ENCRYPTION
    {
        return false;
    }
    let (Ok(tbs), Ok(key)) = (cert.tbs_certificate.to_der(), rsa_key(issuer)) else {
        return false;
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    rsa_sha256_verify(&key, &tbs, sig).is_ok()
}

/// Longest chain from a signer to a trusted certificate.
const MAX_CHAIN: usize = 4;

/// Whether `cert` is trusted, or chains to a trusted certificate through `pool` (the
/// SignedData's own certificates) in at most [`MAX_CHAIN`] steps.
fn chains(cert: &Certificate, pool: &[Certificate], trusted: &[Certificate]) -> bool {
    let mut c = cert.clone();
    for _ in 0..MAX_CHAIN {
        if trusted.contains(&c) || trusted.iter().any(|t| issued_by(&c, t)) {
            return true;
        }
        match pool.iter().find(|p| **p != c && issued_by(&c, p)) {
            Some(next) => c = next.clone(),
            None => return false,
        }
    }
    false
}

/// Parses DER certificates (those that do not parse are skipped: a list may hold others).
pub fn certificates(ders: &[&[u8]]) -> Vec<Certificate> {
    ders.iter()
        .filter_map(|d| Certificate::from_der(d).ok())
        .collect()
}

const ID_SIGNED_DATA: ObjectIdentifier = rfc5911::ID_SIGNED_DATA;
const ID_MESSAGE_DIGEST: ObjectIdentifier = rfc5911::ID_MESSAGE_DIGEST;
const ID_SHA_256: ObjectIdentifier = rfc5912::ID_SHA_256;

/// Verifies a detached PKCS#7 SignedData over `signed`: every signer must sign it with
/// RSA and SHA-256 (over the signed attributes when present, whose messageDigest must be the
/// data's SHA-256) and chain to one of `trusted`. Bare SignedData (as UEFI specifies and
/// efitools writes) or wrapped in a ContentInfo.
pub fn verify(
    cert_data: &[u8],
    signed: &[u8],
    trusted: &[Certificate],
) -> Result<(), &'static str> {
    let sd = match SignedData::from_der(cert_data) {
        Ok(sd) => sd,
        Err(_) => {
            let ci = ContentInfo::from_der(cert_data).map_err(|_| "not PKCS#7 SignedData")?;
            if ci.content_type != ID_SIGNED_DATA {
                return Err("ContentInfo is not SignedData");
            }
            ci.content
                .decode_as::<SignedData>()
                .map_err(|_| "not PKCS#7 SignedData")?
        }
    };
    if sd.encap_content_info.econtent.is_some() {
        return Err("SignedData is not detached");
    }
    let pool: Vec<Certificate> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.clone()),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let digest = Sha256::digest(signed);
    let signers = sd.signer_infos.0.as_slice();
    if signers.is_empty() {
        return Err("no signer");
    }
    for si in signers {
        if si.digest_alg.oid != ID_SHA_256 {
            return Err("digest is not SHA-256");
        }
        if si.signature_algorithm.oid != rfc5912::RSA_ENCRYPTION
            && si.signature_algorithm.oid != rfc5912::SHA_256_WITH_RSA_ENCRYPTION
        {
            return Err("signature is not RSA");
        }
        let SignerIdentifier::IssuerAndSerialNumber(id) = &si.sid else {
            return Err("signer named by key identifier");
        };
        let cert = pool
            .iter()
            .chain(trusted.iter())
            .find(|c| {
                c.tbs_certificate.issuer == id.issuer
                    && c.tbs_certificate.serial_number == id.serial_number
            })
            .ok_or("signer's certificate not found")?;
        let msg = match &si.signed_attrs {
            None => signed.to_vec(),
            Some(attrs) => {
                let md = attrs
                    .iter()
                    .find(|a| a.oid == ID_MESSAGE_DIGEST)
                    .and_then(|a| a.values.iter().next())
                    .ok_or("signed attributes without messageDigest")?;
                let md = der::asn1::OctetStringRef::try_from(md)
                    .map_err(|_| "messageDigest is not an OCTET STRING")?;
                if md.as_bytes() != digest.as_slice() {
                    return Err("messageDigest is not the data's");
                }
                // Signed over the attributes' DER as a SET OF (RFC 5652 §5.4).
                attrs
                    .to_der()
                    .map_err(|_| "signed attributes do not encode")?
            }
        };
        rsa_sha256_verify(&rsa_key(cert)?, &msg, si.signature.as_bytes())?;
        if !chains(cert, &pool, trusted) {
            return Err("signer does not chain to a trusted key");
        }
    }
    Ok(())
}
