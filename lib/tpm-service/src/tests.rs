extern crate std;

use super::*;
use std::vec::Vec;

const CRB_PA: u64 = 0x4100_0000;

type Mem = crate::sim::SimCrb;

/// A TPM that answers every command with a 10-byte success response naming the locality, and
/// records what it was sent.
#[derive(Default)]
struct FakeTpm {
    sent: Vec<(u8, Vec<u8>)>,
    fail: bool,
    long: bool,
}

impl Tpm for FakeTpm {
    fn execute(&mut self, loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError> {
        self.sent.push((loc, cmd.to_vec()));
        if self.fail {
            return Err(TpmError::Failed);
        }
        if self.long {
            return Ok(rsp.len() + 1);
        }
        let r = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, loc];
        rsp[..10].copy_from_slice(&r);
        Ok(10)
    }
}

fn setup() -> (Service, Mem, FakeTpm) {
    let mut m = Mem::new(0xee);
    let s = Service::new(CRB_PA, &mut m).unwrap();
    (s, m, FakeTpm::default())
}

fn call(s: &mut Service, m: &mut Mem, t: &mut FakeTpm, x: [u64; 5]) -> Reply {
    s.handle(x, m, t)
}

fn locality(s: &mut Service, m: &mut Mem, t: &mut FakeTpm, loc: u64, ctrl: u32) -> u64 {
    m.set(loc * PAGE + reg::LOC_CTRL, ctrl);
    call(s, m, t, [0, START, START_LOCALITY, loc, 0]).status
}

/// TPM2_GetRandom(8): a 12-byte command.
const GET_RANDOM: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8];

fn command(s: &mut Service, m: &mut Mem, t: &mut FakeTpm, loc: u64) -> u64 {
    let p = loc * PAGE;
    m.bytes()[(p + DATA) as usize..(p + DATA) as usize + 12].copy_from_slice(&GET_RANDOM);
    m.set(p + reg::CTRL_START, 1);
    call(s, m, t, [0, START, START_COMMAND, loc, 0]).status
}

/// Linux's `__crb_cmd_ready` / `__crb_go_idle`: CTRL_REQ written, START(command) with
/// CTRL_START clear, then a poll for the CTRL_REQ bit to clear.
#[test]
fn ready_and_idle_requests_are_answered_as_linux_polls_for_them() {
    let (mut s, mut m, mut t) = setup();
    let req = |s: &mut Service, m: &mut Mem, t: &mut FakeTpm, bits: u32| {
        m.set(reg::CTRL_REQ, bits);
        call(s, m, t, [0, START, START_COMMAND, 0, 0]).status
    };
    assert_eq!(req(&mut s, &mut m, &mut t, 1), DENIED, "locality not held");
    assert_eq!(locality(&mut s, &mut m, &mut t, 0, 1), OK);
    assert_eq!(req(&mut s, &mut m, &mut t, 1), OK);
    assert_eq!(m.u32(reg::CTRL_REQ), 0, "cmdReady cleared");
    assert_eq!(m.u32(reg::CTRL_STS) & 2, 0, "not idle");
    assert!(t.sent.is_empty(), "a request runs no command");
    assert_eq!(command(&mut s, &mut m, &mut t, 0), OK);
    assert_eq!(t.sent.len(), 1);
    assert_eq!(req(&mut s, &mut m, &mut t, 2), OK);
    assert_eq!(m.u32(reg::CTRL_REQ), 0, "goIdle cleared");
    assert_eq!(m.u32(reg::CTRL_STS) & 2, 2, "idle");
    assert_eq!(
        req(&mut s, &mut m, &mut t, 3),
        INV_CRB_CTRL_DATA,
        "both at once"
    );
    assert_eq!(t.sent.len(), 1);
}

#[test]
fn the_reset_state_is_what_linux_reads() {
    let (_, m, _) = setup();
    for l in 0..LOCALITIES {
        let p = l * PAGE;
        assert_eq!(m.u32(p + reg::LOC_STATE), 1 << 7, "valid, unassigned");
        assert_eq!(m.u32(p + reg::CMD_SIZE), 0xf80);
        assert_eq!(
            u64::from(m.u32(p + reg::CMD_LADDR)) | (u64::from(m.u32(p + reg::CMD_HADDR)) << 32),
            CRB_PA + p + 0x80
        );
        assert_eq!(m.u32(p + reg::RSP_SIZE), 0xf80);
        assert_eq!(m.u32(p + reg::CTRL_START), 0);
    }
}

#[test]
fn version_and_unsupported_functions() {
    let (mut s, mut m, mut t) = setup();
    let r = call(&mut s, &mut m, &mut t, [0, GET_INTERFACE_VERSION, 0, 0, 0]);
    assert_eq!((r.status, r.result), (OK_RESULTS_RETURNED, 0x0001_0000));
    for f in [
        GET_FEATURE_INFO,
        REGISTER_FOR_NOTIFICATION,
        UNREGISTER_FROM_NOTIFICATION,
        FINISH_NOTIFIED,
    ] {
        assert_eq!(call(&mut s, &mut m, &mut t, [0, f, 0, 0, 0]).status, NOTSUP);
    }
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, 0x0f00_0601, 0, 0, 0]).status,
        NOFUNC
    );
    assert_eq!(
        call(&mut s, &mut m, &mut t, [1, GET_INTERFACE_VERSION, 0, 0, 0]).status,
        INVARG
    );
}

#[test]
fn localities_are_requested_and_relinquished_as_linux_does() {
    let (mut s, mut m, mut t) = setup();
    assert_eq!(locality(&mut s, &mut m, &mut t, 0, 1), OK);
    assert_eq!(s.active(), Some(0));
    for l in 0..LOCALITIES {
        // Valid, assigned, active locality 0: what Linux polls for.
        assert_eq!(m.u32(l * PAGE + reg::LOC_STATE), (1 << 7) | (1 << 1));
    }
    assert_eq!(m.u32(reg::LOC_STS), 1, "granted");
    assert_eq!(m.u32(reg::LOC_CTRL), 0, "request bit cleared");
    assert_eq!(locality(&mut s, &mut m, &mut t, 0, 1), ALREADY);
    assert_eq!(
        locality(&mut s, &mut m, &mut t, 2, 1),
        DENIED,
        "another is active"
    );
    assert_eq!(
        locality(&mut s, &mut m, &mut t, 2, 2),
        DENIED,
        "not its to give back"
    );
    assert_eq!(locality(&mut s, &mut m, &mut t, 0, 2), OK);
    assert_eq!(s.active(), None);
    assert_eq!(m.u32(2 * PAGE + reg::LOC_STATE), 1 << 7);
    assert_eq!(locality(&mut s, &mut m, &mut t, 3, 1), OK);
    assert_eq!(m.u32(reg::LOC_STATE), (1 << 7) | (1 << 1) | (3 << 2));
    // Neither or both bits, locality 4, a locality past 4, bad qualifier bits, x7.
    assert_eq!(locality(&mut s, &mut m, &mut t, 1, 0), INV_CRB_CTRL_DATA);
    assert_eq!(locality(&mut s, &mut m, &mut t, 1, 3), INV_CRB_CTRL_DATA);
    assert_eq!(locality(&mut s, &mut m, &mut t, 4, 1), NOTSUP);
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, 1, 5, 0]).status,
        INVARG
    );
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, 1 | (1 << 8), 0, 0]).status,
        INVARG
    );
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, 2, 0, 0]).status,
        INVARG
    );
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, 1, 0, 7]).status,
        INVARG
    );
}

#[test]
fn a_command_runs_once_and_its_response_lands_in_the_buffer() {
    let (mut s, mut m, mut t) = setup();
    assert_eq!(
        command(&mut s, &mut m, &mut t, 0),
        DENIED,
        "locality not held"
    );
    assert!(t.sent.is_empty());
    locality(&mut s, &mut m, &mut t, 0, 1);
    assert_eq!(command(&mut s, &mut m, &mut t, 0), OK);
    assert_eq!(t.sent, [(0, GET_RANDOM.to_vec())]);
    assert_eq!(m.u32(reg::CTRL_START), 0, "completion: start bit cleared");
    assert_eq!(m.u32(reg::CTRL_STS), 0, "no error");
    assert_eq!(
        &m.bytes()[0x80..0x8a],
        &[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0]
    );
    // START without CTRL_START set: nothing runs.
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, START_COMMAND, 0, 0]).status,
        INV_CRB_CTRL_DATA
    );
    assert_eq!(t.sent.len(), 1);
    // A cancel drops the command.
    m.set(reg::CTRL_START, 1);
    m.set(reg::CTRL_CANCEL, 1);
    assert_eq!(
        call(&mut s, &mut m, &mut t, [0, START, START_COMMAND, 0, 0]).status,
        OK
    );
    assert_eq!((m.u32(reg::CTRL_START), m.u32(reg::CTRL_CANCEL)), (0, 0));
    assert_eq!(t.sent.len(), 1);
}

#[test]
fn nothing_the_host_writes_makes_the_service_leave_its_buffer() {
    let (mut s, mut m, mut t) = setup();
    locality(&mut s, &mut m, &mut t, 0, 1);
    let bad: [(u64, u32); 8] = [
        (reg::CMD_LADDR, 0),                             // command buffer elsewhere
        (reg::CMD_LADDR, (CRB_PA + PAGE + DATA) as u32), // another locality's buffer
        (reg::CMD_SIZE, 0x1000),                         // bigger than the buffer
        (reg::CMD_LADDR, (CRB_PA + 0xf00) as u32),       // ends past the page
        (reg::CMD_HADDR, 1),                             // high half elsewhere
        (reg::RSP_SIZE, 0x2000),
        (reg::CMD_SIZE, 8),                       // shorter than a header
        (reg::CMD_LADDR, (CRB_PA + 0x40) as u32), // the registers, not the buffer
    ];
    for (r, v) in bad {
        let (mut s2, mut m2, mut t2) = setup();
        locality(&mut s2, &mut m2, &mut t2, 0, 1);
        m2.set(r, v);
        assert_eq!(
            command(&mut s2, &mut m2, &mut t2, 0),
            INV_CRB_CTRL_DATA,
            "{r:#x}={v:#x}"
        );
        assert!(t2.sent.is_empty(), "{r:#x}");
    }
    // A response address outside the buffer.
    m.bytes()[(reg::RSP_ADDR) as usize..(reg::RSP_ADDR + 8) as usize]
        .copy_from_slice(&(CRB_PA + 2 * PAGE).to_le_bytes());
    assert_eq!(command(&mut s, &mut m, &mut t, 0), INV_CRB_CTRL_DATA);
    // The command's own length must fit in the buffer and hold a header.
    let (mut s, mut m, mut t) = setup();
    locality(&mut s, &mut m, &mut t, 0, 1);
    for len in [0u32, 9, 0xf81, u32::MAX] {
        m.bytes()[0x80..0x8a].copy_from_slice(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.bytes()[0x82..0x86].copy_from_slice(&len.to_be_bytes());
        m.set(reg::CTRL_START, 1);
        assert_eq!(
            call(&mut s, &mut m, &mut t, [0, START, START_COMMAND, 0, 0]).status,
            INV_CRB_CTRL_DATA,
            "{len}"
        );
    }
    assert!(t.sent.is_empty());
}

#[test]
fn tpm_failures_set_the_error_bit_and_still_complete() {
    let (mut s, mut m, mut t) = setup();
    locality(&mut s, &mut m, &mut t, 0, 1);
    t.fail = true;
    assert_eq!(command(&mut s, &mut m, &mut t, 0), OK);
    assert_eq!(m.u32(reg::CTRL_STS) & 1, 1, "tpmSts: error");
    assert_eq!(m.u32(reg::CTRL_START), 0, "no hang: start cleared");
    t.fail = false;
    t.long = true;
    assert_eq!(command(&mut s, &mut m, &mut t, 0), OK);
    assert_eq!(
        m.u32(reg::CTRL_STS) & 1,
        1,
        "a response that does not fit is an error"
    );
    t.long = false;
    assert_eq!(command(&mut s, &mut m, &mut t, 0), OK);
    assert_eq!(m.u32(reg::CTRL_STS) & 1, 0);
}

#[test]
fn an_unreachable_crb_is_bad_control_data() {
    struct Broken;
    impl Crb for Broken {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), OutsideCrb> {
            Err(OutsideCrb)
        }
        fn write(&mut self, _: u64, _: &[u8]) -> Result<(), OutsideCrb> {
            Err(OutsideCrb)
        }
    }
    let mut s = Service::with_state(CRB_PA, Some(0));
    let mut t = FakeTpm::default();
    assert_eq!(
        s.handle([0, START, START_COMMAND, 0, 0], &mut Broken, &mut t)
            .status,
        INV_CRB_CTRL_DATA
    );
    assert!(Service::new(CRB_PA, &mut Broken).is_err());
}
