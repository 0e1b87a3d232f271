//! The UEFI variable service, as pure logic: what GetVariable, GetNextVariableName,
//! SetVariable and QueryVariableInfo mean (UEFI 2.10 §8.2), over the power-cut-safe
//! [`varstore`] for non-volatile variables and memory for volatile ones; and ([`mm`]) EDK2's
//! SMM variable protocol in MM communicate messages, the form U-Boot and Trusted Services'
//! smm-gateway exchange over FF-A.
//!
//! Owns: every rule about who may read or write which variable when — attribute
//! combinations, the boot-services-only variables vanishing at ExitBootServices, read-only
//! properties (VarCheck), sizes — and the EFI status of each refusal, as EDK2 returns it.
//! Must not: touch memory, flash or FF-A; the firmware's partition copies the message in,
//! calls [`mm::communicate`] and copies the answer out.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod auth;
pub mod client;
pub mod mm;
pub mod partition;
pub mod siglist;

use alloc::vec::Vec;
use varstore::{Flash, Store, StoreError, Var};

/// EFI_STATUS values (UEFI 2.10 Appendix D; errors have the top bit set).
pub mod status {
    const E: u64 = 1 << 63;
    /// EFI_SUCCESS.
    pub const SUCCESS: u64 = 0;
    /// EFI_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: u64 = E | 2;
    /// EFI_UNSUPPORTED.
    pub const UNSUPPORTED: u64 = E | 3;
    /// EFI_BUFFER_TOO_SMALL.
    pub const BUFFER_TOO_SMALL: u64 = E | 5;
    /// EFI_DEVICE_ERROR.
    pub const DEVICE_ERROR: u64 = E | 7;
    /// EFI_WRITE_PROTECTED.
    pub const WRITE_PROTECTED: u64 = E | 8;
    /// EFI_OUT_OF_RESOURCES.
    pub const OUT_OF_RESOURCES: u64 = E | 9;
    /// EFI_NOT_FOUND.
    pub const NOT_FOUND: u64 = E | 14;
    /// EFI_ACCESS_DENIED.
    pub const ACCESS_DENIED: u64 = E | 15;
    /// EFI_SECURITY_VIOLATION.
    pub const SECURITY_VIOLATION: u64 = E | 26;

    /// The status by its UEFI name, for events.
    pub fn name(s: u64) -> &'static str {
        match s {
            SUCCESS => "success",
            INVALID_PARAMETER => "invalid-parameter",
            UNSUPPORTED => "unsupported",
            BUFFER_TOO_SMALL => "buffer-too-small",
            DEVICE_ERROR => "device-error",
            WRITE_PROTECTED => "write-protected",
            OUT_OF_RESOURCES => "out-of-resources",
            NOT_FOUND => "not-found",
            ACCESS_DENIED => "access-denied",
            SECURITY_VIOLATION => "security-violation",
            _ => "unknown-status",
        }
    }
}

/// Variable attributes (UEFI 2.10 §8.2.1).
pub mod attr {
    /// EFI_VARIABLE_NON_VOLATILE.
    pub const NON_VOLATILE: u32 = 0x1;
    /// EFI_VARIABLE_BOOTSERVICE_ACCESS.
    pub const BOOTSERVICE_ACCESS: u32 = 0x2;
    /// EFI_VARIABLE_RUNTIME_ACCESS.
    pub const RUNTIME_ACCESS: u32 = 0x4;
    /// EFI_VARIABLE_HARDWARE_ERROR_RECORD.
    pub const HARDWARE_ERROR_RECORD: u32 = 0x8;
    /// EFI_VARIABLE_AUTHENTICATED_WRITE_ACCESS (deprecated).
    pub const AUTHENTICATED_WRITE_ACCESS: u32 = 0x10;
    /// EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
    pub const TIME_BASED_AUTHENTICATED_WRITE_ACCESS: u32 = 0x20;
    /// EFI_VARIABLE_APPEND_WRITE.
    pub const APPEND_WRITE: u32 = 0x40;
    /// EFI_VARIABLE_ENHANCED_AUTHENTICATED_ACCESS.
    pub const ENHANCED_AUTHENTICATED_ACCESS: u32 = 0x80;
    /// Every attribute the specification defines.
    pub const ALL: u32 = 0xff;
}

/// An EFI_GUID in its in-memory byte order (the first three fields little-endian) from its
/// text form; for constants (panics at compile time on malformed text).
pub const fn guid(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    assert!(b.len() == 36, "a GUID is 36 characters");
    let mut raw = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < 36 {
        if b[i] == b'-' {
            i += 1;
            continue;
        }
        raw[n] = (hex(b[i]) << 4) | hex(b[i + 1]);
        n += 1;
        i += 2;
    }
    assert!(n == 16, "a GUID has 32 hex digits");
    [
        raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6], raw[8], raw[9], raw[10],
        raw[11], raw[12], raw[13], raw[14], raw[15],
    ]
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

/// Catena's vendor GUID for the variables its tests and benchmarks write.
pub const CATENA_TEST_VENDOR: [u8; 16] = guid("c47e7a11-ca7e-4a5b-9e3f-0f1e2d3c4b5a");

/// EFI_GLOBAL_VARIABLE (PK, KEK, SecureBoot, SetupMode, ...).
pub const GLOBAL_VARIABLE: [u8; 16] = guid("8be4df61-93ca-11d2-aa0d-00e098032b8c");

/// An ASCII name (with its NUL) as UTF-16LE, for constants; `M` must be twice `N`.
const fn u16z<const N: usize, const M: usize>(s: &[u8; N]) -> [u8; M] {
    assert!(M == 2 * N, "UTF-16 is two bytes per character");
    let mut out = [0u8; M];
    let mut i = 0;
    while i < N {
        out[2 * i] = s[i];
        i += 1;
    }
    out
}
/// "PK".
pub const PK: [u8; 6] = u16z::<3, 6>(b"PK\0");
/// "SetupMode".
pub const SETUP_MODE: &[u8] = &u16z::<10, 20>(b"SetupMode\0");
/// "SecureBoot".
pub const SECURE_BOOT: &[u8] = &u16z::<11, 22>(b"SecureBoot\0");
/// "KEK".
pub const KEK: [u8; 8] = u16z::<4, 8>(b"KEK\0");
/// "SignatureSupport".
pub const SIGNATURE_SUPPORT: &[u8] = &u16z::<17, 34>(b"SignatureSupport\0");
/// Global variables only the firmware writes (UEFI 2.10 §3.3: "read-only").
const READ_ONLY_GLOBALS: [&[u8]; 3] = [SETUP_MODE, SECURE_BOOT, SIGNATURE_SUPPORT];

/// The Secure Boot variables, by who signs their changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SbVar {
    /// PK.
    Pk,
    /// KEK.
    Kek,
    /// db, dbx, dbt, dbr.
    Db,
}

fn secure_boot_var(guid: &[u8; 16], name: &[u8]) -> Option<SbVar> {
    const DB: [u8; 6] = u16z::<3, 6>(b"db\0");
    const DBX: [u8; 8] = u16z::<4, 8>(b"dbx\0");
    const DBT: [u8; 8] = u16z::<4, 8>(b"dbt\0");
    const DBR: [u8; 8] = u16z::<4, 8>(b"dbr\0");
    if *guid == GLOBAL_VARIABLE && name == PK {
        Some(SbVar::Pk)
    } else if *guid == GLOBAL_VARIABLE && name == KEK {
        Some(SbVar::Kek)
    } else if *guid == siglist::IMAGE_SECURITY_DATABASE
        && (name == DB || name == DBX || name == DBT || name == DBR)
    {
        Some(SbVar::Db)
    } else {
        None
    }
}

/// A VarCheck property (EDK2 `VAR_CHECK_VARIABLE_PROPERTY`, revision 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    /// Bit 0: read-only.
    pub property: u16,
    /// Attributes the variable must have (0: any).
    pub attributes: u32,
    /// Smallest data size accepted.
    pub min_size: u64,
    /// Largest data size accepted.
    pub max_size: u64,
}

/// VAR_CHECK_VARIABLE_PROPERTY_REVISION.
pub const PROPERTY_REVISION: u16 = 1;
/// VAR_CHECK_VARIABLE_PROPERTY_READ_ONLY.
pub const PROPERTY_READ_ONLY: u16 = 1;

/// Size limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest name + data of one variable (EDK2's PcdMaxVariableSize).
    pub max_var_size: u32,
    /// Bytes of name + data all volatile variables may use together.
    pub volatile_bytes: u32,
}

/// Where the boot is: variable rules change at ReadyToBoot and ExitBootServices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    /// READY_TO_BOOT was signalled (VarCheck properties are locked from then on).
    pub ready_to_boot: bool,
    /// EXIT_BOOT_SERVICE was signalled: boot-services-only variables are gone.
    pub exited: bool,
}

/// The service.
pub struct Vars<F: Flash> {
    store: Store<F>,
    volatile: Vec<Var>,
    props: Vec<([u8; 16], Vec<u8>, Property)>,
    phase: Phase,
    limits: Limits,
}

fn key_eq(v: &Var, guid: &[u8; 16], name: &[u8]) -> bool {
    v.guid == *guid && v.name == name
}

/// A name as the store keeps it: UTF-16LE, NUL-terminated, the NUL the only one, not empty.
pub fn name_valid(name: &[u8]) -> bool {
    name.len() >= 4
        && name.len().is_multiple_of(2)
        && name
            .chunks_exact(2)
            .enumerate()
            .all(|(i, c)| (c == [0, 0]) == (i == name.len() / 2 - 1))
}

fn store_status(e: StoreError) -> u64 {
    match e {
        StoreError::NoSpace => status::OUT_OF_RESOURCES,
        StoreError::Invalid(_) => status::INVALID_PARAMETER,
        StoreError::Flash(_) | StoreError::Geometry(_) => status::DEVICE_ERROR,
    }
}

impl<F: Flash> Vars<F> {
    /// The service over an open store.
    pub fn new(store: Store<F>, limits: Limits) -> Vars<F> {
        let mut v = Vars {
            store,
            volatile: Vec::new(),
            props: Vec::new(),
            phase: Phase::default(),
            limits,
        };
        v.refresh_mode();
        v
    }

    /// Whether a Platform Key is enrolled (user mode; UEFI 2.10 §32.3).
    pub fn user_mode(&self) -> bool {
        self.store.get(&GLOBAL_VARIABLE, &PK).is_some()
    }

    /// SetupMode and SecureBoot (UEFI 2.10 §3.3: BS|RT, read-only, the firmware's own):
    /// setup mode without a PK, Secure Boot on with one.
    fn refresh_mode(&mut self) {
        let user = self.user_mode();
        // The signature types this service verifies with or stores meaningfully.
        let mut support = Vec::new();
        support.extend_from_slice(&siglist::CERT_X509);
        support.extend_from_slice(&siglist::CERT_SHA256);
        support.extend_from_slice(&siglist::CERT_X509_SHA256);
        for (name, value) in [
            (SETUP_MODE, alloc::vec![u8::from(!user)]),
            (SECURE_BOOT, alloc::vec![u8::from(user)]),
            (SIGNATURE_SUPPORT, support),
        ] {
            self.volatile.retain(|v| !key_eq(v, &GLOBAL_VARIABLE, name));
            self.volatile.push(Var {
                guid: GLOBAL_VARIABLE,
                name: name.to_vec(),
                attrs: attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
                time: [0; 16],
                data: value,
            });
        }
    }

    /// The boot phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Size limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// READY_TO_BOOT: VarCheck properties can no longer change.
    pub fn ready_to_boot(&mut self) {
        self.phase.ready_to_boot = true;
    }

    /// EXIT_BOOT_SERVICE: from now on only runtime variables exist for callers.
    pub fn exit_boot_services(&mut self) {
        self.phase.ready_to_boot = true;
        self.phase.exited = true;
    }

    fn visible(&self, v: &Var) -> bool {
        !self.phase.exited || v.attrs & attr::RUNTIME_ACCESS != 0
    }

    /// Every variable a caller can see now, in a fixed order (by GUID, then name).
    fn listing(&self) -> Vec<&Var> {
        let mut all: Vec<&Var> = self
            .store
            .vars()
            .chain(self.volatile.iter())
            .filter(|v| self.visible(v))
            .collect();
        all.sort_by(|a, b| (a.guid, &a.name).cmp(&(b.guid, &b.name)));
        all
    }

    /// GetVariable: the variable's attributes and data, or NOT_FOUND.
    pub fn get(&self, guid: &[u8; 16], name: &[u8]) -> Result<&Var, u64> {
        if !name_valid(name) {
            return Err(status::INVALID_PARAMETER);
        }
        self.lookup(guid, name)
            .filter(|v| self.visible(v))
            .ok_or(status::NOT_FOUND)
    }

    fn lookup(&self, guid: &[u8; 16], name: &[u8]) -> Option<&Var> {
        self.store
            .get(guid, name)
            .or_else(|| self.volatile.iter().find(|v| key_eq(v, guid, name)))
    }

    /// GetNextVariableName: the variable after (`guid`, `name`), the first for an empty
    /// name (just the NUL); NOT_FOUND after the last; INVALID_PARAMETER for a name that
    /// names no variable (UEFI 2.10 §8.2.2).
    pub fn next_name(&self, guid: &[u8; 16], name: &[u8]) -> Result<([u8; 16], &[u8]), u64> {
        let all = self.listing();
        let at = if name == [0, 0] {
            0
        } else {
            all.iter()
                .position(|v| key_eq(v, guid, name))
                .ok_or(status::INVALID_PARAMETER)?
                + 1
        };
        all.get(at)
            .map(|v| (v.guid, v.name.as_slice()))
            .ok_or(status::NOT_FOUND)
    }

    /// QueryVariableInfo: (maximum storage, remaining storage, maximum variable size) for
    /// variables with `attrs`.
    pub fn query(&self, attrs: u32) -> Result<(u64, u64, u64), u64> {
        if attrs & !attr::ALL != 0
            || attrs & (attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS) == 0
            || (attrs & attr::RUNTIME_ACCESS != 0 && attrs & attr::BOOTSERVICE_ACCESS == 0)
        {
            return Err(status::INVALID_PARAMETER);
        }
        if attrs & (attr::HARDWARE_ERROR_RECORD | attr::AUTHENTICATED_WRITE_ACCESS) != 0 {
            return Err(status::UNSUPPORTED);
        }
        if self.phase.exited && attrs & attr::RUNTIME_ACCESS == 0 {
            return Err(status::INVALID_PARAMETER);
        }
        let max = u64::from(self.limits.max_var_size);
        if attrs & attr::NON_VOLATILE != 0 {
            let cap = u64::from(self.store.capacity());
            let used = u64::from(self.store.used());
            Ok((cap, cap.saturating_sub(used), max))
        } else {
            let cap = u64::from(self.limits.volatile_bytes);
            Ok((cap, cap.saturating_sub(self.volatile_used()), max))
        }
    }

    fn volatile_used(&self) -> u64 {
        self.volatile
            .iter()
            .map(|v| (v.name.len() + v.data.len()) as u64)
            .sum()
    }

    /// The VarCheck property of a variable.
    pub fn property(&self, guid: &[u8; 16], name: &[u8]) -> Option<Property> {
        self.props
            .iter()
            .find(|(g, n, _)| g == guid && n == name)
            .map(|(_, _, p)| *p)
    }

    /// VAR_CHECK_VARIABLE_PROPERTY_SET (also LOCK_VARIABLE, as a read-only property): only
    /// before ReadyToBoot (EDK2: before EndOfDxe).
    pub fn set_property(&mut self, guid: &[u8; 16], name: &[u8], p: Property) -> Result<(), u64> {
        if !name_valid(name) || p.min_size > p.max_size {
            return Err(status::INVALID_PARAMETER);
        }
        if self.phase.ready_to_boot
            || (*guid == GLOBAL_VARIABLE && READ_ONLY_GLOBALS.contains(&name))
        {
            return Err(status::ACCESS_DENIED);
        }
        self.props.retain(|(g, n, _)| !(g == guid && n == name));
        self.props.push((*guid, name.to_vec(), p));
        Ok(())
    }

    /// SetVariable for a variable without time-based authentication: create, overwrite,
    /// append or delete (empty data without APPEND_WRITE, or attributes 0).
    pub fn set(
        &mut self,
        guid: &[u8; 16],
        name: &[u8],
        attrs: u32,
        data: &[u8],
    ) -> Result<(), u64> {
        if !name_valid(name) {
            return Err(status::INVALID_PARAMETER);
        }
        if attrs & !attr::ALL != 0 {
            return Err(status::INVALID_PARAMETER);
        }
        if attrs & (attr::AUTHENTICATED_WRITE_ACCESS | attr::ENHANCED_AUTHENTICATED_ACCESS) != 0 {
            return Err(status::UNSUPPORTED);
        }
        if attrs & attr::HARDWARE_ERROR_RECORD != 0 {
            // No separate hardware-error store on this platform.
            return Err(status::INVALID_PARAMETER);
        }
        let delete = attrs == 0 || (data.is_empty() && attrs & attr::APPEND_WRITE == 0);
        if !delete {
            if attrs & (attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS) == 0
                || (attrs & attr::RUNTIME_ACCESS != 0 && attrs & attr::BOOTSERVICE_ACCESS == 0)
            {
                return Err(status::INVALID_PARAMETER);
            }
            if self.phase.exited && attrs & attr::RUNTIME_ACCESS == 0 {
                return Err(status::INVALID_PARAMETER);
            }
            if name.len() + data.len() > self.limits.max_var_size as usize {
                return Err(status::INVALID_PARAMETER);
            }
        }
        // A variable hidden since ExitBootServices still exists: overwriting it with the
        // runtime attribute is an attribute mismatch, deleting it is NOT_FOUND.
        if *guid == GLOBAL_VARIABLE && READ_ONLY_GLOBALS.contains(&name) {
            return Err(status::WRITE_PROTECTED);
        }
        let existing = self.lookup(guid, name).cloned();
        let prop = self.property(guid, name);
        if let Some(p) = prop
            && p.property & PROPERTY_READ_ONLY != 0
        {
            return Err(status::WRITE_PROTECTED);
        }
        if attrs & attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS != 0 {
            return self.set_authenticated(guid, name, attrs, data);
        }
        if existing
            .as_ref()
            .is_some_and(|v| v.attrs & attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS != 0)
        {
            // An authenticated variable changes only by an authenticated write.
            return Err(status::SECURITY_VIOLATION);
        }
        if delete {
            let Some(old) = existing.filter(|v| self.visible(v)) else {
                return Err(status::NOT_FOUND);
            };
            if attrs != 0 && (old.attrs & !attr::APPEND_WRITE) != (attrs & !attr::APPEND_WRITE) {
                return Err(status::INVALID_PARAMETER);
            }
            return self.remove(&old);
        }
        let kept = attrs & !attr::APPEND_WRITE;
        let value = match &existing {
            Some(old) if old.attrs != kept => return Err(status::INVALID_PARAMETER),
            Some(old) if attrs & attr::APPEND_WRITE != 0 => {
                if data.is_empty() {
                    return Ok(());
                }
                let mut v = old.data.clone();
                v.extend_from_slice(data);
                v
            }
            _ => data.to_vec(),
        };
        if name.len() + value.len() > self.limits.max_var_size as usize {
            return Err(status::INVALID_PARAMETER);
        }
        if let Some(p) = prop {
            let n = value.len() as u64;
            if (p.attributes != 0 && p.attributes != kept) || n < p.min_size || n > p.max_size {
                return Err(status::INVALID_PARAMETER);
            }
        }
        let var = Var {
            guid: *guid,
            name: name.to_vec(),
            attrs: kept,
            time: [0; 16],
            data: value,
        };
        if kept & attr::NON_VOLATILE != 0 {
            self.store.set(var).map_err(store_status)?;
            self.refresh_mode();
            Ok(())
        } else {
            let old = self
                .volatile
                .iter()
                .find(|v| key_eq(v, guid, name))
                .map_or(0, |v| v.name.len() + v.data.len());
            let new = var.name.len() + var.data.len();
            if self.volatile_used() - old as u64 + new as u64
                > u64::from(self.limits.volatile_bytes)
            {
                return Err(status::OUT_OF_RESOURCES);
            }
            self.volatile.retain(|v| !key_eq(v, guid, name));
            self.volatile.push(var);
            Ok(())
        }
    }

    /// The certificates in a stored signature-list variable.
    fn stored_certs(&self, guid: &[u8; 16], name: &[u8]) -> Vec<x509_cert::Certificate> {
        self.store
            .get(guid, name)
            .and_then(|v| {
                siglist::parse(&v.data)
                    .ok()
                    .map(|l| auth::certificates(&siglist::x509_certs(&l)))
            })
            .unwrap_or_default()
    }

    /// SetVariable with TIME_BASED_AUTHENTICATED_WRITE_ACCESS (UEFI 2.10 §8.2.6, §32.3): only
    /// the Secure Boot variables. In user mode (a PK enrolled) PK changes must be signed by
    /// the PK, KEK by the PK, db/dbx/dbt/dbr by a KEK or the PK; in setup mode the PK must be
    /// signed by itself and the others are written unverified, as EDK2 does. The timestamp
    /// must be later than the stored one except for APPEND_WRITE; an append adds only the
    /// signatures not already there. An empty value deletes (a deleted PK: setup mode).
    fn set_authenticated(
        &mut self,
        guid: &[u8; 16],
        name: &[u8],
        attrs: u32,
        data: &[u8],
    ) -> Result<(), u64> {
        use attr::*;
        const SB_ATTRS: u32 = NON_VOLATILE
            | BOOTSERVICE_ACCESS
            | RUNTIME_ACCESS
            | TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
        // Private authenticated variables (other names) are not offered.
        let which = secure_boot_var(guid, name).ok_or(status::SECURITY_VIOLATION)?;
        let append = attrs & APPEND_WRITE != 0;
        let kept = attrs & !APPEND_WRITE;
        if kept != SB_ATTRS || (which == SbVar::Pk && append) {
            return Err(status::INVALID_PARAMETER);
        }
        let a = auth::parse_auth2(data).map_err(|_| status::SECURITY_VIOLATION)?;
        let lists = siglist::parse(a.payload).map_err(|_| status::INVALID_PARAMETER)?;
        let existing = self.store.get(guid, name).cloned();
        if existing.as_ref().is_some_and(|v| v.attrs != kept) {
            return Err(status::INVALID_PARAMETER);
        }
        if let Some(old) = &existing
            && !append
            && !auth::later(&a.time, &old.time)
        {
            return Err(status::SECURITY_VIOLATION);
        }
        // The value must be what the variable holds: PK one X.509 certificate; KEK X.509
        // certificates; every X.509 entry a certificate.
        let x509 = siglist::x509_certs(&lists);
        let new_certs = auth::certificates(&x509);
        let shape_ok = new_certs.len() == x509.len()
            && match which {
                SbVar::Pk => a.payload.is_empty() || (lists.len() == 1 && x509.len() == 1),
                SbVar::Kek => lists.iter().all(|l| l.sig_type == siglist::CERT_X509),
                SbVar::Db => true,
            };
        if !shape_ok {
            return Err(status::INVALID_PARAMETER);
        }
        let user = self.user_mode();
        let pk = self.stored_certs(&GLOBAL_VARIABLE, &PK);
        let trusted = match which {
            SbVar::Pk if user => Some(pk),
            SbVar::Pk => Some(new_certs),
            SbVar::Kek if user => Some(pk),
            SbVar::Db if user => {
                let mut t = self.stored_certs(&GLOBAL_VARIABLE, &KEK);
                t.extend(pk);
                Some(t)
            }
            _ => None,
        };
        if let Some(t) = trusted {
            if t.is_empty() {
                return Err(status::SECURITY_VIOLATION);
            }
            let signed = auth::signed_bytes(name, guid, attrs, &a.time, a.payload);
            auth::verify(a.cert, &signed, &t).map_err(|_| status::SECURITY_VIOLATION)?;
        }
        if a.payload.is_empty() && !append {
            let Some(old) = existing else {
                return Err(status::NOT_FOUND);
            };
            return self.remove(&old);
        }
        let (value, time) = match (&existing, append) {
            (Some(old), true) => {
                let old_lists = siglist::parse(&old.data).unwrap_or_default();
                let mut seen: Vec<([u8; 16], &[u8])> = old_lists
                    .iter()
                    .flat_map(|l| l.entries.iter().map(move |e| (l.sig_type, e.data)))
                    .collect();
                let mut fresh = lists.clone();
                for l in fresh.iter_mut() {
                    let t = l.sig_type;
                    l.entries.retain(|e| {
                        let k = (t, e.data);
                        let new = !seen.contains(&k);
                        if new {
                            seen.push(k);
                        }
                        new
                    });
                }
                let mut v = old.data.clone();
                v.extend_from_slice(&siglist::encode(&fresh));
                (v, auth::max_time(old.time, a.time))
            }
            _ => (a.payload.to_vec(), a.time),
        };
        if name.len() + value.len() > self.limits.max_var_size as usize {
            return Err(status::OUT_OF_RESOURCES);
        }
        self.store
            .set(Var {
                guid: *guid,
                name: name.to_vec(),
                attrs: kept,
                time,
                data: value,
            })
            .map_err(store_status)?;
        self.refresh_mode();
        Ok(())
    }

    fn remove(&mut self, old: &Var) -> Result<(), u64> {
        if old.attrs & attr::NON_VOLATILE != 0 {
            self.store
                .delete(&old.guid, &old.name)
                .map_err(store_status)?;
            self.refresh_mode();
            Ok(())
        } else {
            self.volatile.retain(|v| !key_eq(v, &old.guid, &old.name));
            Ok(())
        }
    }

    /// Every variable (for the firmware's own use: counts, measurements).
    pub fn all(&self) -> impl Iterator<Item = &Var> {
        self.store.vars().chain(self.volatile.iter())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod partition_tests;

#[cfg(test)]
mod client_tests;

#[cfg(test)]
mod auth_tests;
