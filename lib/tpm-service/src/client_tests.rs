//! The client against the real service (and against a service that lies).
extern crate std;

use super::*;
use crate::client::{Channel, Client, ClientError};
use std::vec;

const CRB_PA: u64 = 0x4010_0000;

type Shared = crate::sim::SimCrb;

/// A TPM answering with the command's code, or failing.
struct Tpm2 {
    fail: bool,
}

impl Tpm for Tpm2 {
    fn execute(&mut self, _: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError> {
        if self.fail {
            return Err(TpmError::Failed);
        }
        let r = [
            0x80, 1, 0, 0, 0, 14, 0, 0, 0, 0, cmd[6], cmd[7], cmd[8], cmd[9],
        ];
        rsp[..14].copy_from_slice(&r);
        Ok(14)
    }
}

/// The channel: the service itself, with an optional meddler that runs after each call.
struct Direct {
    svc: Service,
    crb: Shared,
    tpm: Tpm2,
    after: Option<fn(&Shared)>,
    /// START calls made, by kind: (locality, command).
    starts: (usize, usize),
}

impl Channel for Direct {
    fn call(&mut self, func: u64, x5: u64, x6: u64) -> Result<(u64, u64), &'static str> {
        if func == den0138::START {
            if x5 == den0138::START_LOCALITY {
                self.starts.0 += 1;
            } else {
                self.starts.1 += 1;
            }
        }
        let r = self
            .svc
            .handle([0, func, x5, x6, 0], &mut self.crb, &mut self.tpm);
        if let Some(f) = self.after {
            f(&self.crb);
        }
        Ok((r.status, r.result))
    }
}

fn client() -> (Client<Shared, Direct>, Shared) {
    let mut crb = Shared::new(0);
    let svc = Service::new(CRB_PA, &mut crb).unwrap();
    let ch = Direct {
        svc,
        crb: crb.clone(),
        tpm: Tpm2 { fail: false },
        after: None,
        starts: (0, 0),
    };
    (Client::new(CRB_PA, crb.clone(), ch), crb)
}

const CMD: [u8; 12] = [0x80, 1, 0, 0, 0, 12, 0, 0, 1, 0x43, 0, 0];

#[test]
fn the_client_and_the_service_agree() {
    let (mut c, _) = client();
    assert_eq!(c.version(), Ok((1, 0)));
    let mut rsp = [0u8; 64];
    for loc in [0, 0, 3] {
        let n = c.execute(loc, &CMD, &mut rsp).unwrap();
        assert_eq!(
            &rsp[..n],
            &[0x80, 1, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 1, 0x43]
        );
        assert_eq!(c.channel().svc.active(), Some(loc), "held between commands");
        assert_eq!(c.held(), Some(loc));
    }
    // Request 0, two commands, relinquish 0, request 3, one command.
    assert_eq!(c.channel().starts, (3, 3));
    c.release().unwrap();
    assert_eq!(c.channel().svc.active(), None, "released");
    assert_eq!(c.held(), None);
    // Locality 4 is the platform's.
    assert_eq!(
        c.execute(4, &CMD, &mut rsp),
        Err(ClientError::Status(den0138::NOTSUP))
    );
    assert_eq!(c.held(), None);
}

#[test]
fn a_locality_the_service_took_back_is_requested_again() {
    let (mut c, mut crb) = client();
    let mut rsp = [0u8; 64];
    c.execute(0, &CMD, &mut rsp).unwrap();
    // The service forgets (another client's relinquish path, a reset of its state): the
    // next command is DENIED, the client requests locality 0 again and the command runs.
    crb.set(reg::LOC_CTRL, 2);
    let svc = &mut c.channel().svc;
    let mut tpm = Tpm2 { fail: false };
    assert_eq!(
        svc.handle(
            [0, den0138::START, den0138::START_LOCALITY, 0, 0],
            &mut crb,
            &mut tpm
        )
        .status,
        den0138::OK
    );
    assert_eq!(c.channel().svc.active(), None);
    let n = c.execute(0, &CMD, &mut rsp).unwrap();
    assert_eq!(n, 14);
    assert_eq!(c.channel().svc.active(), Some(0));
    // Locality requests: the first, and the one after DENIED; commands: 1 + the refused + 1.
    assert_eq!(c.channel().starts, (2, 3));
}

#[test]
fn a_tpm_failure_is_reported_not_read() {
    let (mut c, _) = client();
    c.channel().tpm.fail = true;
    let mut rsp = [0u8; 64];
    assert_eq!(c.execute(0, &CMD, &mut rsp), Err(ClientError::TpmError));
    // The locality stays held: the failure was the TPM's, not the CRB's.
    assert_eq!(c.channel().svc.active(), Some(0));
}

#[test]
fn a_crb_that_names_buffers_elsewhere_is_refused_before_any_write() {
    let (mut c, crb) = client();
    c.request_locality(0).unwrap();
    // The command buffer moved to locality 1's page: the client must not write there.
    crb.set(reg::CMD_LADDR, (CRB_PA + PAGE + DATA) as u32);
    let before = crb.bytes().clone();
    let mut rsp = [0u8; 64];
    assert_eq!(
        c.transmit(0, &CMD, &mut rsp),
        Err(ClientError::Crb("buffer outside the locality's data area"))
    );
    assert_eq!(*crb.bytes(), before);
    // A size beyond the page.
    let (mut c, crb) = client();
    c.request_locality(0).unwrap();
    crb.set(reg::RSP_SIZE, (DATA_SIZE + 1) as u32);
    assert!(matches!(
        c.transmit(0, &CMD, &mut rsp),
        Err(ClientError::Crb(_))
    ));
}

#[test]
fn a_response_longer_than_its_buffers_is_refused() {
    let (mut c, _) = client();
    c.channel().after = Some(|crb| {
        // A service that claims a 4000-byte response.
        crb.bytes()[DATA as usize + 2..DATA as usize + 6].copy_from_slice(&4000u32.to_be_bytes());
    });
    let mut rsp = [0u8; 64];
    c.request_locality(0).unwrap();
    assert_eq!(
        c.transmit(0, &CMD, &mut rsp),
        Err(ClientError::Crb("response length outside its buffer"))
    );
    // Fits the CRB but not the caller.
    let (mut c, _) = client();
    c.request_locality(0).unwrap();
    let mut small = [0u8; 12];
    assert!(matches!(
        c.transmit(0, &CMD, &mut small),
        Err(ClientError::Crb(_))
    ));
}

#[test]
fn a_service_that_never_completes_times_out() {
    let (mut c, _) = client();
    c.request_locality(0).unwrap();
    c.channel().after = Some(|crb| crb.set(reg::CTRL_START, 1));
    let mut rsp = [0u8; 64];
    assert_eq!(c.transmit(0, &CMD, &mut rsp), Err(ClientError::Timeout));
}

#[test]
fn a_command_too_long_for_the_buffer_is_not_sent() {
    let (mut c, _) = client();
    c.request_locality(0).unwrap();
    let long = vec![0u8; DATA_SIZE as usize + 1];
    let mut rsp = [0u8; 64];
    assert_eq!(c.transmit(0, &long, &mut rsp), Err(ClientError::TooLong));
}

#[test]
fn buffers_checked_at_the_first_command_are_kept() {
    let (mut c, crb) = client();
    let mut rsp = [0u8; 64];
    c.execute(0, &CMD, &mut rsp).unwrap();
    // Moved afterwards (to locality 1's page): the client keeps writing where it checked, as
    // Linux's tpm_crb, which reads the buffer registers once at probe; the service, which
    // checks the control area at every START, refuses the moved one.
    crb.set(reg::CMD_LADDR, (CRB_PA + PAGE + DATA) as u32);
    let loc1 = (PAGE + DATA) as usize;
    let before = crb.bytes()[loc1..loc1 + 64].to_vec();
    assert_eq!(
        c.execute(0, &CMD, &mut rsp),
        Err(ClientError::Status(den0138::INV_CRB_CTRL_DATA))
    );
    assert_eq!(crb.bytes()[loc1..loc1 + 64], before[..]);
    // Put back, the next command runs.
    crb.set(reg::CMD_LADDR, (CRB_PA + DATA) as u32);
    assert_eq!(c.execute(0, &CMD, &mut rsp), Ok(14));
}
