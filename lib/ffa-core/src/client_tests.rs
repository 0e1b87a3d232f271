//! The client against the real SPMC (`lib/spmc` over simulated RAM), and against a conduit
//! that answers wrongly.

extern crate std;

use super::client::*;
use alloc::boxed::Box;
use alloc::vec::Vec;
use ffa_abi::{FfaError, NIL_UUID, V1_2, fid, testsp};
use spmc::sim::SimRam;
use spmc::test_partition::TestPartition;
use spmc::{Config, NsMemory, Spmc};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x10_0000;
const TX: u64 = RAM + 0x1000;
const RX: u64 = RAM + 0x2000;
const DATA: u64 = RAM + 0x8_0000;

/// EL3 as the real SPMC answers it, with a log of the function IDs called.
struct El3 {
    spmc: Spmc<SimRam>,
    log: Vec<u32>,
}

impl Conduit for El3 {
    fn call(&mut self, x: &mut [u64; 18]) {
        self.log.push(x[0] as u32);
        let r = self.spmc.handle(x);
        r.write_to(x);
    }
}

/// The client's pair in the simulated RAM.
struct SimMbox(SimRam);

impl Mailbox for SimMbox {
    fn tx(&self) -> u64 {
        TX
    }
    fn rx(&self) -> u64 {
        RX
    }
    fn write_tx(&mut self, data: &[u8]) {
        self.0.write(TX, data)
    }
    fn read_rx(&self, buf: &mut [u8]) {
        self.0.read(RX, buf)
    }
}

fn session() -> (Client<El3, SimMbox>, SimRam) {
    let ram = SimRam::new(RAM, RAM_SIZE as usize);
    let cfg = Config {
        ns_ram: alloc::vec![(RAM, RAM_SIZE)],
        secure: alloc::vec![],
        exec_ctx: 2,
    };
    let mut spmc = Spmc::new(cfg, ram.clone());
    spmc.add_partition(Box::new(TestPartition)).unwrap();
    let el3 = El3 {
        spmc,
        log: Vec::new(),
    };
    let c = Client::open(el3, SimMbox(ram.clone())).expect("a session with the SPMC");
    (c, ram)
}

#[test]
fn a_session_negotiates_and_maps_its_pair() {
    let (c, _) = session();
    assert_eq!(c.version, V1_2);
    assert_eq!(c.id, 0);
    assert!(c.req2 && c.regs_discovery);
}

#[test]
fn partitions_are_found_through_registers_and_through_rx() {
    let (mut c, _) = session();
    let by_regs = c.partitions(&NIL_UUID).unwrap();
    assert!(
        by_regs
            .iter()
            .any(|p| p.id == testsp::ID && p.uuid == testsp::UUID)
    );
    assert!(by_regs.iter().any(|p| p.uuid == testsp::UUID_ALT));
    c.regs_discovery = false;
    let by_rx = c.partitions(&NIL_UUID).unwrap();
    assert_eq!(by_regs, by_rx);
    // Asked by UUID, the descriptor's UUID field is Nil (DEN0077A v1.2 §6.2.3, table 6.1:
    // filled in only for a Nil-UUID query): the partition is found by ID.
    let one = c.partitions(&testsp::UUID_ALT).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, testsp::ID);
}

#[test]
fn direct_requests_echo_every_register() {
    let (mut c, _) = session();
    let a5 = [1, u64::MAX, 0x1234_5678_9abc_def0, 0, 5];
    assert_eq!(c.direct_req(testsp::ID, a5), Ok(a5));
    let a14: [u64; 14] = core::array::from_fn(|i| 0x0101_0101_0101_0101u64 * (i as u64 + 1));
    assert_eq!(c.direct_req2(testsp::ID, &testsp::UUID, a14), Ok(a14));
    // The partition says which service UUID the request reached.
    let mut who = [0u64; 14];
    who[0] = testsp::CMD_WHOAMI;
    let r = c.direct_req2(testsp::ID, &testsp::UUID_ALT, who).unwrap();
    assert_eq!(ffa_abi::uuid_from_regs(r[1], r[2]), testsp::UUID_ALT);
    // A partition that does not exist.
    assert!(matches!(c.direct_req(0x8999, a5), Err(CallError::Ffa(_))));
}

#[test]
fn shared_memory_is_checksummed_marked_and_reclaimed() {
    let (mut c, ram) = session();
    let mut ram = ram;
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    ram.write(DATA, &data);
    let h = c.share(testsp::ID, DATA, 2).unwrap();
    let r = c
        .direct_req(
            testsp::ID,
            [testsp::CMD_MEM_CHECK, h & 0xffff_ffff, h >> 32, 0, 0],
        )
        .unwrap();
    assert_eq!(r[1], 0, "the partition retrieved the memory");
    assert_eq!(r[2], testsp::checksum(testsp::CHECKSUM_INIT, &data));
    assert_eq!(r[3], 8192);
    c.reclaim(h).unwrap();
    let mut marker = [0u8; 8];
    ram.read(DATA, &mut marker);
    assert_eq!(marker, testsp::MARKER);
    // Reclaimed once: a second reclaim of the same handle is refused.
    assert!(matches!(c.reclaim(h), Err(CallError::Ffa(_))));
}

/// A conduit that answers the session set-up like a good SPMC, then `bad` to everything.
struct Liar {
    good: El3,
    calls: usize,
    bad: [u64; 18],
}

impl Conduit for Liar {
    fn call(&mut self, x: &mut [u64; 18]) {
        self.calls += 1;
        // FFA_VERSION, ID_GET, 3x FEATURES, RXTX_MAP answered for real.
        if self.calls <= 6 || x[0] as u32 == fid::RXTX_UNMAP {
            return self.good.call(x);
        }
        *x = self.bad;
    }
}

fn liar(bad: [u64; 18]) -> Client<Liar, SimMbox> {
    let (c, ram) = session();
    drop(c);
    let cfg = Config {
        ns_ram: alloc::vec![(RAM, RAM_SIZE)],
        secure: alloc::vec![],
        exec_ctx: 2,
    };
    let mut spmc = Spmc::new(cfg, ram.clone());
    spmc.add_partition(Box::new(TestPartition)).unwrap();
    let good = El3 {
        spmc,
        log: Vec::new(),
    };
    Client::open(
        Liar {
            good,
            calls: 0,
            bad,
        },
        SimMbox(ram),
    )
    .unwrap()
}

fn reply(v: &[u64]) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[..v.len()].copy_from_slice(v);
    r
}

#[test]
fn unexpected_replies_are_errors_never_results() {
    // FFA_SUCCESS where a direct response was due: not an echo of anything.
    let mut c = liar(reply(&[u64::from(fid::SUCCESS64), 0, 1, 2, 3]));
    assert!(matches!(
        c.direct_req(testsp::ID, [1, 2, 3, 4, 5]),
        Err(CallError::Unexpected { .. })
    ));
    // A direct response from someone else.
    let mut c = liar(reply(&[
        u64::from(fid::DIRECT_RESP64),
        (0x8002 << 16),
        0,
        1,
        2,
        3,
        4,
        5,
    ]));
    assert!(matches!(
        c.direct_req(testsp::ID, [1, 2, 3, 4, 5]),
        Err(CallError::Unexpected { .. })
    ));
    // A direct response where a handle was due.
    let mut c = liar(reply(&[
        u64::from(fid::DIRECT_RESP64),
        u64::from(testsp::ID) << 16,
    ]));
    assert!(matches!(
        c.share(testsp::ID, DATA, 1),
        Err(CallError::Unexpected { .. })
    ));
    // A PARTITION_INFO_GET_REGS reply whose descriptor size is not 24, or whose current
    // index is past the last: refused, not read.
    for x2 in [(16u64 << 48), (24u64 << 48) | (3 << 16) | 1] {
        let mut c = liar(reply(&[u64::from(fid::SUCCESS64), 0, x2]));
        assert!(
            matches!(c.partitions(&NIL_UUID), Err(CallError::Unexpected { .. })),
            "{x2:#x}"
        );
    }
    // Not an FF-A function at all.
    let mut c = liar(reply(&[0xdead_beef]));
    assert!(matches!(
        c.id_get(),
        Err(CallError::Unexpected {
            x0: 0xdead_beef,
            ..
        })
    ));
    // FFA_ERROR carries its status.
    let mut c = liar(reply(&[
        u64::from(fid::ERROR),
        0,
        FfaError::Denied as i32 as u32 as u64,
    ]));
    assert_eq!(c.reclaim(7), Err(CallError::Ffa(FfaError::Denied)));
    // Interrupted forever: given up after the resume limit, never an answer.
    let mut c = liar(reply(&[u64::from(fid::INTERRUPT)]));
    assert!(matches!(
        c.direct_req(testsp::ID, [0; 5]),
        Err(CallError::Unexpected { .. })
    ));
}

#[test]
fn no_ffa_is_a_quiet_absence() {
    struct Nothing;
    impl Conduit for Nothing {
        fn call(&mut self, x: &mut [u64; 18]) {
            *x = reply(&[u64::MAX]);
        }
    }
    let ram = SimRam::new(RAM, RAM_SIZE as usize);
    assert_eq!(
        Client::open(Nothing, SimMbox(ram)).err(),
        Some(OpenError::Absent)
    );
}

#[test]
fn closing_the_session_unmaps_the_pair() {
    struct Logged(El3, std::rc::Rc<core::cell::RefCell<Vec<u32>>>);
    impl Conduit for Logged {
        fn call(&mut self, x: &mut [u64; 18]) {
            self.1.borrow_mut().push(x[0] as u32);
            self.0.call(x)
        }
    }
    let (c, ram) = session();
    drop(c);
    let cfg = Config {
        ns_ram: alloc::vec![(RAM, RAM_SIZE)],
        secure: alloc::vec![],
        exec_ctx: 2,
    };
    let spmc = Spmc::new(cfg, ram.clone());
    let log = std::rc::Rc::new(core::cell::RefCell::new(Vec::new()));
    let c = Client::open(
        Logged(
            El3 {
                spmc,
                log: Vec::new(),
            },
            log.clone(),
        ),
        SimMbox(ram),
    )
    .unwrap();
    assert!(log.borrow().contains(&fid::RXTX_MAP64));
    assert!(!log.borrow().contains(&fid::RXTX_UNMAP));
    drop(c);
    assert_eq!(log.borrow().last(), Some(&fid::RXTX_UNMAP));
}

/// A conduit that answers the session set-up for real, then from a script, recording calls.
struct Script {
    good: El3,
    calls: Vec<[u64; 18]>,
    answers: std::vec::IntoIter<[u64; 18]>,
}

impl Conduit for Script {
    fn call(&mut self, x: &mut [u64; 18]) {
        if self.good.log.len() < 6 || x[0] as u32 == fid::RXTX_UNMAP {
            return self.good.call(x);
        }
        self.calls.push(*x);
        *x = self.answers.next().unwrap_or(reply(&[
            u64::from(fid::ERROR),
            0,
            (-8i32) as u32 as u64,
        ]));
    }
}

/// A session set up for real whose later calls are answered by `answers`, in order.
fn scripted(answers: Vec<[u64; 18]>) -> Client<Script, SimMbox> {
    let ram = SimRam::new(RAM, RAM_SIZE as usize);
    let cfg = Config {
        ns_ram: alloc::vec![(RAM, RAM_SIZE)],
        secure: alloc::vec![],
        exec_ctx: 2,
    };
    let good = El3 {
        spmc: Spmc::new(cfg, ram.clone()),
        log: Vec::new(),
    };
    let script = Script {
        good,
        calls: Vec::new(),
        answers: answers.into_iter(),
    };
    Client::open(script, SimMbox(ram)).unwrap()
}

/// The scripted calls were the request `req` to the test partition, then two FFA_RUNs, which
/// (SMC32) name the partition in w1[31:16].
fn assert_resumed_twice(c: &Client<Script, SimMbox>, req: u32) {
    let calls: Vec<(u32, u64)> = c
        .conduit()
        .calls
        .iter()
        .map(|x| (x[0] as u32, x[1]))
        .collect();
    assert_eq!(
        calls,
        [
            (req, u64::from(testsp::ID)),
            (fid::RUN, u64::from(testsp::ID) << 16),
            (fid::RUN, u64::from(testsp::ID) << 16),
        ]
    );
}

#[test]
fn interrupted_requests_are_resumed_with_run() {
    let mut resp = reply(&[u64::from(fid::DIRECT_RESP64), u64::from(testsp::ID) << 16]);
    resp[3] = 42;
    let mut c = scripted(alloc::vec![
        reply(&[u64::from(fid::INTERRUPT)]),
        reply(&[u64::from(fid::YIELD)]),
        resp,
    ]);
    assert_eq!(c.direct_req(testsp::ID, [1, 0, 0, 0, 0]).unwrap()[0], 42);
    assert_resumed_twice(&c, fid::DIRECT_REQ64);
}

/// The test partition's properties: REQ and REQ2 receipt, AArch64 (0x301).
const TESTSP_PROPS: u32 = 0x301;

#[test]
fn in_place_requests_echo_in_both_forms() {
    let (mut c, _) = session();
    let a14: [u64; 14] = core::array::from_fn(|i| 0x0101_0101_0101_0101u64 * (i as u64 + 1));
    let mut a = a14;
    let form = c
        .send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID, &mut a, None)
        .unwrap();
    assert_eq!((form, a), (crate::Form::Req2, a14));
    // REQ2 carries the service UUID: the partition names the one the request reached.
    let mut who = [0u64; 14];
    who[0] = testsp::CMD_WHOAMI;
    c.send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID_ALT, &mut who, None)
        .unwrap();
    assert_eq!(ffa_abi::uuid_from_regs(who[1], who[2]), testsp::UUID_ALT);
    // REQ carries five registers: more is refused before any call; `send` zeroes the rest.
    let mut a = a14;
    a[0] = 7;
    let before = c.conduit().log.len();
    assert_eq!(
        c.send_in_place(
            testsp::ID,
            TESTSP_PROPS,
            &testsp::UUID,
            &mut a,
            Some(crate::Form::Req),
        ),
        Err(CallError::Ffa(FfaError::InvalidParameters))
    );
    assert_eq!(c.conduit().log.len(), before, "nothing sent");
    let form = c
        .send_in_place(
            testsp::ID,
            TESTSP_PROPS,
            &testsp::UUID,
            &mut a[..5],
            Some(crate::Form::Req),
        )
        .unwrap();
    assert_eq!(form, crate::Form::Req);
    assert_eq!(a[0], 7);
    assert_eq!(a[5..], a14[5..]);
    // Fewer: only those travel (the registers after them zero) and come back.
    let mut three = [11u64, 12, 13];
    c.send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID, &mut three, None)
        .unwrap();
    assert_eq!(three, [11, 12, 13]);
    let (_, out) = c
        .send(
            testsp::ID,
            TESTSP_PROPS,
            &testsp::UUID,
            a14,
            Some(crate::Form::Req),
        )
        .unwrap();
    assert_eq!(out[..5], a14[..5]);
    assert!(out[5..].iter().all(|v| *v == 0));
    // A partition without REQ2 receipt gets REQ.
    let mut a = a14;
    let form = c
        .send_in_place(testsp::ID, 0x101, &testsp::UUID, &mut a[..5], None)
        .unwrap();
    assert_eq!(form, crate::Form::Req);
    // A partition that does not exist: the SPMC's error.
    assert!(matches!(
        c.send_in_place(0x8999, TESTSP_PROPS, &testsp::UUID, &mut a, None),
        Err(CallError::Ffa(_))
    ));
}

#[test]
fn in_place_requests_refuse_every_wrong_answer_and_keep_args() {
    let tp = u64::from(testsp::ID);
    let resp2 = u64::from(fid::DIRECT_RESP2);
    let resp64 = u64::from(fid::DIRECT_RESP64);
    let req2 = Some(crate::Form::Req2);
    let req = Some(crate::Form::Req);
    let cases: [([u64; 8], Option<crate::Form>, &str); 9] = [
        ([resp2, tp << 16, 0, 0, 9, 9, 9, 9], req2, "good"),
        (
            [resp2, 0x8002 << 16, 0, 0, 9, 9, 9, 9],
            req2,
            "from someone else",
        ),
        (
            [resp2, tp << 16 | 5, 0, 0, 9, 9, 9, 9],
            req2,
            "to someone else",
        ),
        (
            [resp2, (1 << 32) | tp << 16, 0, 0, 9, 9, 9, 9],
            req2,
            "x1[63:32] set",
        ),
        (
            [resp2, tp << 16, 1, 0, 9, 9, 9, 9],
            req2,
            "RESP2's x2 not zero",
        ),
        ([resp64, tp << 16, 0, 9, 9, 9, 9, 9], req2, "RESP for REQ2"),
        (
            [resp64, tp << 16, 1 << 31, 9, 9, 9, 9, 9],
            req,
            "a framework message",
        ),
        (
            [u64::from(fid::DIRECT_RESP32), tp << 16, 0, 9, 9, 9, 9, 9],
            req,
            "RESP32 for REQ64",
        ),
        (
            [u64::from(fid::SUCCESS64), 0, 0, 9, 9, 9, 9, 9],
            req,
            "SUCCESS",
        ),
    ];
    for (regs, form, what) in cases {
        let mut c = liar(reply(&regs));
        let mut a = [1u64; 14];
        let n = if form == req { 5 } else { 14 };
        let r = c.send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID, &mut a[..n], form);
        if what == "good" {
            assert_eq!(r, Ok(crate::Form::Req2));
            assert_eq!(a[..4], [9, 9, 9, 9]);
            continue;
        }
        assert!(
            matches!(r, Err(CallError::Unexpected { .. })),
            "{what}: {r:?}"
        );
        assert_eq!(a, [1u64; 14], "{what}: args changed");
    }
    // FFA_ERROR carries its status.
    let mut c = liar(reply(&[
        u64::from(fid::ERROR),
        0,
        FfaError::Busy as i32 as u32 as u64,
    ]));
    let mut a = [1u64; 14];
    assert_eq!(
        c.send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID, &mut a, req2),
        Err(CallError::Ffa(FfaError::Busy))
    );
    // Interrupted forever: given up after the resume limit.
    let mut c = liar(reply(&[u64::from(fid::INTERRUPT)]));
    assert!(matches!(
        c.send_in_place(testsp::ID, TESTSP_PROPS, &testsp::UUID, &mut a, req2),
        Err(CallError::Unexpected { .. })
    ));
    // Six set-up calls, the request, then MAX_RESUMES FFA_RUNs.
    assert_eq!(c.conduit().calls, 6 + 1 + crate::MAX_RESUMES);
}

#[test]
fn interrupted_in_place_requests_are_resumed_with_run() {
    let mut resp = reply(&[u64::from(fid::DIRECT_RESP2), u64::from(testsp::ID) << 16]);
    resp[4] = 42;
    let mut c = scripted(alloc::vec![
        reply(&[u64::from(fid::YIELD)]),
        reply(&[u64::from(fid::INTERRUPT)]),
        resp,
    ]);
    let mut a = [0u64; 14];
    c.send_in_place(
        testsp::ID,
        TESTSP_PROPS,
        &testsp::UUID,
        &mut a,
        Some(crate::Form::Req2),
    )
    .unwrap();
    assert_eq!(a[0], 42);
    assert_resumed_twice(&c, fid::DIRECT_REQ2);
}
