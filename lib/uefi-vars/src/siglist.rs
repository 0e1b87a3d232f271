//! `EFI_SIGNATURE_LIST` sequences (UEFI 2.10 §32.4.1), the format of PK, KEK, db and dbx:
//! each list a 28-byte header { SignatureType GUID, SignatureListSize, SignatureHeaderSize,
//! SignatureSize }, a header of SignatureHeaderSize bytes, then entries of SignatureSize bytes
//! { SignatureOwner GUID, SignatureData }. Every size is checked against the bytes there are;
//! nothing is read past them.

use crate::guid;
use alloc::vec::Vec;

/// EFI_CERT_X509_GUID: a DER certificate.
pub const CERT_X509: [u8; 16] = guid("a5c059a1-94e4-4aa7-87b5-ab155c2bf072");
/// EFI_CERT_SHA256_GUID: a SHA-256 digest (of a PE image, for db/dbx).
pub const CERT_SHA256: [u8; 16] = guid("c1c41626-504c-4092-aca9-41f936934328");
/// EFI_CERT_X509_SHA256_GUID: the SHA-256 of a certificate's TBS, and a revocation time.
pub const CERT_X509_SHA256: [u8; 16] = guid("3bd2a492-96c0-4079-b420-fcf98ef103ed");
/// EFI_CERT_TYPE_PKCS7_GUID: WIN_CERTIFICATE_UEFI_GUID's CertType for PKCS#7 SignedData.
pub const CERT_TYPE_PKCS7: [u8; 16] = guid("4aafd29d-68df-49ee-8aa9-347d375665a7");
/// EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx, dbt, dbr.
pub const IMAGE_SECURITY_DATABASE: [u8; 16] = guid("d719b2cb-3d3a-4596-a3bc-dad00e67656f");

/// The fixed part of a list.
pub const LIST_HEADER: usize = 28;
/// The owner GUID before each entry's data.
pub const OWNER: usize = 16;

/// One entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// SignatureOwner.
    pub owner: [u8; 16],
    /// SignatureData.
    pub data: &'a [u8],
}

/// One list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<'a> {
    /// SignatureType.
    pub sig_type: [u8; 16],
    /// SignatureHeader (empty for every type UEFI defines).
    pub header: &'a [u8],
    /// The entries.
    pub entries: Vec<Entry<'a>>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The data size a type fixes, when it fixes one.
fn fixed_data(t: &[u8; 16]) -> Option<usize> {
    match *t {
        CERT_SHA256 => Some(32),
        // ToBeSignedHash (32) and TimeOfRevocation (EFI_TIME, 16).
        CERT_X509_SHA256 => Some(48),
        _ => None,
    }
}

/// Parses a whole variable's worth of lists (empty input: no lists).
pub fn parse(mut b: &[u8]) -> Result<Vec<List<'_>>, &'static str> {
    let mut lists = Vec::new();
    while !b.is_empty() {
        if b.len() < LIST_HEADER {
            return Err("a list shorter than its header");
        }
        let mut sig_type = [0u8; 16];
        sig_type.copy_from_slice(&b[..16]);
        let (list, header, size) = (
            le32(b, 16) as usize,
            le32(b, 20) as usize,
            le32(b, 24) as usize,
        );
        if list < LIST_HEADER || list > b.len() {
            return Err("SignatureListSize outside the data");
        }
        let body = list - LIST_HEADER;
        if header > body {
            return Err("SignatureHeaderSize beyond the list");
        }
        if size <= OWNER {
            return Err("SignatureSize too small for an owner and data");
        }
        if !(body - header).is_multiple_of(size) {
            return Err("the entries do not fill the list");
        }
        // A list without entries is refused, as Linux's parser refuses it.
        if body == header {
            return Err("a list without entries");
        }
        if fixed_data(&sig_type).is_some_and(|d| size != OWNER + d) {
            return Err("SignatureSize wrong for the signature type");
        }
        let hdr = &b[LIST_HEADER..LIST_HEADER + header];
        let entries = b[LIST_HEADER + header..list]
            .chunks_exact(size)
            .map(|e| {
                let mut owner = [0u8; 16];
                owner.copy_from_slice(&e[..OWNER]);
                Entry {
                    owner,
                    data: &e[OWNER..],
                }
            })
            .collect();
        lists.push(List {
            sig_type,
            header: hdr,
            entries,
        });
        b = &b[list..];
    }
    Ok(lists)
}

/// The certificates (DER) in X509 lists.
pub fn x509_certs<'a>(lists: &[List<'a>]) -> Vec<&'a [u8]> {
    lists
        .iter()
        .filter(|l| l.sig_type == CERT_X509)
        .flat_map(|l| l.entries.iter().map(|e| e.data))
        .collect()
}

/// Encodes lists back (for an append that dropped duplicates).
pub fn encode(lists: &[List<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lists.iter().filter(|l| !l.entries.is_empty()) {
        let size = OWNER + l.entries[0].data.len();
        let total = LIST_HEADER + l.header.len() + size * l.entries.len();
        out.extend_from_slice(&l.sig_type);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(l.header.len() as u32).to_le_bytes());
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(l.header);
        for e in &l.entries {
            out.extend_from_slice(&e.owner);
            out.extend_from_slice(e.data);
        }
    }
    out
}
