//! FF-A (Arm DEN0077A v1.0–v1.2) ABI pieces shared by every side of Catena: function IDs,
//! status codes, version rules, UUIDs in registers, partition information descriptors and
//! memory transaction descriptors in all three layouts.
//!
//! `arm-ffa` 0.5 supplies [`Version`] and [`FfaError`]. Its descriptor code is not used for
//! parsing: it accepts only the v1.1+ transaction layout with one fixed endpoint-descriptor
//! size, so it cannot read what v1.0 and v1.1 callers send, and it leaves the checks an SPMC
//! must make (constituent overlap, page totals, per-EMAD composite offsets) to the caller.
//! [`mem`] parses v1.0, v1.1 and v1.2 descriptors with those checks, on bytes only.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod mem;
pub mod partinfo;

pub use arm_ffa::{FfaError, Version};

/// The 64-bit forms arm-ffa 0.5.0 packs and unpacks as 18 registers whatever the version.
fn eighteen(f: arm_ffa::FuncId) -> bool {
    use arm_ffa::FuncId as F;
    matches!(
        f,
        F::Success64 | F::MsgSendDirectReq64 | F::MsgSendDirectResp64
    )
}

/// `arm_ffa::Interface::from_regs`, made safe for outside input. arm-ffa 0.5.0 *asserts*
/// (panics) when FFA_SUCCESS64 or a 64-bit direct request/response arrives at a version below
/// 1.2; those calls carry x0–x7 there (DEN0077A v1.1 §11.2), so they are decoded as v1.2 with
/// x8–x17 cleared, which is the same message.
pub fn decode(version: Version, x: &[u64; 18]) -> Result<arm_ffa::Interface, arm_ffa::Error> {
    let f = arm_ffa::FuncId::try_from(x[0] as u32)?;
    if version < V1_2 && eighteen(f) {
        let mut r = *x;
        r[8..].fill(0);
        return arm_ffa::Interface::from_regs(V1_2, &r);
    }
    arm_ffa::Interface::from_regs(version, x)
}

/// `arm_ffa::Interface::to_regs`, without its panic for the same calls below v1.2 (see
/// [`decode`]): encoded as v1.2, x8–x17 cleared.
pub fn encode(version: Version, i: &arm_ffa::Interface) -> [u64; 18] {
    let mut x = [0u64; 18];
    if version < V1_2 && i.function_id().is_some_and(eighteen) {
        i.to_regs(V1_2, &mut x);
        x[8..].fill(0);
    } else {
        i.to_regs(version, &mut x);
    }
    x
}

/// The FF-A status for a call the typed layer (`arm_ffa::Interface::from_regs`) refused.
///
/// Not arm-ffa's own `From<arm_ffa::Error> for FfaError`: in arm-ffa 0.5.0 its arms for
/// `MemoryManagementError`, `NotificationError` and `PartitionInfoError` call `value.into()` on
/// the outer error — itself — and recurse until the stack overflows (found by the SPMC's tests:
/// a PARTITION_INFO_GET with a reserved flag bit set). Those three are malformed arguments:
/// INVALID_PARAMETERS; the rest keep arm-ffa's mapping.
pub fn status_of(e: arm_ffa::Error) -> FfaError {
    use arm_ffa::Error as E;
    match e {
        E::MemoryManagementError(_) | E::NotificationError(_) | E::PartitionInfoError(_) => {
            FfaError::InvalidParameters
        }
        other => other.into(),
    }
}

/// FF-A function IDs used by Catena (DEN0077A v1.2 table 13.1 ff.).
pub mod fid {
    /// FFA_ERROR.
    pub const ERROR: u32 = 0x8400_0060;
    /// FFA_SUCCESS (32-bit results).
    pub const SUCCESS32: u32 = 0x8400_0061;
    /// FFA_SUCCESS (64-bit results).
    pub const SUCCESS64: u32 = 0xC400_0061;
    /// FFA_INTERRUPT.
    pub const INTERRUPT: u32 = 0x8400_0062;
    /// FFA_VERSION.
    pub const VERSION: u32 = 0x8400_0063;
    /// FFA_FEATURES.
    pub const FEATURES: u32 = 0x8400_0064;
    /// FFA_RX_RELEASE.
    pub const RX_RELEASE: u32 = 0x8400_0065;
    /// FFA_RXTX_MAP (32-bit).
    pub const RXTX_MAP32: u32 = 0x8400_0066;
    /// FFA_RXTX_MAP (64-bit).
    pub const RXTX_MAP64: u32 = 0xC400_0066;
    /// FFA_RXTX_UNMAP.
    pub const RXTX_UNMAP: u32 = 0x8400_0067;
    /// FFA_PARTITION_INFO_GET.
    pub const PARTITION_INFO_GET: u32 = 0x8400_0068;
    /// FFA_ID_GET.
    pub const ID_GET: u32 = 0x8400_0069;
    /// FFA_MSG_WAIT.
    pub const MSG_WAIT: u32 = 0x8400_006B;
    /// FFA_YIELD.
    pub const YIELD: u32 = 0x8400_006C;
    /// FFA_RUN.
    pub const RUN: u32 = 0x8400_006D;
    /// FFA_MSG_SEND_DIRECT_REQ (32-bit).
    pub const DIRECT_REQ32: u32 = 0x8400_006F;
    /// FFA_MSG_SEND_DIRECT_REQ (64-bit).
    pub const DIRECT_REQ64: u32 = 0xC400_006F;
    /// FFA_MSG_SEND_DIRECT_RESP (32-bit).
    pub const DIRECT_RESP32: u32 = 0x8400_0070;
    /// FFA_MSG_SEND_DIRECT_RESP (64-bit).
    pub const DIRECT_RESP64: u32 = 0xC400_0070;
    /// FFA_MEM_DONATE (32-bit).
    pub const MEM_DONATE32: u32 = 0x8400_0071;
    /// FFA_MEM_DONATE (64-bit).
    pub const MEM_DONATE64: u32 = 0xC400_0071;
    /// FFA_MEM_LEND (32-bit).
    pub const MEM_LEND32: u32 = 0x8400_0072;
    /// FFA_MEM_LEND (64-bit).
    pub const MEM_LEND64: u32 = 0xC400_0072;
    /// FFA_MEM_SHARE (32-bit).
    pub const MEM_SHARE32: u32 = 0x8400_0073;
    /// FFA_MEM_SHARE (64-bit).
    pub const MEM_SHARE64: u32 = 0xC400_0073;
    /// FFA_MEM_RETRIEVE_REQ (32-bit).
    pub const MEM_RETRIEVE_REQ32: u32 = 0x8400_0074;
    /// FFA_MEM_RETRIEVE_REQ (64-bit).
    pub const MEM_RETRIEVE_REQ64: u32 = 0xC400_0074;
    /// FFA_MEM_RETRIEVE_RESP.
    pub const MEM_RETRIEVE_RESP: u32 = 0x8400_0075;
    /// FFA_MEM_RELINQUISH.
    pub const MEM_RELINQUISH: u32 = 0x8400_0076;
    /// FFA_MEM_RECLAIM.
    pub const MEM_RECLAIM: u32 = 0x8400_0077;
    /// FFA_MEM_FRAG_RX.
    pub const MEM_FRAG_RX: u32 = 0x8400_007A;
    /// FFA_MEM_FRAG_TX.
    pub const MEM_FRAG_TX: u32 = 0x8400_007B;
    /// FFA_SPM_ID_GET (v1.1).
    pub const SPM_ID_GET: u32 = 0x8400_0085;
    /// FFA_PARTITION_INFO_GET_REGS (v1.2, 64-bit only).
    pub const PARTITION_INFO_GET_REGS: u32 = 0xC400_008B;
    /// FFA_MSG_SEND_DIRECT_REQ2 (v1.2, 64-bit only).
    pub const DIRECT_REQ2: u32 = 0xC400_008D;
    /// FFA_MSG_SEND_DIRECT_RESP2 (v1.2, 64-bit only).
    pub const DIRECT_RESP2: u32 = 0xC400_008E;

    /// Whether `f` is an FF-A function ID (fast call, standard secure service, 0x60–0xFF;
    /// DEN0077A v1.2 §13.1, widened from 0x7F as pKVM does).
    pub const fn is_ffa(f: u32) -> bool {
        let f = f & !(1 << 16); // SMCCC SVE hint
        let num = f & 0xffff;
        (f & 0xbfff_0000) == 0x8400_0000 && num >= 0x60 && num <= 0xff
    }

    /// Whether `f` uses the SMC64 convention.
    pub const fn is_64(f: u32) -> bool {
        f & (1 << 30) != 0
    }

    /// A name for logs and events.
    pub fn name(f: u32) -> &'static str {
        match f & !(1 << 16) {
            ERROR => "FFA_ERROR",
            SUCCESS32 | SUCCESS64 => "FFA_SUCCESS",
            VERSION => "FFA_VERSION",
            FEATURES => "FFA_FEATURES",
            RX_RELEASE => "FFA_RX_RELEASE",
            RXTX_MAP32 | RXTX_MAP64 => "FFA_RXTX_MAP",
            RXTX_UNMAP => "FFA_RXTX_UNMAP",
            PARTITION_INFO_GET => "FFA_PARTITION_INFO_GET",
            PARTITION_INFO_GET_REGS => "FFA_PARTITION_INFO_GET_REGS",
            ID_GET => "FFA_ID_GET",
            SPM_ID_GET => "FFA_SPM_ID_GET",
            DIRECT_REQ32 | DIRECT_REQ64 => "FFA_MSG_SEND_DIRECT_REQ",
            DIRECT_RESP32 | DIRECT_RESP64 => "FFA_MSG_SEND_DIRECT_RESP",
            DIRECT_REQ2 => "FFA_MSG_SEND_DIRECT_REQ2",
            DIRECT_RESP2 => "FFA_MSG_SEND_DIRECT_RESP2",
            MEM_SHARE32 | MEM_SHARE64 => "FFA_MEM_SHARE",
            MEM_LEND32 | MEM_LEND64 => "FFA_MEM_LEND",
            MEM_DONATE32 | MEM_DONATE64 => "FFA_MEM_DONATE",
            MEM_RETRIEVE_REQ32 | MEM_RETRIEVE_REQ64 => "FFA_MEM_RETRIEVE_REQ",
            MEM_RETRIEVE_RESP => "FFA_MEM_RETRIEVE_RESP",
            MEM_RELINQUISH => "FFA_MEM_RELINQUISH",
            MEM_RECLAIM => "FFA_MEM_RECLAIM",
            MEM_FRAG_RX => "FFA_MEM_FRAG_RX",
            MEM_FRAG_TX => "FFA_MEM_FRAG_TX",
            MSG_WAIT => "FFA_MSG_WAIT",
            YIELD => "FFA_YIELD",
            RUN => "FFA_RUN",
            INTERRUPT => "FFA_INTERRUPT",
            _ => "FFA_OTHER",
        }
    }
}

/// FF-A v1.0.
pub const V1_0: Version = Version(1, 0);
/// FF-A v1.1.
pub const V1_1: Version = Version(1, 1);
/// FF-A v1.2.
pub const V1_2: Version = Version(1, 2);

/// The version word for FFA_VERSION (bit 31 MBZ, major 30:16, minor 15:0).
pub fn version_word(v: Version) -> u32 {
    (u32::from(v.0) << 16) | u32::from(v.1)
}

/// Parses an FFA_VERSION argument; `None` when bit 31 is set.
pub fn parse_version(w: u32) -> Option<Version> {
    (w & (1 << 31) == 0).then_some(Version((w >> 16) as u16, w as u16))
}

/// NOT_SUPPORTED as FFA_VERSION returns it (in w0, not as FFA_ERROR).
pub const VERSION_NOT_SUPPORTED: u64 = 0xffff_ffff;

/// The NS physical FF-A instance's ID (the host kernel, or the hypervisor acting for it).
pub const NS_ID: u16 = 0;
/// Catena's SPMC ID (bit 15 set: a secure endpoint).
pub const SPMC_ID: u16 = 0x8000;

/// FF-A pages are 4 KiB.
pub const PAGE: u64 = 4096;

/// A UUID as the 16 bytes FF-A carries.
pub type Uuid = [u8; 16];

/// The Nil UUID.
pub const NIL_UUID: Uuid = [0; 16];

/// A UUID from its four little-endian 32-bit register words (PARTITION_INFO_GET w1–w4).
pub fn uuid_from_words(w: [u32; 4]) -> Uuid {
    let mut u = [0u8; 16];
    for (i, word) in w.iter().enumerate() {
        u[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    u
}

/// The four little-endian 32-bit register words of a UUID.
pub fn uuid_to_words(u: &Uuid) -> [u32; 4] {
    core::array::from_fn(|i| {
        u32::from_le_bytes([u[i * 4], u[i * 4 + 1], u[i * 4 + 2], u[i * 4 + 3]])
    })
}

/// A UUID from two little-endian 64-bit registers (REQ2 x2/x3, PARTITION_INFO_GET_REGS x1/x2).
pub fn uuid_from_regs(lo: u64, hi: u64) -> Uuid {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&lo.to_le_bytes());
    u[8..].copy_from_slice(&hi.to_le_bytes());
    u
}

/// The two 64-bit registers of a UUID.
pub fn uuid_to_regs(u: &Uuid) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&u[..8]);
    hi.copy_from_slice(&u[8..]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("UUID text has a non-hex digit"),
    }
}

/// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into bytes (RFC 4122 byte order).
pub const fn uuid(s: &str) -> Uuid {
    let b = s.as_bytes();
    assert!(b.len() == 36, "UUID text is 36 characters");
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        if b[i] == b'-' {
            i += 1;
            continue;
        }
        out[n] = (hex(b[i]) << 4) | hex(b[i + 1]);
        n += 1;
        i += 2;
    }
    assert!(n == 16, "UUID text has 32 hex digits");
    out
}

/// Formats a UUID as text.
pub fn uuid_text(u: &Uuid) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Partition properties bits (DEN0077A v1.2 table 6.2 and §6.2.1).
pub mod props {
    /// Can receive direct requests.
    pub const DIRECT_REQ_RECV: u32 = 1 << 0;
    /// Can send direct requests.
    pub const DIRECT_REQ_SEND: u32 = 1 << 1;
    /// Runs in AArch64 state.
    pub const AARCH64: u32 = 1 << 8;
    /// Can receive FFA_MSG_SEND_DIRECT_REQ2 (v1.2).
    pub const DIRECT_REQ2_RECV: u32 = 1 << 9;
    /// Can send FFA_MSG_SEND_DIRECT_REQ2 (v1.2).
    pub const DIRECT_REQ2_SEND: u32 = 1 << 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_versions_decode_64_bit_messages_without_panicking() {
        let mut x = [0u64; 18];
        x[0] = u64::from(fid::DIRECT_REQ64);
        x[1] = 0x8001;
        x[3] = 7;
        x[9] = 0xdead; // not part of a v1.1 request
        for v in [V1_0, V1_1, V1_2] {
            let i = decode(v, &x).unwrap();
            let back = encode(v, &i);
            assert_eq!(back[3], 7);
            assert_eq!(back[9], if v < V1_2 { 0 } else { 0xdead }, "{v}");
        }
        let mut s = [0u64; 18];
        s[0] = u64::from(fid::SUCCESS64);
        s[2] = 42;
        assert!(decode(V1_0, &s).is_ok());
        // Not a function at all: an error, not a panic.
        assert!(decode(V1_1, &[0; 18]).is_err());
    }

    #[test]
    fn refused_calls_map_to_a_status_without_recursing() {
        use arm_ffa::Error as E;
        // These three recurse forever in arm-ffa 0.5.0's own conversion.
        assert_eq!(
            status_of(E::PartitionInfoError(
                arm_ffa::partition_info::Error::InvalidPartitionInfoGetFlag(2)
            )),
            FfaError::InvalidParameters
        );
        assert_eq!(
            status_of(E::MemoryManagementError(
                arm_ffa::memory_management::Error::InvalidMemReclaimFlags(8)
            )),
            FfaError::InvalidParameters
        );
        assert_eq!(
            status_of(E::UnrecognisedFunctionId(0x8400_00ff)),
            FfaError::NotSupported
        );
    }

    #[test]
    fn function_ids() {
        assert!(fid::is_ffa(fid::VERSION));
        assert!(fid::is_ffa(fid::DIRECT_REQ2));
        assert!(fid::is_ffa(0x8400_00ff));
        assert!(!fid::is_ffa(0x8400_005f));
        assert!(!fid::is_ffa(0x8400_0000)); // PSCI
        assert!(!fid::is_ffa(0x8400_0100));
        assert!(fid::is_ffa(fid::DIRECT_REQ2 | (1 << 16)));
        assert!(fid::is_64(fid::MEM_SHARE64) && !fid::is_64(fid::MEM_SHARE32));
        assert_eq!(fid::name(fid::RXTX_MAP32), "FFA_RXTX_MAP");
    }

    #[test]
    fn versions_and_uuids() {
        assert_eq!(version_word(V1_2), 0x1_0002);
        assert_eq!(parse_version(0x1_0001), Some(V1_1));
        assert_eq!(parse_version(0x8001_0001), None);
        let u = uuid("6b0e7f3c-2d4a-4e5b-9c8d-c47e1a5f0b21");
        assert_eq!(u[0], 0x6b);
        assert_eq!(u[15], 0x21);
        assert_eq!(uuid_text(&u), "6b0e7f3c-2d4a-4e5b-9c8d-c47e1a5f0b21");
        assert_eq!(uuid_from_words(uuid_to_words(&u)), u);
        let (lo, hi) = uuid_to_regs(&u);
        assert_eq!(uuid_from_regs(lo, hi), u);
        assert_eq!(uuid_to_words(&u)[0], 0x3c7f_0e6b);
    }
}

/// The protocol of Catena's test partition (firmware) and its driver (kernel).
pub mod testsp {
    use crate::Uuid;

    /// Partition ID.
    pub const ID: u16 = 0x8001;
    /// Its primary UUID.
    pub const UUID: Uuid = crate::uuid("6b0e7f3c-2d4a-4e5b-9c8d-c47e1a5f0b21");
    /// A second service UUID it also answers on.
    pub const UUID_ALT: Uuid = crate::uuid("0d2e6a8b-93c1-4f07-b5a4-1e9c7d3f6a52");
    /// Direct request (w3): retrieve the handle in w4 (low half) and w5 (high half), checksum
    /// the memory, mark it, relinquish. Response: [CMD_MEM_CHECK, status (0 or an FF-A error
    /// code), checksum, bytes, 0] (a 32-bit call returns the checksum's low half).
    pub const CMD_MEM_CHECK: u64 = 0x4d45_4d43;
    /// Direct request 2 (x4): answer with the UUID the request was addressed to in x5/x6.
    pub const CMD_WHOAMI: u64 = 0x5748_4f41;
    /// What the partition writes at offset 0 of memory it checked.
    pub const MARKER: [u8; 8] = *b"CATENASP";

    /// FNV-1a (64-bit) over bytes, streamed: start with [`CHECKSUM_INIT`].
    pub fn checksum(mut h: u64, bytes: &[u8]) -> u64 {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// FNV-1a offset basis.
    pub const CHECKSUM_INIT: u64 = 0xcbf2_9ce4_8422_2325;
}
