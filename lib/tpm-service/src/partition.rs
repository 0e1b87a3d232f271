//! The TPM service as an SPMC logical partition: DEN0138 §3.1's register use on both direct
//! request ABIs.
//!
//! FFA_MSG_SEND_DIRECT_REQ carries x3 (MBZ) and the function in x4, arguments in x5–x7; REQ2
//! has no x3 (x2–x3 hold the service UUID) and the function is again in x4. Replies put the
//! status in x4 and results from x5, so a client reads the same registers whichever ABI it used
//! (Linux `tpm_crb_ffa`: `data1`/`data[0]` is x4 either way).

use crate::{Crb, PARTITION_ID, Service, Tpm, den0138};
use ffa_abi::{FfaError, Uuid, props};
use spmc::{MemAccess, Partition};

/// The partition: the service's state, the CRB pages and the TPM.
pub struct TpmPartition<C, T> {
    service: Service,
    crb: C,
    tpm: T,
}

const UUIDS: [Uuid; 1] = [den0138::UUID];

impl<C: Crb + Send, T: Tpm + Send> TpmPartition<C, T> {
    /// A partition whose CRB (physical `crb_pa`, reached through `crb`) is reset to its
    /// initial state; `None` if the CRB is smaller than the five localities' pages.
    pub fn new(crb_pa: u64, mut crb: C, tpm: T) -> Option<Self> {
        let service = Service::new(crb_pa, &mut crb).ok()?;
        Some(TpmPartition { service, crb, tpm })
    }

    /// The TPM, for the firmware's own use between calls (TPM2_Startup at boot).
    pub fn tpm(&mut self) -> &mut T {
        &mut self.tpm
    }
}

impl<C: Crb + Send, T: Tpm + Send> Partition for TpmPartition<C, T> {
    fn id(&self) -> u16 {
        PARTITION_ID
    }

    fn uuids(&self) -> &[Uuid] {
        &UUIDS
    }

    fn props(&self) -> u32 {
        props::DIRECT_REQ_RECV | props::DIRECT_REQ2_RECV | props::AARCH64
    }

    fn direct_req(
        &mut self,
        _mem: &mut dyn MemAccess,
        _sender: u16,
        a: [u64; 5],
    ) -> Result<[u64; 5], FfaError> {
        let r = self.service.handle(a, &mut self.crb, &mut self.tpm);
        Ok([0, r.status, r.result, 0, 0])
    }

    fn direct_req2(
        &mut self,
        _mem: &mut dyn MemAccess,
        _sender: u16,
        _uuid: Uuid,
        a: &mut [u64; 14],
    ) -> Result<(), FfaError> {
        let r = self
            .service
            .handle([0, a[0], a[1], a[2], a[3]], &mut self.crb, &mut self.tpm);
        *a = [0; 14];
        a[0] = r.status;
        a[1] = r.result;
        Ok(())
    }
}
