//! The variable service as an SPMC logical partition: the direct-request ABI U-Boot's
//! `efi_variable_tee.c` and Trusted Services' smm-gateway agree on (x3 = offset of the
//! `EFI_MM_COMMUNICATE_HEADER` in the shared buffer, x4–x7 zero; reply x3 = the MM return
//! code, x4–x7 zero), over a fixed normal-world buffer the firmware reserves and describes in
//! the DT.

use crate::Vars;
use crate::mm::{self, COMM_HEADER, Outcome, rc};
use alloc::vec;
use ffa_abi::{FfaError, Uuid, props};
use spmc::{MemAccess, Partition};
use varstore::Flash;

/// The partition's FF-A ID.
pub const PARTITION_ID: u16 = 0x8003;
/// Its UUID (smm-gateway's, U-Boot's MM_SP_UUID).
pub const UUID: Uuid = ffa_abi::uuid("ed32d533-99e6-4209-9cc0-2d72cdd998a7");

/// An access outside the shared buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideBuffer;

/// The shared buffer (normal-world memory), by offset from its start.
pub trait Buffer {
    /// Its size in bytes.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at `off`.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideBuffer>;
    /// Writes `data` at `off`.
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideBuffer>;
}

/// The partition: the service and the buffer.
pub struct VarPartition<B, F: Flash> {
    vars: Vars<F>,
    buf: B,
    last: Option<Outcome>,
}

const UUIDS: [Uuid; 1] = [UUID];

impl<B: Buffer, F: Flash> VarPartition<B, F> {
    /// The partition over `vars`, answering through `buf`.
    pub fn new(vars: Vars<F>, buf: B) -> Self {
        VarPartition {
            vars,
            buf,
            last: None,
        }
    }

    /// The service (the firmware's own reads).
    pub fn vars(&self) -> &Vars<F> {
        &self.vars
    }

    /// The service, to change (the firmware's own benchmark, before the normal world runs).
    pub fn vars_mut(&mut self) -> &mut Vars<F> {
        &mut self.vars
    }

    /// What the last message did.
    pub fn last(&self) -> Option<Outcome> {
        self.last
    }

    /// One request: x3 = offset, x4–x7 must be zero; the MM return code for x3.
    pub fn request(&mut self, x: [u64; 5]) -> i64 {
        if x[1..].iter().any(|&r| r != 0) {
            return rc::INVALID_PARAMETER;
        }
        let size = self.buf.size();
        let off = x[0];
        let Some(room) = size.checked_sub(off).filter(|r| *r >= COMM_HEADER as u64) else {
            return rc::INVALID_PARAMETER;
        };
        // The header once, then exactly the message it announces: each byte copied once.
        let mut head = [0u8; COMM_HEADER];
        if self.buf.read(off, &mut head).is_err() {
            return rc::INVALID_PARAMETER;
        }
        let len = u64::from_le_bytes(head[16..24].try_into().unwrap_or([0xff; 8]));
        let Some(total) = len.checked_add(COMM_HEADER as u64).filter(|t| *t <= room) else {
            return rc::INVALID_PARAMETER;
        };
        let mut msg = vec![0u8; total as usize];
        msg[..COMM_HEADER].copy_from_slice(&head);
        if self
            .buf
            .read(off + COMM_HEADER as u64, &mut msg[COMM_HEADER..])
            .is_err()
        {
            return rc::INVALID_PARAMETER;
        }
        match mm::communicate(&mut self.vars, &msg, size as usize) {
            Ok((reply, outcome)) => {
                self.last = Some(outcome);
                match self.buf.write(off, &reply) {
                    Ok(()) => rc::SUCCESS,
                    Err(_) => rc::INVALID_PARAMETER,
                }
            }
            Err(code) => code,
        }
    }
}

impl<B: Buffer + Send, F: Flash + Send> Partition for VarPartition<B, F> {
    fn id(&self) -> u16 {
        PARTITION_ID
    }

    fn uuids(&self) -> &[Uuid] {
        &UUIDS
    }

    fn props(&self) -> u32 {
        props::DIRECT_REQ_RECV | props::AARCH64
    }

    fn direct_req(
        &mut self,
        _mem: &mut dyn MemAccess,
        _sender: u16,
        a: [u64; 5],
    ) -> Result<[u64; 5], FfaError> {
        Ok([self.request(a) as u64, 0, 0, 0, 0])
    }

    fn direct_req2(
        &mut self,
        _mem: &mut dyn MemAccess,
        _sender: u16,
        _uuid: Uuid,
        _a: &mut [u64; 14],
    ) -> Result<(), FfaError> {
        // Not advertised (no DIRECT_REQ2_RECV): the MM ABI is defined on REQ.
        Err(FfaError::NotSupported)
    }
}
