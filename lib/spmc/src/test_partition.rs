//! Catena's test partition: a logical partition that proves the FF-A paths end to end.
//!
//! - FFA_MSG_SEND_DIRECT_REQ: echoes w3–w7 / x3–x7, except [`testsp::CMD_MEM_CHECK`], which
//!   retrieves the handle, checksums the memory, writes [`testsp::MARKER`] at its start, and
//!   relinquishes it.
//! - FFA_MSG_SEND_DIRECT_REQ2: echoes x4–x17, except [`testsp::CMD_WHOAMI`], which answers with
//!   the service UUID the request was addressed to.

use crate::{MemAccess, Partition};
use ffa_abi::{FfaError, Uuid, props, testsp};

/// The partition.
#[derive(Debug, Default)]
pub struct TestPartition;

const UUIDS: [Uuid; 2] = [testsp::UUID, testsp::UUID_ALT];

impl TestPartition {
    fn mem_check(mem: &mut dyn MemAccess, handle: u64) -> Result<(u64, u64), FfaError> {
        let r = mem.retrieve(handle)?;
        let mut sum = testsp::CHECKSUM_INIT;
        let mut buf = [0u8; 512];
        let mut off = 0;
        let result = (|| {
            while off < r.len() {
                let n = (r.len() - off).min(buf.len() as u64) as usize;
                mem.read(handle, off, &mut buf[..n])?;
                sum = testsp::checksum(sum, &buf[..n]);
                off += n as u64;
            }
            mem.write(handle, 0, &testsp::MARKER)
        })();
        // Give the memory back whatever happened.
        let rel = mem.relinquish(handle);
        result?;
        rel?;
        Ok((sum, r.len()))
    }
}

impl Partition for TestPartition {
    fn id(&self) -> u16 {
        testsp::ID
    }

    fn uuids(&self) -> &[Uuid] {
        &UUIDS
    }

    fn props(&self) -> u32 {
        props::DIRECT_REQ_RECV | props::AARCH64 | props::DIRECT_REQ2_RECV
    }

    fn direct_req(
        &mut self,
        mem: &mut dyn MemAccess,
        _sender: u16,
        a: [u64; 5],
    ) -> Result<[u64; 5], FfaError> {
        if a[0] != testsp::CMD_MEM_CHECK {
            return Ok(a);
        }
        // The handle travels as w4 (low) and w5 (high), so 32- and 64-bit requests agree.
        let handle = (a[1] & 0xffff_ffff) | (a[2] << 32);
        Ok(match Self::mem_check(mem, handle) {
            Ok((sum, len)) => [testsp::CMD_MEM_CHECK, 0, sum, len, 0],
            Err(e) => [testsp::CMD_MEM_CHECK, (e as i32) as u64, 0, 0, 0],
        })
    }

    fn direct_req2(
        &mut self,
        _mem: &mut dyn MemAccess,
        _sender: u16,
        uuid: Uuid,
        a: &mut [u64; 14],
    ) -> Result<(), FfaError> {
        // Anything but WHOAMI is echoed: `a` stays as it came.
        if a[0] == testsp::CMD_WHOAMI {
            let (lo, hi) = ffa_abi::uuid_to_regs(&uuid);
            *a = [0; 14];
            a[0] = testsp::CMD_WHOAMI;
            a[1] = lo;
            a[2] = hi;
        }
        Ok(())
    }
}
