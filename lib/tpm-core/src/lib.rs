//! The TPM core: the TPM 2.0 commands Catena needs, marshalled and unmarshalled with
//! `tpm2-protocol` (TCG TPM 2.0 Library Part 3), over any [`Transport`] (CRB over FF-A, TIS).
//!
//! Owns: building each command, and validating each response — its frame (tag, size, the
//! response code) through `tpm2-protocol`, then what the command promised (a PCR read returns
//! the one PCR and bank asked for, with a digest of the bank's size; GetRandom no more than
//! asked). Must not: know the transport, or trust the TPM: a malformed response is an
//! [`Error::Malformed`], never a panic.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use core::fmt;
use tpm2_protocol::basic::TpmInt32;
use tpm2_protocol::basic::{TpmBuffer, TpmHandle, TpmUint16, TpmUint32};
use tpm2_protocol::data::{
    Tpm2bAuth, Tpm2bData, Tpm2bDigest, Tpm2bEncryptedSecret, Tpm2bIdObject, Tpm2bNonce,
    Tpm2bPublic, Tpm2bSensitiveCreate, TpmAlgId, TpmCap, TpmEccCurve, TpmRc, TpmSe, TpmSt, TpmSu,
    TpmaObject, TpmaSession, TpmiYesNo, TpmlDigestValues, TpmlPcrSelection, TpmsAuthCommand,
    TpmsEccParms, TpmsEccPoint, TpmsPcrSelect, TpmsPcrSelection, TpmsSchemeHash, TpmtEccScheme,
    TpmtHa, TpmtKdfScheme, TpmtPublic, TpmtSigScheme, TpmtSymDefObject, TpmuAsymScheme,
    TpmuCapabilities, TpmuHa, TpmuPublicId, TpmuPublicParms, TpmuSymKeyBits, TpmuSymMode,
};
use tpm2_protocol::frame::{
    TpmActivateCredentialCommand, TpmActivateCredentialResponse, TpmCreatePrimaryCommand,
    TpmCreatePrimaryResponse, TpmFlushContextCommand, TpmFlushContextResponse, TpmFrame,
    TpmGetCapabilityCommand, TpmGetCapabilityResponse, TpmGetRandomCommand, TpmGetRandomResponse,
    TpmNvReadCommand, TpmNvReadPublicCommand, TpmNvReadPublicResponse, TpmNvReadResponse,
    TpmPcrExtendCommand, TpmPcrExtendResponse, TpmPcrReadCommand, TpmPcrReadResponse,
    TpmPolicySecretCommand, TpmPolicySecretResponse, TpmQuoteCommand, TpmQuoteResponse,
    TpmReadPublicCommand, TpmReadPublicResponse, TpmResponse, TpmSelfTestCommand,
    TpmSelfTestResponse, TpmStartAuthSessionCommand, TpmStartAuthSessionResponse,
    TpmStartupCommand, TpmStartupResponse, TpmUnmarshalBody, tpm_marshal_command,
};
use tpm2_protocol::{TpmMarshal, TpmWriter};

/// The largest command or response Catena exchanges (a CRB locality's data buffer is 3968
/// bytes; the TIS has no limit of its own).
pub const MAX_FRAME: usize = 3968;
/// TPM_RC_INITIALIZE: TPM2_Startup after the TPM was already started.
pub const RC_INITIALIZE: u32 = 0x100;
/// TPM_RS_PW: the password authorization session's handle (Part 2 §7.4).
const TPM_RS_PW: u32 = 0x4000_0009;
/// TPM_ALG_SHA256.
pub const ALG_SHA256: u16 = 0x000b;

/// How commands reach the TPM.
pub trait Transport {
    /// Sends `cmd`, writes the response to `rsp`, returns its length; `Err` names what failed.
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str>;
}

/// Why a command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The transport failed (its reason).
    Transport(&'static str),
    /// The TPM answered with this response code.
    Rc(u32),
    /// The response does not parse or is not what the command promised.
    Malformed(&'static str),
    /// The command could not be built (an argument out of range).
    Argument(&'static str),
    /// A bare TPM 1.2-form error (tag TPM_TAG_RSP_COMMAND 0x00c4, 10 bytes) with this code:
    /// what QEMU's TPM front-ends write when their backend fails (QEMU
    /// `tpm_util_write_fatal_error_response`: TPM_FAIL, 9), e.g. swtpm gone.
    Legacy(u32),
}

/// A response code by its TCG name (`TPM_RC_INITIALIZE`), or in hex when unknown.
pub struct RcName(pub u32);

impl fmt::Display for RcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TpmRc::try_from(self.0) {
            Ok(rc) => write!(f, "{rc}"),
            Err(_) => write!(f, "{:#x}", self.0),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(r) => write!(f, "transport: {r}"),
            Error::Rc(rc) => write!(f, "{}", RcName(*rc)),
            Error::Malformed(r) => write!(f, "malformed response: {r}"),
            Error::Argument(r) => write!(f, "bad argument: {r}"),
            Error::Legacy(9) => {
                write!(f, "TPM_FAIL (TPM 1.2-form error: the TPM is not answering)")
            }
            Error::Legacy(rc) => write!(f, "TPM 1.2-form error {rc:#x}"),
        }
    }
}

/// A digest as the TPM returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; 64],
    len: usize,
}

impl Digest {
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The active PCR banks (hash algorithm IDs with at least one PCR selected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Banks {
    algs: [u16; 8],
    n: usize,
}

impl Banks {
    /// The algorithm IDs.
    pub fn algs(&self) -> &[u16] {
        &self.algs[..self.n]
    }

    /// Whether SHA-256 is active.
    pub fn has_sha256(&self) -> bool {
        self.algs().contains(&ALG_SHA256)
    }
}

/// An algorithm's short name for events.
pub fn alg_name(alg: u16) -> &'static str {
    match alg {
        0x0004 => "sha1",
        0x000b => "sha256",
        0x000c => "sha384",
        0x000d => "sha512",
        0x0012 => "sm3_256",
        _ => "other",
    }
}

/// A hash algorithm's digest size (TPM 2.0 Part 2 §6.3), for the banks a PC-client TPM has.
pub fn digest_size(alg: u16) -> Option<usize> {
    match alg {
        0x0004 => Some(20),
        0x000b | 0x0012 => Some(32),
        0x000c => Some(48),
        0x000d => Some(64),
        _ => None,
    }
}

/// Manufacturer and firmware version (TPM_PT_MANUFACTURER, TPM_PT_FIRMWARE_VERSION_1/_2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Four ASCII characters ("IBM ", "MSFT").
    pub manufacturer: [u8; 4],
    /// FIRMWARE_VERSION_1 and _2.
    pub firmware: (u32, u32),
}

/// TPM_PT_MANUFACTURER; the firmware versions follow at 0x10b and 0x10c.
const PT_MANUFACTURER: u32 = 0x105;
const PT_FIRMWARE_VERSION_1: u32 = 0x10b;
const PT_FIRMWARE_VERSION_2: u32 = 0x10c;

/// The TPM behind a transport.
pub struct Tpm<T: Transport> {
    t: T,
    /// The command and the response, [`MAX_FRAME`] each, allocated once: zero-filling two
    /// stack frames per command cost more instructions than marshalling it.
    buf: Box<[u8]>,
}

fn marshal_err(_: tpm2_protocol::TpmError) -> Error {
    Error::Argument("does not marshal")
}

/// A structure from a response, marshalled again (what a file of tpm2-tools holds).
fn to_bytes(v: &impl TpmMarshal) -> Result<alloc::vec::Vec<u8>, Error> {
    let mut out = alloc::vec![0u8; MAX_FRAME];
    let n = {
        let mut w = TpmWriter::new(&mut out);
        v.marshal(&mut w).map_err(marshal_err)?;
        w.len()
    };
    out.truncate(n);
    Ok(out)
}

/// The password session with an empty password (TPM_RS_PW; Part 1 §19.8.4): what PCR_Extend
/// needs for a PCR whose authValue is empty, as every resettable PCR's is.
fn password_session() -> TpmsAuthCommand {
    TpmsAuthCommand {
        session_handle: TpmHandle::new(TPM_RS_PW),
        nonce: Tpm2bNonce::default(),
        session_attributes: TpmaSession::default(),
        hmac: Tpm2bAuth::default(),
    }
}

fn selection(alg: u16, pcr: u8) -> Result<TpmlPcrSelection, Error> {
    let mut bits = [0u8; 3];
    *bits
        .get_mut(usize::from(pcr / 8))
        .ok_or(Error::Argument("PCR index above 23"))? |= 1 << (pcr % 8);
    let hash = TpmAlgId::try_from(alg).map_err(|_| Error::Argument("unknown algorithm"))?;
    let mut l = TpmlPcrSelection::default();
    l.try_push(TpmsPcrSelection {
        hash,
        pcr_select: TpmsPcrSelect::try_from(&bits[..]).map_err(marshal_err)?,
    })
    .map_err(marshal_err)?;
    Ok(l)
}

impl<T: Transport> Tpm<T> {
    /// A TPM reached through `t`.
    pub fn new(t: T) -> Tpm<T> {
        Tpm {
            t,
            buf: alloc::vec![0u8; 2 * MAX_FRAME].into_boxed_slice(),
        }
    }

    /// The transport, back.
    pub fn into_transport(self) -> T {
        self.t
    }

    /// Sends `cmd` and returns the response body `R`, or the TPM's error code. The warnings
    /// that mean "send it again" (TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_RETRY: Part 2 §6.6.3;
    /// swtpm answers RETRY to the first ECC command while its self-test runs) are retried a
    /// bounded number of times, as Linux's `tpm_transmit` does.
    fn run<C: TpmFrame, R: TpmUnmarshalBody>(
        &mut self,
        cmd: &C,
        sessions: &[TpmsAuthCommand],
    ) -> Result<R, Error> {
        const RC_YIELDED: u32 = 0x908;
        const RC_TESTING: u32 = 0x90a;
        const RC_RETRY: u32 = 0x922;
        let mut tries = 0;
        loop {
            match self.run_once(cmd, sessions) {
                Err(Error::Rc(RC_YIELDED | RC_TESTING | RC_RETRY)) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    fn run_once<C: TpmFrame, R: TpmUnmarshalBody>(
        &mut self,
        cmd: &C,
        sessions: &[TpmsAuthCommand],
    ) -> Result<R, Error> {
        let (out, rsp) = self.buf.split_at_mut(MAX_FRAME);
        let n = {
            let mut w = TpmWriter::new(out);
            let tag = if sessions.is_empty() {
                TpmSt::NoSessions
            } else {
                TpmSt::Sessions
            };
            tpm_marshal_command(cmd, tag, sessions, &mut w).map_err(marshal_err)?;
            w.len()
        };
        let len = self.t.transmit(&out[..n], rsp).map_err(Error::Transport)?;
        let rsp = rsp
            .get(..len)
            .ok_or(Error::Malformed("longer than the buffer"))?;
        if let [0x00, 0xc4, 0, 0, 0, 10, a, b, c, d] = *rsp {
            return Err(Error::Legacy(u32::from_be_bytes([a, b, c, d])));
        }
        let frame =
            TpmResponse::cast(rsp).map_err(|_| Error::Malformed("not a TPM response frame"))?;
        let rc = frame
            .rc()
            .map_err(|_| Error::Malformed("unknown response code"))?
            .value();
        if rc != 0 {
            return Err(Error::Rc(rc));
        }
        frame
            .unmarshal::<R>()
            .map_err(|_| Error::Malformed("body does not match the command"))
    }

    /// TPM2_Startup(CLEAR); `Ok(true)` when the TPM was already started (TPM_RC_INITIALIZE).
    pub fn startup(&mut self) -> Result<bool, Error> {
        let c = TpmStartupCommand {
            handles: [],
            startup_type: TpmSu::Clear,
        };
        match self.run::<_, TpmStartupResponse>(&c, &[]) {
            Ok(_) => Ok(false),
            Err(Error::Rc(RC_INITIALIZE)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// TPM2_SelfTest(fullTest = YES).
    pub fn self_test(&mut self) -> Result<(), Error> {
        let c = TpmSelfTestCommand {
            handles: [],
            full_test: TpmiYesNo::from(true),
        };
        self.run::<_, TpmSelfTestResponse>(&c, &[]).map(|_| ())
    }

    fn capability(
        &mut self,
        cap: TpmCap,
        prop: u32,
        count: u32,
    ) -> Result<TpmuCapabilities, Error> {
        let c = TpmGetCapabilityCommand {
            handles: [],
            cap,
            property: TpmUint32::new(prop),
            property_count: TpmUint32::new(count),
        };
        let r: TpmGetCapabilityResponse = self.run(&c, &[])?;
        if r.capability_data.capability != cap {
            return Err(Error::Malformed("another capability than asked"));
        }
        Ok(r.capability_data.data)
    }

    /// The active PCR banks (TPM2_GetCapability(TPM_CAP_PCRS)).
    pub fn banks(&mut self) -> Result<Banks, Error> {
        let TpmuCapabilities::Pcrs(list) = self.capability(TpmCap::Pcrs, 0, 1)? else {
            return Err(Error::Malformed("PCRS capability without a selection"));
        };
        let mut b = Banks::default();
        for s in list.iter() {
            if s.pcr_select.iter().any(|&bits| bits != 0) && b.n < b.algs.len() {
                b.algs[b.n] = s.hash as u16;
                b.n += 1;
            }
        }
        Ok(b)
    }

    /// Manufacturer and firmware version (TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES)).
    pub fn identity(&mut self) -> Result<Identity, Error> {
        let TpmuCapabilities::TpmProperties(props) =
            self.capability(TpmCap::TpmProperties, PT_MANUFACTURER, 8)?
        else {
            return Err(Error::Malformed("properties capability without properties"));
        };
        let find = |pt: u32| {
            props
                .iter()
                .find(|p| p.property as u32 == pt)
                .map(|p| p.value.value())
                .ok_or(Error::Malformed("a property is missing"))
        };
        Ok(Identity {
            manufacturer: find(PT_MANUFACTURER)?.to_be_bytes(),
            firmware: (find(PT_FIRMWARE_VERSION_1)?, find(PT_FIRMWARE_VERSION_2)?),
        })
    }

    /// PCR `pcr` in bank `alg` (TPM2_PCR_Read); the TPM must return exactly that PCR.
    pub fn pcr_read(&mut self, alg: u16, pcr: u8) -> Result<Digest, Error> {
        let sel = selection(alg, pcr)?;
        let c = TpmPcrReadCommand {
            handles: [],
            pcr_selection_in: sel,
        };
        let r: TpmPcrReadResponse = self.run(&c, &[])?;
        if r.pcr_selection_out != sel {
            return Err(Error::Malformed("another PCR selection than asked"));
        }
        let [d] = &r.pcr_values[..] else {
            return Err(Error::Malformed("not exactly one PCR value"));
        };
        let want = match alg {
            0x0004 => 20,
            0x000b | 0x0012 => 32,
            0x000c => 48,
            0x000d => 64,
            _ => return Err(Error::Argument("unknown digest size")),
        };
        if d.len() != want {
            return Err(Error::Malformed("digest size is not the bank's"));
        }
        let mut out = Digest {
            bytes: [0; 64],
            len: want,
        };
        out.bytes[..want].copy_from_slice(d);
        Ok(out)
    }

    /// Extends PCR `pcr`'s SHA-256 bank with `digest` (TPM2_PCR_Extend, password session).
    pub fn pcr_extend_sha256(&mut self, pcr: u8, digest: &[u8; 32]) -> Result<(), Error> {
        self.pcr_extend(pcr, &[(ALG_SHA256, &digest[..])])
    }

    /// TPM2_PCR_Extend of `pcr` with one digest per bank, (algorithm, digest): a measured-boot
    /// event extends every active bank at once.
    pub fn pcr_extend(&mut self, pcr: u8, banks: &[(u16, &[u8])]) -> Result<(), Error> {
        if pcr > 23 {
            return Err(Error::Argument("PCR index above 23"));
        }
        let mut digests = TpmlDigestValues::default();
        for (alg, d) in banks {
            if digest_size(*alg) != Some(d.len()) {
                return Err(Error::Argument("a digest of the wrong size for its bank"));
            }
            digests
                .try_push(TpmtHa {
                    hash_alg: TpmAlgId::try_from(*alg)
                        .map_err(|_| Error::Argument("unknown algorithm"))?,
                    digest: TpmuHa::Digest(TpmBuffer::try_from(*d).map_err(marshal_err)?),
                })
                .map_err(marshal_err)?;
        }
        let c = TpmPcrExtendCommand {
            handles: [TpmHandle::new(u32::from(pcr))],
            digests,
        };
        self.run::<_, TpmPcrExtendResponse>(&c, &[password_session()])
            .map(|_| ())
    }

    /// Up to `out.len()` (at most 32) random bytes (TPM2_GetRandom); returns how many came.
    pub fn get_random(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let n = out.len().min(32);
        let c = TpmGetRandomCommand {
            handles: [],
            bytes_requested: TpmUint16::new(n as u16),
        };
        let r: TpmGetRandomResponse = self.run(&c, &[])?;
        let got = &r.random_bytes[..];
        if got.len() > n {
            return Err(Error::Malformed("more random bytes than asked"));
        }
        out[..got.len()].copy_from_slice(got);
        Ok(got.len())
    }

    /// Creates the attestation key: TPM2_CreatePrimary in the endorsement hierarchy with
    /// [`ak_template`] (a restricted ECDSA P-256 signing key, as `tpm2_createak -G ecc` makes
    /// it). A primary key is derived from the hierarchy's seed and the template, so the same
    /// TPM gives the same AK every boot. Returns its transient handle and its public area.
    pub fn create_ak(&mut self) -> Result<Ak, Error> {
        let c = TpmCreatePrimaryCommand {
            handles: [TpmHandle::new(TPM_RH_ENDORSEMENT)],
            in_sensitive: Tpm2bSensitiveCreate::default(),
            in_public: Tpm2bPublic {
                inner: ak_template(),
            },
            outside_info: Tpm2bData::default(),
            creation_pcr: TpmlPcrSelection::default(),
        };
        let r: TpmCreatePrimaryResponse = self.run(&c, &[password_session()])?;
        let p = &r.out_public.inner;
        let t = ak_template();
        if p.object_type != t.object_type
            || p.name_alg != t.name_alg
            || p.object_attributes != t.object_attributes
            || p.parameters != t.parameters
        {
            return Err(Error::Malformed(
                "the AK is not the key the template asked for",
            ));
        }
        let TpmuPublicId::Ecc(point) = &p.unique else {
            return Err(Error::Malformed("the AK has no ECC point"));
        };
        if point.x.len() != 32 || point.y.len() != 32 {
            return Err(Error::Malformed("the AK's point is not P-256"));
        }
        let public = to_bytes(&r.out_public)?;
        let handle = r.handles[0].value();
        Ok(Ak { handle, public })
    }

    /// TPM2_Quote: the AK signs the SHA-256 bank's PCRs in `pcrs` (a bit per PCR 0..=23) with
    /// `nonce` as qualifying data. Returns the attestation structure and the signature, as
    /// `tpm2_quote` writes them (`-m`, `-s`) and `tpm2_checkquote` reads them.
    pub fn quote(&mut self, ak: u32, nonce: &[u8], pcrs: u32) -> Result<Quote, Error> {
        if nonce.len() > 64 {
            return Err(Error::Argument("nonce longer than a digest"));
        }
        let bits = pcrs.to_le_bytes();
        let mut sel = TpmlPcrSelection::default();
        sel.try_push(TpmsPcrSelection {
            hash: TpmAlgId::Sha256,
            pcr_select: TpmsPcrSelect::try_from(&bits[..3]).map_err(marshal_err)?,
        })
        .map_err(marshal_err)?;
        let c = TpmQuoteCommand {
            handles: [TpmHandle::new(ak)],
            qualifying_data: Tpm2bData::try_from(nonce).map_err(marshal_err)?,
            in_scheme: TpmtSigScheme::default(),
            pcr_select: sel,
        };
        let r: TpmQuoteResponse = self.run(&c, &[password_session()])?;
        // What was promised: a quote (TPM_ST_ATTEST_QUOTE) over our nonce, signed with ECDSA.
        if r.quoted.inner.attest_type != TpmSt::AttestQuote {
            return Err(Error::Malformed("the attestation is not a quote"));
        }
        if &r.quoted.inner.extra_data[..] != nonce {
            return Err(Error::Malformed("the quote is over another nonce"));
        }
        // The TPM2B's size, then TPMS_ATTEST.
        let mut attest = to_bytes(&r.quoted)?;
        attest.drain(..2);
        if r.signature.sig_alg != TpmAlgId::Ecdsa {
            return Err(Error::Malformed("the quote is not signed with ECDSA"));
        }
        let signature = to_bytes(&r.signature)?;
        Ok(Quote { attest, signature })
    }

    /// TPM2_ReadPublic: an object's public area as TPM2B_PUBLIC (the EK's, at its persistent
    /// handle).
    pub fn read_public(&mut self, handle: u32) -> Result<alloc::vec::Vec<u8>, Error> {
        let c = TpmReadPublicCommand {
            handles: [TpmHandle::new(handle)],
        };
        let r: TpmReadPublicResponse = self.run(&c, &[])?;
        to_bytes(&r.out_public)
    }

    /// An NV index's whole contents (TPM2_NV_ReadPublic for its size, then TPM2_NV_Read in
    /// chunks, authorised by the index itself with an empty password, as the EK certificate's
    /// index allows: TPMA_NV_AUTHREAD). Refused when larger than `max`.
    pub fn nv_read_all(&mut self, index: u32, max: usize) -> Result<alloc::vec::Vec<u8>, Error> {
        const CHUNK: u16 = 512;
        let c = TpmNvReadPublicCommand {
            handles: [TpmHandle::new(index)],
        };
        let r: TpmNvReadPublicResponse = self.run(&c, &[])?;
        let size = usize::from(r.nv_public.inner.data_size.value());
        if size > max {
            return Err(Error::Malformed("NV index larger than allowed"));
        }
        let mut out = alloc::vec::Vec::with_capacity(size);
        while out.len() < size {
            let n = (size - out.len()).min(usize::from(CHUNK)) as u16;
            let c = TpmNvReadCommand {
                handles: [TpmHandle::new(index), TpmHandle::new(index)],
                size: TpmUint16::new(n),
                offset: TpmUint16::new(out.len() as u16),
            };
            let r: TpmNvReadResponse = self.run(&c, &[password_session()])?;
            if r.data.len() != usize::from(n) {
                return Err(Error::Malformed("NV_Read returned another size than asked"));
            }
            out.extend_from_slice(&r.data);
        }
        Ok(out)
    }

    /// TPM2_ActivateCredential (Part 3 §12.5): the TPM decrypts `credential` (made by a
    /// verifier against the EK's public key and the AK's name) with the EK and releases the
    /// secret only if the AK with that name is loaded in this TPM. The EK's authorisation is
    /// its policy, PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile §2.1.5): a
    /// policy session, unbound and unsalted, used once.
    pub fn activate_credential(
        &mut self,
        ak: u32,
        ek: u32,
        credential: &Credential,
    ) -> Result<alloc::vec::Vec<u8>, Error> {
        let nonce_caller = [0x5a; 16];
        let c = TpmStartAuthSessionCommand {
            handles: [TpmHandle::new(TPM_RH_NULL), TpmHandle::new(TPM_RH_NULL)],
            nonce_caller: Tpm2bNonce::try_from(&nonce_caller[..]).map_err(marshal_err)?,
            encrypted_salt: Tpm2bEncryptedSecret::default(),
            session_type: TpmSe::Policy,
            symmetric: TpmtSymDefObject {
                algorithm: TpmAlgId::Null,
                key_bits: TpmuSymKeyBits::Null,
                mode: TpmuSymMode::Null,
            },
            auth_hash: TpmAlgId::Sha256,
        };
        let r: TpmStartAuthSessionResponse = self.run(&c, &[])?;
        let session = r.handles[0].value();
        let activated = (|| {
            let c = TpmPolicySecretCommand {
                handles: [TpmHandle::new(TPM_RH_ENDORSEMENT), TpmHandle::new(session)],
                nonce_tpm: Tpm2bNonce::default(),
                cp_hash_a: Tpm2bDigest::default(),
                policy_ref: Tpm2bNonce::default(),
                expiration: TpmInt32::new(0),
            };
            self.run::<_, TpmPolicySecretResponse>(&c, &[password_session()])?;
            let c = TpmActivateCredentialCommand {
                handles: [TpmHandle::new(ak), TpmHandle::new(ek)],
                credential_blob: Tpm2bIdObject::try_from(&credential.blob[..])
                    .map_err(marshal_err)?,
                secret: Tpm2bEncryptedSecret::try_from(&credential.secret[..])
                    .map_err(marshal_err)?,
            };
            // The AK (ADMIN role) with its empty password; the EK with the policy session,
            // which ends with this command (continueSession clear).
            let policy = TpmsAuthCommand {
                session_handle: TpmHandle::new(session),
                nonce: Tpm2bNonce::try_from(&nonce_caller[..]).map_err(marshal_err)?,
                session_attributes: TpmaSession::default(),
                hmac: Tpm2bAuth::default(),
            };
            let r: TpmActivateCredentialResponse = self.run(&c, &[password_session(), policy])?;
            Ok(r.cert_info.to_vec())
        })();
        if activated.is_err() {
            // The session is still loaded when a command before its last use failed.
            let _ = self.flush(session);
        }
        activated
    }

    /// TPM2_FlushContext: frees a transient object (the AK once the quote is made).
    pub fn flush(&mut self, handle: u32) -> Result<(), Error> {
        let c = TpmFlushContextCommand {
            handles: [],
            flush_handle: TpmHandle::new(handle),
        };
        self.run::<_, TpmFlushContextResponse>(&c, &[]).map(|_| ())
    }
}

/// TPM_RH_ENDORSEMENT (Part 2 §7.4).
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000b;
/// TPM_RH_NULL.
const TPM_RH_NULL: u32 = 0x4000_0007;
/// The RSA-2048 EK's persistent handle (TCG EK Credential Profile §2.2.1.5; where
/// `swtpm_setup --create-ek-cert` leaves it).
pub const EK_RSA_HANDLE: u32 = 0x8101_0001;
/// The NV index of the RSA-2048 EK certificate (TCG EK Credential Profile §2.2.1.5).
pub const EK_RSA_CERT_INDEX: u32 = 0x01c0_0002;

/// A credential a verifier made (TPM2_MakeCredential's output): the encrypted credential and
/// the seed encrypted to the EK, each the TPM2B's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// TPM2B_ID_OBJECT's buffer.
    pub blob: alloc::vec::Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET's buffer.
    pub secret: alloc::vec::Vec<u8>,
}

impl Credential {
    /// Reads the file `tpm2_makecredential -o` writes: the magic 0xBADCC0DE and version 1
    /// (big-endian u32s), then TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. Every size checked.
    pub fn parse(b: &[u8]) -> Result<Credential, Error> {
        let bad = Error::Malformed;
        if b.get(..8) != Some(&[0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1][..]) {
            return Err(bad("not a tpm2_makecredential file (magic, version 1)"));
        }
        let take = |b: &[u8], max: usize| -> Result<(alloc::vec::Vec<u8>, usize), Error> {
            let n = usize::from(u16::from_be_bytes([
                *b.first().ok_or(bad("truncated"))?,
                *b.get(1).ok_or(bad("truncated"))?,
            ]));
            if n == 0 || n > max {
                return Err(bad("a TPM2B of an impossible size"));
            }
            Ok((b.get(2..2 + n).ok_or(bad("truncated"))?.to_vec(), 2 + n))
        };
        let (blob, used) = take(&b[8..], 2 * (64 + 2))?;
        let (secret, used2) = take(&b[8 + used..], 512)?;
        if 8 + used + used2 != b.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(Credential { blob, secret })
    }
}

/// The attestation key the TPM made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ak {
    /// Its transient handle.
    pub handle: u32,
    /// Its public area as TPM2B_PUBLIC (what `tpm2_createak -u` writes).
    pub public: alloc::vec::Vec<u8>,
}

/// A quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// TPMS_ATTEST (the TPM2B's contents).
    pub attest: alloc::vec::Vec<u8>,
    /// TPMT_SIGNATURE.
    pub signature: alloc::vec::Vec<u8>,
}

/// The AK template: ECC NIST P-256, SHA-256 names, fixedTPM | fixedParent |
/// sensitiveDataOrigin | userWithAuth | restricted | sign, ECDSA with SHA-256, no symmetric
/// key, no KDF, an empty unique point (Part 2 §12.2; the attributes `tpm2_createak` gives an
/// ECC AK).
pub fn ak_template() -> TpmtPublic {
    TpmtPublic {
        object_type: TpmAlgId::Ecc,
        name_alg: TpmAlgId::Sha256,
        object_attributes: TpmaObject::FIXED_TPM
            | TpmaObject::FIXED_PARENT
            | TpmaObject::SENSITIVE_DATA_ORIGIN
            | TpmaObject::USER_WITH_AUTH
            | TpmaObject::RESTRICTED
            | TpmaObject::SIGN_ENCRYPT,
        auth_policy: Tpm2bDigest::default(),
        parameters: TpmuPublicParms::Ecc(TpmsEccParms {
            symmetric: TpmtSymDefObject {
                algorithm: TpmAlgId::Null,
                key_bits: TpmuSymKeyBits::Null,
                mode: TpmuSymMode::Null,
            },
            scheme: TpmtEccScheme {
                scheme: TpmAlgId::Ecdsa,
                details: TpmuAsymScheme::Hash(TpmsSchemeHash {
                    hash_alg: TpmAlgId::Sha256,
                }),
            },
            curve_id: TpmEccCurve::NistP256,
            kdf: TpmtKdfScheme::default(),
        }),
        unique: TpmuPublicId::Ecc(TpmsEccPoint::default()),
    }
}

#[cfg(test)]
mod tests;
