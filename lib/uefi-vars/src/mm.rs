//! EDK2's SMM variable protocol in MM communicate messages (`MdeModulePkg/Include/Guid/
//! SmmVariableCommon.h`; U-Boot `include/mm_communication.h` mirrors it), as U-Boot's
//! `efi_variable_tee.c` and Trusted Services' smm-gateway use it over FF-A: the direct
//! request's x3 is the offset of an `EFI_MM_COMMUNICATE_HEADER` in a shared buffer, the
//! reply's x3 an MM return code, the variable-level status in the message's
//! `SMM_VARIABLE_COMMUNICATE_HEADER.ReturnStatus`.
//!
//! [`communicate`] takes one copy of the message (the partition copies it out of normal-world
//! memory once), reads each field from that copy once, and returns the whole reply message
//! for the partition to copy back: nothing the normal world changes meanwhile is seen.
//!
//! Layouts (AArch64, UINTN = 8 bytes, little-endian, packed):
//!
//! | structure | fields (offset) |
//! |---|---|
//! | EFI_MM_COMMUNICATE_HEADER | HeaderGuid (0), MessageLength (16), Data (24) |
//! | SMM_VARIABLE_COMMUNICATE_HEADER | Function (0), ReturnStatus (8), Data (16) |
//! | ..._ACCESS_VARIABLE | Guid (0), DataSize (16), NameSize (24), Attributes (32), Name (36), data after the name |
//! | ..._GET_NEXT_VARIABLE_NAME, ..._LOCK_VARIABLE | Guid (0), NameSize (16), Name (24) |
//! | ..._QUERY_VARIABLE_INFO | MaximumVariableStorageSize (0), RemainingVariableStorageSize (8), MaximumVariableSize (16), Attributes (24) |
//! | ..._GET_PAYLOAD_SIZE | VariablePayloadSize (0) |
//! | ..._VAR_CHECK_VARIABLE_PROPERTY | Guid (0), NameSize (16), VariableProperty { Revision (24), Property (26), Attributes (28), MinSize (32), MaxSize (40) }, Name (48) |

use crate::{PROPERTY_READ_ONLY, PROPERTY_REVISION, Property, Vars, guid, status};
use alloc::vec::Vec;
use varstore::Flash;

/// MM return codes in the reply's x3 (EDK2 `ArmMmSvc.h`, as U-Boot maps them).
pub mod rc {
    /// Done; the variable status is in the message.
    pub const SUCCESS: i64 = 0;
    /// Not a message for this service (an unknown header GUID).
    pub const NOT_SUPPORTED: i64 = -1;
    /// The offset or the message length does not fit the buffer.
    pub const INVALID_PARAMETER: i64 = -2;
    /// Refused.
    pub const DENIED: i64 = -3;
    /// No memory.
    pub const NO_MEMORY: i64 = -5;
}

/// gEfiSmmVariableProtocolGuid: the header GUID of variable messages (also the partition's
/// FF-A UUID, in RFC byte order, `ed32d533-99e6-4209-9cc0-2d72cdd998a7`).
pub const SMM_VARIABLE_GUID: [u8; 16] = guid("ed32d533-99e6-4209-9cc0-2d72cdd998a7");

/// Bytes of `EFI_MM_COMMUNICATE_HEADER` before its data.
pub const COMM_HEADER: usize = 24;
/// Bytes of `SMM_VARIABLE_COMMUNICATE_HEADER` before its data.
pub const VAR_HEADER: usize = 16;
/// `OFFSET_OF(SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE, Name)`.
pub const ACCESS_NAME: usize = 36;
/// `OFFSET_OF(SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME, Name)`.
pub const NEXT_NAME: usize = 24;
/// `OFFSET_OF(SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY, Name)`.
pub const PROPERTY_NAME: usize = 48;

/// SMM_VARIABLE_FUNCTION_* numbers.
pub mod func {
    /// GetVariable.
    pub const GET_VARIABLE: u64 = 1;
    /// GetNextVariableName.
    pub const GET_NEXT_VARIABLE_NAME: u64 = 2;
    /// SetVariable.
    pub const SET_VARIABLE: u64 = 3;
    /// QueryVariableInfo.
    pub const QUERY_VARIABLE_INFO: u64 = 4;
    /// The ReadyToBoot event.
    pub const READY_TO_BOOT: u64 = 5;
    /// The ExitBootServices event.
    pub const EXIT_BOOT_SERVICE: u64 = 6;
    /// Statistics (not offered).
    pub const GET_STATISTICS: u64 = 7;
    /// EDKII_VARIABLE_LOCK_PROTOCOL's RequestToLock.
    pub const LOCK_VARIABLE: u64 = 8;
    /// VarCheck: set a property.
    pub const VAR_CHECK_VARIABLE_PROPERTY_SET: u64 = 9;
    /// VarCheck: read a property.
    pub const VAR_CHECK_VARIABLE_PROPERTY_GET: u64 = 10;
    /// The largest variable payload.
    pub const GET_PAYLOAD_SIZE: u64 = 11;
    /// The runtime cache (12–14) is not offered.
    pub const INIT_RUNTIME_VARIABLE_CACHE_CONTEXT: u64 = 12;

    /// The function's name, for events.
    pub fn name(f: u64) -> &'static str {
        match f {
            GET_VARIABLE => "get",
            GET_NEXT_VARIABLE_NAME => "next-name",
            SET_VARIABLE => "set",
            QUERY_VARIABLE_INFO => "query-info",
            READY_TO_BOOT => "ready-to-boot",
            EXIT_BOOT_SERVICE => "exit-boot-services",
            GET_STATISTICS => "statistics",
            LOCK_VARIABLE => "lock",
            VAR_CHECK_VARIABLE_PROPERTY_SET => "property-set",
            VAR_CHECK_VARIABLE_PROPERTY_GET => "property-get",
            GET_PAYLOAD_SIZE => "payload-size",
            _ => "other",
        }
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn guid_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// What one message did, for the partition's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The SMM variable function.
    pub function: u64,
    /// Its EFI status.
    pub status: u64,
}

/// One MM communicate message: `msg` is the buffer from the header's offset to the buffer's
/// end, copied once; `buffer_size` the whole shared buffer (for GET_PAYLOAD_SIZE). Returns
/// the reply (the header, with MessageLength rewritten, and its data) to copy back at the
/// same offset, or the MM return code for a message that is not one.
pub fn communicate<F: Flash>(
    vars: &mut Vars<F>,
    msg: &[u8],
    buffer_size: usize,
) -> Result<(Vec<u8>, Outcome), i64> {
    if msg.len() < COMM_HEADER {
        return Err(rc::INVALID_PARAMETER);
    }
    let len = usize::try_from(u64_at(msg, 16)).map_err(|_| rc::INVALID_PARAMETER)?;
    let end = COMM_HEADER
        .checked_add(len)
        .filter(|e| *e <= msg.len())
        .ok_or(rc::INVALID_PARAMETER)?;
    if guid_at(msg, 0) != SMM_VARIABLE_GUID {
        return Err(rc::NOT_SUPPORTED);
    }
    if len < VAR_HEADER {
        return Err(rc::INVALID_PARAMETER);
    }
    let function = u64_at(msg, COMM_HEADER);
    // The reply overwrites the message in place: same length, its data edited.
    let mut out = msg[..end].to_vec();
    let data = &mut out[COMM_HEADER + VAR_HEADER..];
    let status = dispatch(vars, function, data, buffer_size);
    out[COMM_HEADER + 8..COMM_HEADER + 16].copy_from_slice(&status.to_le_bytes());
    Ok((out, Outcome { function, status }))
}

/// Runs `function` on its payload `p` (edited in place for the reply); the EFI status.
fn dispatch<F: Flash>(vars: &mut Vars<F>, function: u64, p: &mut [u8], buffer_size: usize) -> u64 {
    let r = match function {
        func::GET_VARIABLE => get(vars, p),
        func::GET_NEXT_VARIABLE_NAME => next_name(vars, p),
        func::SET_VARIABLE => set(vars, p),
        func::QUERY_VARIABLE_INFO => query(vars, p),
        func::READY_TO_BOOT => {
            vars.ready_to_boot();
            Ok(())
        }
        func::EXIT_BOOT_SERVICE => {
            vars.exit_boot_services();
            Ok(())
        }
        func::LOCK_VARIABLE => lock(vars, p),
        func::VAR_CHECK_VARIABLE_PROPERTY_SET => property_set(vars, p),
        func::VAR_CHECK_VARIABLE_PROPERTY_GET => property_get(vars, p),
        func::GET_PAYLOAD_SIZE => payload_size(vars, p, buffer_size),
        _ => Err(status::UNSUPPORTED),
    };
    r.err().unwrap_or(status::SUCCESS)
}

/// The name field of a structure whose name starts at `at`, with its size at `size_at`:
/// inside the payload and NUL-terminated at its end (EDK2 answers ACCESS_DENIED otherwise).
fn name_field(p: &[u8], size_at: usize, at: usize, extra: u64) -> Result<(usize, usize), u64> {
    if p.len() < at {
        return Err(status::ACCESS_DENIED);
    }
    let ns = u64_at(p, size_at);
    let info = (at as u64)
        .checked_add(ns)
        .and_then(|n| n.checked_add(extra))
        .ok_or(status::ACCESS_DENIED)?;
    if info > p.len() as u64 || ns < 2 || !ns.is_multiple_of(2) {
        return Err(status::ACCESS_DENIED);
    }
    let ns = ns as usize;
    if p[at + ns - 2..at + ns] != [0, 0] {
        return Err(status::ACCESS_DENIED);
    }
    Ok((at, ns))
}

fn get<F: Flash>(vars: &Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    if p.len() < ACCESS_NAME {
        return Err(status::ACCESS_DENIED);
    }
    let capacity = u64_at(p, 16);
    let (at, ns) = name_field(p, 24, ACCESS_NAME, capacity)?;
    let g = guid_at(p, 0);
    let v = vars.get(&g, &p[at..at + ns])?;
    p[32..36].copy_from_slice(&v.attrs.to_le_bytes());
    p[16..24].copy_from_slice(&(v.data.len() as u64).to_le_bytes());
    if (v.data.len() as u64) > capacity {
        return Err(status::BUFFER_TOO_SMALL);
    }
    let d = at + ns;
    p[d..d + v.data.len()].copy_from_slice(&v.data);
    Ok(())
}

fn next_name<F: Flash>(vars: &Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    if p.len() < NEXT_NAME {
        return Err(status::ACCESS_DENIED);
    }
    // NameSize is the name buffer's size; the current name is the string in it, up to the
    // first NUL, which must be inside it.
    let cap = u64_at(p, 16);
    let end = (NEXT_NAME as u64)
        .checked_add(cap)
        .filter(|e| *e <= p.len() as u64 && cap >= 2)
        .ok_or(status::ACCESS_DENIED)? as usize;
    let field = &p[NEXT_NAME..end];
    let units = field
        .chunks_exact(2)
        .position(|c| c == [0, 0])
        .ok_or(status::ACCESS_DENIED)?;
    let cur = field[..units * 2 + 2].to_vec();
    let g = guid_at(p, 0);
    let (ng, nn) = vars.next_name(&g, &cur)?;
    p[16..24].copy_from_slice(&(nn.len() as u64).to_le_bytes());
    if nn.len() as u64 > cap {
        return Err(status::BUFFER_TOO_SMALL);
    }
    p[0..16].copy_from_slice(&ng);
    p[NEXT_NAME..NEXT_NAME + nn.len()].copy_from_slice(nn);
    Ok(())
}

fn set<F: Flash>(vars: &mut Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    if p.len() < ACCESS_NAME {
        return Err(status::ACCESS_DENIED);
    }
    let ds = u64_at(p, 16);
    let (at, ns) = name_field(p, 24, ACCESS_NAME, ds)?;
    let g = guid_at(p, 0);
    let attrs = u32_at(p, 32);
    let (name, rest) = p[at..].split_at(ns);
    vars.set(&g, name, attrs, &rest[..ds as usize])
}

fn query<F: Flash>(vars: &Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    if p.len() < 28 {
        return Err(status::ACCESS_DENIED);
    }
    let (max, remaining, largest) = vars.query(u32_at(p, 24))?;
    p[0..8].copy_from_slice(&max.to_le_bytes());
    p[8..16].copy_from_slice(&remaining.to_le_bytes());
    p[16..24].copy_from_slice(&largest.to_le_bytes());
    Ok(())
}

/// RequestToLock: the variable becomes read-only (EDK2 implements the lock protocol on top
/// of VarCheck the same way); only before ReadyToBoot.
fn lock<F: Flash>(vars: &mut Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    let (at, ns) = name_field(p, 16, NEXT_NAME, 0)?;
    let g = guid_at(p, 0);
    let ro = Property {
        property: PROPERTY_READ_ONLY,
        attributes: 0,
        min_size: 0,
        max_size: u64::MAX,
    };
    vars.set_property(&g, &p[at..at + ns], ro)
}

fn property_set<F: Flash>(vars: &mut Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    let (at, ns) = name_field(p, 16, PROPERTY_NAME, 0)?;
    if u16::from_le_bytes([p[24], p[25]]) != PROPERTY_REVISION {
        return Err(status::INVALID_PARAMETER);
    }
    let prop = Property {
        property: u16::from_le_bytes([p[26], p[27]]),
        attributes: u32_at(p, 28),
        min_size: u64_at(p, 32),
        max_size: u64_at(p, 40),
    };
    let g = guid_at(p, 0);
    vars.set_property(&g, &p[at..at + ns], prop)
}

fn property_get<F: Flash>(vars: &Vars<F>, p: &mut [u8]) -> Result<(), u64> {
    let (at, ns) = name_field(p, 16, PROPERTY_NAME, 0)?;
    let g = guid_at(p, 0);
    let prop = vars
        .property(&g, &p[at..at + ns])
        .ok_or(status::NOT_FOUND)?;
    p[24..26].copy_from_slice(&PROPERTY_REVISION.to_le_bytes());
    p[26..28].copy_from_slice(&prop.property.to_le_bytes());
    p[28..32].copy_from_slice(&prop.attributes.to_le_bytes());
    p[32..40].copy_from_slice(&prop.min_size.to_le_bytes());
    p[40..48].copy_from_slice(&prop.max_size.to_le_bytes());
    Ok(())
}

fn payload_size<F: Flash>(vars: &Vars<F>, p: &mut [u8], buffer_size: usize) -> Result<(), u64> {
    if p.len() < 8 {
        return Err(status::ACCESS_DENIED);
    }
    // What fits the buffer after both headers, and no more than the largest variable with
    // the largest fixed structure before its name (U-Boot then sizes its buffer as
    // COMM_HEADER + VAR_HEADER + this).
    let fits = buffer_size.saturating_sub(COMM_HEADER + VAR_HEADER) as u64;
    let largest = u64::from(vars.limits().max_var_size) + PROPERTY_NAME as u64;
    p[0..8].copy_from_slice(&fits.min(largest).to_le_bytes());
    Ok(())
}
