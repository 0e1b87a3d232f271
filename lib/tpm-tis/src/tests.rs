extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Ready,
    Reception,
    Execution,
    Completion,
}

/// A TIS with QEMU's state machine (hw/tpm/tpm_tis_common.c's states), a TPM behind it that
/// answers through `answer`, and knobs for misbehaviour.
struct Fake {
    active: Option<u8>,
    /// Another agent holds this locality and never lets go.
    other_holder: Option<u8>,
    state: State,
    cmd: Vec<u8>,
    rsp: Vec<u8>,
    rsp_pos: usize,
    burst: usize,
    clock: u64,
    /// Commands the TPM received, by locality.
    received: Vec<(u8, Vec<u8>)>,
    answer: fn(&[u8]) -> Vec<u8>,
    absent: bool,
    never_ready: bool,
    never_completes: bool,
    /// The TPM's idea of the command length differs from the header by this much.
    expect_skew: isize,
    writes: usize,
}

fn echo_ok(cmd: &[u8]) -> Vec<u8> {
    // A success response carrying the command's code as its body.
    let mut r = vec![0x80, 0x01, 0, 0, 0, 14, 0, 0, 0, 0];
    r.extend_from_slice(&cmd[6..10]);
    r
}

impl Fake {
    fn new() -> Fake {
        Fake {
            active: None,
            other_holder: None,
            state: State::Idle,
            cmd: Vec::new(),
            rsp: Vec::new(),
            rsp_pos: 0,
            burst: 7,
            clock: 0,
            received: Vec::new(),
            answer: echo_ok,
            absent: false,
            never_ready: false,
            never_completes: false,
            expect_skew: 0,
            writes: 0,
        }
    }

    fn expected_len(&self) -> Option<usize> {
        (self.cmd.len() >= 6).then(|| {
            let l = u32::from_be_bytes([self.cmd[2], self.cmd[3], self.cmd[4], self.cmd[5]]);
            (l as isize + self.expect_skew) as usize
        })
    }

    fn expect(&self) -> bool {
        self.expected_len().is_none_or(|l| self.cmd.len() < l)
    }

    fn loc_of(off: u32) -> (u8, u32) {
        ((off >> 12) as u8, off & 0xfff)
    }
}

impl Io for Fake {
    fn read8(&mut self, off: u32) -> u8 {
        self.clock += 10;
        if self.absent {
            return 0xff;
        }
        let (loc, r) = Fake::loc_of(off);
        match r {
            reg::ACCESS => {
                let mut a = access::VALID;
                if self.active == Some(loc) {
                    a |= access::ACTIVE;
                }
                a
            }
            reg::DATA_FIFO if self.active == Some(loc) && self.state == State::Completion => {
                let b = self.rsp.get(self.rsp_pos).copied().unwrap_or(0xff);
                self.rsp_pos += 1;
                b
            }
            reg::RID => 1,
            _ => 0xff,
        }
    }

    fn write8(&mut self, off: u32, v: u8) {
        self.clock += 10;
        self.writes += 1;
        let (loc, r) = Fake::loc_of(off);
        match r {
            reg::ACCESS => {
                if v & access::REQUEST_USE != 0
                    && self.active.is_none()
                    && self.other_holder.is_none()
                {
                    self.active = Some(loc);
                }
                if v & access::ACTIVE != 0 && self.active == Some(loc) {
                    self.active = None;
                    self.state = State::Idle;
                }
            }
            reg::DATA_FIFO if self.active == Some(loc) => match self.state {
                State::Ready | State::Reception if self.expect() => {
                    self.cmd.push(v);
                    self.state = State::Reception;
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn read32(&mut self, off: u32) -> u32 {
        self.clock += 10;
        if self.absent {
            return u32::MAX;
        }
        let (loc, r) = Fake::loc_of(off);
        match r {
            reg::DID_VID => 0x0001_1014,
            reg::STS if self.active != Some(loc) => u32::MAX,
            reg::STS => match self.state {
                State::Idle => 0,
                State::Ready => sts::VALID | sts::COMMAND_READY | ((self.burst as u32) << 8),
                State::Reception => {
                    let e = if self.expect() { sts::EXPECT } else { 0 };
                    sts::VALID | e | ((self.burst as u32) << 8)
                }
                State::Execution => 0,
                State::Completion => {
                    let left = self.rsp.len().saturating_sub(self.rsp_pos);
                    let d = if left > 0 { sts::DATA_AVAIL } else { 0 };
                    sts::VALID | d | ((left.min(self.burst) as u32) << 8)
                }
            },
            _ => u32::MAX,
        }
    }

    fn write32(&mut self, off: u32, v: u32) {
        self.clock += 10;
        self.writes += 1;
        let (loc, r) = Fake::loc_of(off);
        if r != reg::STS || self.active != Some(loc) {
            return;
        }
        if v & sts::COMMAND_READY != 0 && !self.never_ready {
            self.state = State::Ready;
            self.cmd.clear();
            self.rsp.clear();
            self.rsp_pos = 0;
        }
        if v & sts::GO != 0 && self.state == State::Reception && !self.expect() {
            self.received.push((loc, self.cmd.clone()));
            if self.never_completes {
                self.state = State::Execution;
            } else {
                self.rsp = (self.answer)(&self.cmd);
                self.rsp_pos = 0;
                self.state = State::Completion;
            }
        }
    }

    fn now_us(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

const T: Timeouts = Timeouts {
    a_us: 1000,
    b_us: 1000,
    c_us: 1000,
    command_us: 5000,
};

/// A command of `len` bytes with code 0x0000_0143 (TPM2_SelfTest's) and a patterned body.
fn cmd(len: usize) -> Vec<u8> {
    let mut c = vec![0x80, 0x01];
    c.extend_from_slice(&(len as u32).to_be_bytes());
    c.extend_from_slice(&0x143u32.to_be_bytes());
    c.extend((10..len).map(|i| i as u8));
    c
}

fn run(f: Fake, c: &[u8], rsp_len: usize) -> (Result<Vec<u8>, TisError>, Fake) {
    let mut t = Tis::new(f, T);
    let mut rsp = vec![0u8; rsp_len];
    let r = t.execute(2, c, &mut rsp).map(|n| rsp[..n].to_vec());
    (r, t.into_io())
}

#[test]
fn a_command_goes_over_in_bursts_and_its_response_comes_back() {
    let c = cmd(30);
    let (r, f) = run(Fake::new(), &c, 64);
    assert_eq!(r.unwrap(), echo_ok(&c));
    assert_eq!(f.received, vec![(2, c)]);
    assert_eq!(f.active, None, "the locality is given back");
    assert_eq!(f.state, State::Idle);
}

#[test]
fn identity_and_absence() {
    let mut t = Tis::new(Fake::new(), T);
    assert_eq!(
        t.ids(),
        Ok(Ids {
            vid: 0x1014,
            did: 1,
            rid: 1
        })
    );
    let mut f = Fake::new();
    f.absent = true;
    let mut t = Tis::new(f, T);
    assert_eq!(t.ids(), Err(TisError::NotPresent));
    let mut rsp = [0u8; 64];
    assert_eq!(t.execute(0, &cmd(12), &mut rsp), Err(TisError::NotPresent));
}

#[test]
fn a_locality_someone_else_holds_times_out() {
    let mut f = Fake::new();
    f.other_holder = Some(0);
    let (r, f) = run(f, &cmd(12), 64);
    assert_eq!(r, Err(TisError::LocalityTimeout));
    assert!(f.received.is_empty());
    assert!(f.clock < 10 * T.a_us, "bounded: {}", f.clock);
}

#[test]
fn a_tpm_that_never_gets_ready_is_named() {
    let mut f = Fake::new();
    f.never_ready = true;
    assert_eq!(run(f, &cmd(12), 64).0, Err(TisError::NotReady));
}

#[test]
fn expect_must_hold_until_the_last_byte_and_drop_after_it() {
    // The TPM thinks the command is shorter: it stops expecting early.
    let mut f = Fake::new();
    f.expect_skew = -3;
    let (r, f) = run(f, &cmd(30), 64);
    assert_eq!(r, Err(TisError::Expect));
    assert!(f.received.is_empty(), "nothing executed");
    // ... or longer: it still expects after the last byte.
    let mut f = Fake::new();
    f.expect_skew = 2;
    let (r, f) = run(f, &cmd(30), 64);
    assert_eq!(r, Err(TisError::Expect));
    assert!(f.received.is_empty());
}

#[test]
fn a_command_that_never_completes_times_out_and_is_aborted() {
    let mut f = Fake::new();
    f.never_completes = true;
    let (r, f) = run(f, &cmd(12), 64);
    assert_eq!(r, Err(TisError::CommandTimeout));
    assert!(f.clock < 10 * T.command_us);
    assert_eq!(f.active, None);
}

#[test]
fn response_lengths_are_checked_against_the_header_and_the_buffer() {
    let c = cmd(12);
    // Longer than the caller's buffer.
    assert_eq!(run(Fake::new(), &c, 13).0, Err(TisError::BadResponseLength));
    // Shorter than a header.
    let mut f = Fake::new();
    f.answer = |_| vec![0x80, 0x01, 0, 0, 0, 9, 0, 0, 0, 0];
    assert_eq!(run(f, &c, 64).0, Err(TisError::BadResponseLength));
    // The header promises more than the TPM has.
    let mut f = Fake::new();
    f.answer = |_| vec![0x80, 0x01, 0, 0, 0, 20, 0, 0, 0, 0, 1, 2];
    assert_eq!(run(f, &c, 64).0, Err(TisError::ResponseOverrun));
    // The TPM has more than the header says.
    let mut f = Fake::new();
    f.answer = |_| vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 1, 2];
    assert_eq!(run(f, &c, 64).0, Err(TisError::ResponseOverrun));
    // A buffer smaller than a header.
    assert_eq!(run(Fake::new(), &c, 9).0, Err(TisError::BadResponseLength));
}

#[test]
fn malformed_commands_and_localities_touch_nothing() {
    let mut bad = cmd(12);
    bad[5] = 13;
    for (loc, c) in [
        (2, bad),
        (2, vec![0x80, 1, 0, 0, 0, 9, 0, 0, 0]),
        (5, cmd(12)),
    ] {
        let mut t = Tis::new(Fake::new(), T);
        let mut rsp = [0u8; 64];
        let want = if loc == 5 {
            TisError::BadLocality
        } else {
            TisError::BadCommand
        };
        assert_eq!(t.transmit(loc, &c, &mut rsp), Err(want));
        assert_eq!(t.into_io().writes, 0);
    }
}

#[test]
fn after_a_failure_the_next_command_works() {
    let mut f = Fake::new();
    f.answer = |_| vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 1, 2];
    let mut t = Tis::new(f, T);
    let mut rsp = [0u8; 64];
    assert_eq!(
        t.execute(0, &cmd(12), &mut rsp),
        Err(TisError::ResponseOverrun)
    );
    let mut f = t.into_io();
    f.answer = echo_ok;
    let mut t = Tis::new(f, T);
    let c = cmd(40);
    let n = t.execute(0, &c, &mut rsp).unwrap();
    assert_eq!(&rsp[..n], &echo_ok(&c)[..]);
}
