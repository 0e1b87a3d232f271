//! The normal world's side of the SMM variable protocol: messages built into the shared
//! buffer as U-Boot's `efi_variable_tee.c` builds them, one FF-A direct request each (a
//! [`Channel`]), and every reply checked before it is believed (the partition is another
//! trust domain, and its answers are outside input).

use crate::mm::{ACCESS_NAME, COMM_HEADER, NEXT_NAME, SMM_VARIABLE_GUID, VAR_HEADER, func, rc};
use crate::partition::Buffer;
use crate::status;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// One direct request: x3 = the message's offset; returns x3 (the MM return code).
pub trait Channel {
    /// Makes the call; `Err` when the FF-A layer failed (its reason).
    fn call(&mut self, offset: u64) -> Result<i64, &'static str>;
}

/// Why a client operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The FF-A call failed.
    Channel(&'static str),
    /// The partition answered with this MM return code.
    Mm(i64),
    /// The variable service answered with this EFI status.
    Efi(u64),
    /// The reply breaks the protocol (what is wrong with it).
    Reply(&'static str),
    /// The request does not fit the buffer or the payload size the partition announced.
    TooLarge,
}

impl ClientError {
    /// A short name for events.
    pub fn name(&self) -> &'static str {
        match self {
            ClientError::Channel(r) | ClientError::Reply(r) => r,
            ClientError::Mm(c) => match *c {
                rc::NOT_SUPPORTED => "mm-not-supported",
                rc::INVALID_PARAMETER => "mm-invalid-parameter",
                rc::DENIED => "mm-denied",
                rc::NO_MEMORY => "mm-no-memory",
                _ => "mm-error",
            },
            ClientError::Efi(s) => status::name(*s),
            ClientError::TooLarge => "too-large",
        }
    }
}

/// A variable name as the protocol carries it: UTF-16LE with the terminating NUL.
pub fn utf16z(name: &str) -> Vec<u8> {
    name.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// Back from UTF-16LE with NUL (lossy: unpaired surrogates become U+FFFD).
pub fn from_utf16z(name: &[u8]) -> String {
    let units: Vec<u16> = name
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A variable's key: vendor GUID and UTF-16LE name with its NUL.
pub type Key = ([u8; 16], Vec<u8>);

/// The room a first GetVariable gives the value.
pub const FIRST_ROOM: usize = 1024;

/// Most names one listing walks before it gives up (a service that never says NOT_FOUND).
pub const MAX_NAMES: usize = 4096;

/// A client on one buffer.
pub struct Client<B, C> {
    buf: B,
    ch: C,
    /// The largest payload after both headers (GET_PAYLOAD_SIZE, capped by the buffer).
    payload: usize,
}

impl<B: Buffer, C: Channel> Client<B, C> {
    /// A client: asks the partition for its payload size first (as U-Boot does at init).
    pub fn new(buf: B, ch: C) -> Result<Self, ClientError> {
        let cap = usize::try_from(buf.size())
            .unwrap_or(usize::MAX)
            .saturating_sub(COMM_HEADER + VAR_HEADER);
        let mut c = Client {
            buf,
            ch,
            payload: cap,
        };
        let (st, p) = c.exchange(func::GET_PAYLOAD_SIZE, &[0; 8], 0)?;
        if st != status::SUCCESS {
            return Err(ClientError::Efi(st));
        }
        let announced = u64::from_le_bytes(p[..8].try_into().unwrap_or([0; 8]));
        // U-Boot requires room for the access structure and a short name at least.
        if announced < (ACCESS_NAME + 0x20) as u64 {
            return Err(ClientError::Reply("payload size too small to be used"));
        }
        c.payload = cap.min(usize::try_from(announced).unwrap_or(usize::MAX));
        Ok(c)
    }

    /// The largest payload a message may carry.
    pub fn payload_size(&self) -> usize {
        self.payload
    }

    /// Sends `function` with `payload` followed by `room` zero bytes for the answer; returns
    /// the EFI status and the reply's payload (the same length as sent).
    fn exchange(
        &mut self,
        function: u64,
        payload: &[u8],
        room: usize,
    ) -> Result<(u64, Vec<u8>), ClientError> {
        let len = payload
            .len()
            .checked_add(room)
            .ok_or(ClientError::TooLarge)?;
        if len > self.payload {
            return Err(ClientError::TooLarge);
        }
        let mut m = Vec::with_capacity(COMM_HEADER + VAR_HEADER + len);
        m.extend_from_slice(&SMM_VARIABLE_GUID);
        m.extend_from_slice(&((VAR_HEADER + len) as u64).to_le_bytes());
        m.extend_from_slice(&function.to_le_bytes());
        m.extend_from_slice(&0u64.to_le_bytes());
        m.extend_from_slice(payload);
        m.resize(COMM_HEADER + VAR_HEADER + len, 0);
        self.buf.write(0, &m).map_err(|_| ClientError::TooLarge)?;
        match self.ch.call(0).map_err(ClientError::Channel)? {
            rc::SUCCESS => {}
            code => return Err(ClientError::Mm(code)),
        }
        let mut back = vec![0u8; m.len()];
        self.buf
            .read(0, &mut back)
            .map_err(|_| ClientError::Reply("buffer unreadable"))?;
        if back[..16] != SMM_VARIABLE_GUID {
            return Err(ClientError::Reply("reply header GUID changed"));
        }
        let rlen = u64::from_le_bytes(back[16..24].try_into().unwrap_or([0xff; 8]));
        if rlen != (VAR_HEADER + len) as u64 {
            return Err(ClientError::Reply("reply length is not the message's"));
        }
        if u64::from_le_bytes(back[24..32].try_into().unwrap_or([0; 8])) != function {
            return Err(ClientError::Reply("reply function changed"));
        }
        let st = u64::from_le_bytes(back[32..40].try_into().unwrap_or([0xff; 8]));
        Ok((st, back.split_off(COMM_HEADER + VAR_HEADER)))
    }

    fn access(guid: &[u8; 16], name: &[u8], attrs: u32, data_size: u64) -> Vec<u8> {
        let mut p = Vec::with_capacity(ACCESS_NAME + name.len());
        p.extend_from_slice(guid);
        p.extend_from_slice(&data_size.to_le_bytes());
        p.extend_from_slice(&(name.len() as u64).to_le_bytes());
        p.extend_from_slice(&attrs.to_le_bytes());
        p.extend_from_slice(name);
        p
    }

    /// GetVariable: (attributes, data). Asks first with room for a typical variable
    /// ([`FIRST_ROOM`]: every byte of the room crosses the shared buffer twice), then, on
    /// BUFFER_TOO_SMALL, once more with exactly the size the service named — if that fits the
    /// payload at all.
    pub fn get(&mut self, guid: &[u8; 16], name: &str) -> Result<(u32, Vec<u8>), ClientError> {
        let n = utf16z(name);
        let head = Self::access(guid, &n, 0, 0);
        let most = self
            .payload
            .checked_sub(head.len())
            .ok_or(ClientError::TooLarge)?;
        let mut room = most.min(FIRST_ROOM);
        for _ in 0..2 {
            let mut p = head.clone();
            p[16..24].copy_from_slice(&(room as u64).to_le_bytes());
            let (st, r) = self.exchange(func::GET_VARIABLE, &p, room)?;
            let size = u64::from_le_bytes(r[16..24].try_into().unwrap_or([0xff; 8]));
            if st == status::BUFFER_TOO_SMALL {
                if size <= room as u64 {
                    return Err(ClientError::Reply("BUFFER_TOO_SMALL for a size that fits"));
                }
                if size > most as u64 {
                    return Err(ClientError::TooLarge);
                }
                room = size as usize;
                continue;
            }
            if st != status::SUCCESS {
                return Err(ClientError::Efi(st));
            }
            if size > room as u64 {
                return Err(ClientError::Reply("DataSize beyond the room given"));
            }
            let attrs = u32::from_le_bytes(r[32..36].try_into().unwrap_or([0; 4]));
            let d = ACCESS_NAME + n.len();
            return Ok((attrs, r[d..d + size as usize].to_vec()));
        }
        Err(ClientError::Reply("BUFFER_TOO_SMALL twice"))
    }

    /// GetVariable the way Linux's `load_uefi_certs` reads: a size probe with no room, which
    /// must answer BUFFER_TOO_SMALL with the size (NOT_FOUND: `Ok(None)`, quietly), then a
    /// read of exactly that size. A probe answered any other way is an error naming it.
    pub fn get_probed(
        &mut self,
        guid: &[u8; 16],
        name: &str,
    ) -> Result<Option<(u32, Vec<u8>)>, ClientError> {
        let n = utf16z(name);
        let head = Self::access(guid, &n, 0, 0);
        let most = self
            .payload
            .checked_sub(head.len())
            .ok_or(ClientError::TooLarge)?;
        let (st, r) = self.exchange(func::GET_VARIABLE, &head, 0)?;
        let size = u64::from_le_bytes(r[16..24].try_into().unwrap_or([0xff; 8]));
        match st {
            status::NOT_FOUND => return Ok(None),
            status::BUFFER_TOO_SMALL if size > 0 && size <= most as u64 => {}
            status::BUFFER_TOO_SMALL => return Err(ClientError::TooLarge),
            status::SUCCESS => return Err(ClientError::Reply("size probe answered success")),
            st => return Err(ClientError::Efi(st)),
        }
        let room = size as usize;
        let mut p = head;
        p[16..24].copy_from_slice(&size.to_le_bytes());
        let (st, r) = self.exchange(func::GET_VARIABLE, &p, room)?;
        if st != status::SUCCESS {
            return Err(ClientError::Efi(st));
        }
        let got = u64::from_le_bytes(r[16..24].try_into().unwrap_or([0xff; 8]));
        if got != size {
            return Err(ClientError::Reply(
                "the size changed between probe and read",
            ));
        }
        let attrs = u32::from_le_bytes(r[32..36].try_into().unwrap_or([0; 4]));
        let d = ACCESS_NAME + n.len();
        Ok(Some((attrs, r[d..d + room].to_vec())))
    }

    /// SetVariable (empty `data` deletes, unless `attrs` has APPEND_WRITE).
    pub fn set(
        &mut self,
        guid: &[u8; 16],
        name: &str,
        attrs: u32,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let n = utf16z(name);
        let mut p = Self::access(guid, &n, attrs, data.len() as u64);
        p.extend_from_slice(data);
        match self.exchange(func::SET_VARIABLE, &p, 0)?.0 {
            status::SUCCESS => Ok(()),
            st => Err(ClientError::Efi(st)),
        }
    }

    /// GetNextVariableName after (`guid`, `name`; the empty name for the first): `None` after
    /// the last.
    pub fn next_name(&mut self, guid: &[u8; 16], name: &[u8]) -> Result<Option<Key>, ClientError> {
        // Room for the longest name the payload allows.
        let cap = self
            .payload
            .checked_sub(NEXT_NAME)
            .filter(|c| *c >= name.len())
            .ok_or(ClientError::TooLarge)?
            .min(1024);
        if name.len() > cap {
            return Err(ClientError::TooLarge);
        }
        let mut p = Vec::with_capacity(NEXT_NAME + cap);
        p.extend_from_slice(guid);
        p.extend_from_slice(&(cap as u64).to_le_bytes());
        p.extend_from_slice(name);
        let (st, r) = self.exchange(func::GET_NEXT_VARIABLE_NAME, &p, cap - name.len())?;
        match st {
            status::SUCCESS => {}
            status::NOT_FOUND => return Ok(None),
            st => return Err(ClientError::Efi(st)),
        }
        let size = u64::from_le_bytes(r[16..24].try_into().unwrap_or([0xff; 8]));
        let n = usize::try_from(size)
            .ok()
            .filter(|n| *n >= 4 && *n <= cap && n % 2 == 0)
            .ok_or(ClientError::Reply("name size outside the buffer"))?;
        let next = r[NEXT_NAME..NEXT_NAME + n].to_vec();
        if !crate::name_valid(&next) {
            return Err(ClientError::Reply("name is not NUL-terminated UTF-16"));
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&r[..16]);
        Ok(Some((g, next)))
    }

    /// Every variable's (GUID, name), walking GetNextVariableName; a walk that repeats a
    /// name or runs past [`MAX_NAMES`] is the service's error.
    pub fn names(&mut self) -> Result<Vec<Key>, ClientError> {
        let mut out: Vec<Key> = Vec::new();
        let (mut g, mut n) = ([0u8; 16], vec![0u8, 0]);
        while let Some((ng, nn)) = self.next_name(&g, &n)? {
            if out.iter().any(|(og, on)| *og == ng && *on == nn) || out.len() >= MAX_NAMES {
                return Err(ClientError::Reply("the walk does not end"));
            }
            out.push((ng, nn.clone()));
            (g, n) = (ng, nn);
        }
        Ok(out)
    }

    /// QueryVariableInfo: (maximum storage, remaining storage, maximum variable size).
    pub fn query(&mut self, attrs: u32) -> Result<(u64, u64, u64), ClientError> {
        let mut p = vec![0u8; 28];
        p[24..28].copy_from_slice(&attrs.to_le_bytes());
        let (st, r) = self.exchange(func::QUERY_VARIABLE_INFO, &p, 0)?;
        if st != status::SUCCESS {
            return Err(ClientError::Efi(st));
        }
        let f = |i: usize| u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Ok((f(0), f(1), f(2)))
    }

    /// The channel (to change how it calls).
    pub fn channel(&mut self) -> &mut C {
        &mut self.ch
    }
}
