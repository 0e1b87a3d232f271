extern crate std;

use super::*;
use alloc::boxed::Box;
use ffa_abi::{V1_0, testsp};
use spmc::test_partition::TestPartition;
use spmc::{Config, NsMemory, Spmc};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x20_0000;
const HYP: (u64, u64) = (0x4010_0000, 0x1_0000);
const HYP_TX: u64 = HYP.0;
const HYP_RX: u64 = HYP.0 + 0x1000;
const HOST_TX: u64 = RAM + 0x1000;
const HOST_RX: u64 = RAM + 0x2000;
const DATA: u64 = RAM + 0x8_0000;
const INV: i64 = FfaError::InvalidParameters as i64;
const NS: i64 = FfaError::NotSupported as i64;
const DEN: i64 = FfaError::Denied as i64;

type SharedRam = spmc::sim::SimRam;

/// EL3 as the real SPMC answers it, with the firmware's register rules, and a log of calls.
struct Machine {
    ram: SharedRam,
    spmc: Option<Spmc<SharedRam>>,
    log: Vec<u32>,
}

impl Platform for Machine {
    fn smc(&mut self, x: [u64; 18]) -> [u64; 18] {
        self.log.push(x[0] as u32);
        let Some(s) = self.spmc.as_mut() else {
            let mut r = x;
            r[0] = u64::MAX; // no FF-A: SMCCC NOT_SUPPORTED
            return r;
        };
        let mut out = x;
        s.handle(&x).write_to(&mut out);
        out
    }
    fn read(&self, pa: u64, buf: &mut [u8]) {
        self.ram.read(pa, buf)
    }
    fn write(&mut self, pa: u64, data: &[u8]) {
        self.ram.clone().write(pa, data)
    }
}

fn machine(ffa: bool) -> Machine {
    let ram = SharedRam::new(RAM, RAM_SIZE as usize);
    let spmc = ffa.then(|| {
        let cfg = Config {
            ns_ram: alloc::vec![(RAM, RAM_SIZE)],
            secure: alloc::vec![],
            exec_ctx: 2,
        };
        let mut s = Spmc::new(cfg, ram.clone());
        s.add_partition(Box::new(TestPartition)).unwrap();
        s
    });
    Machine {
        ram,
        spmc,
        log: Vec::new(),
    }
}

fn proxy() -> Proxy<Machine> {
    Proxy::init(
        machine(true),
        Ownership::new(&[(RAM, RAM_SIZE)], &[HYP]),
        HYP_TX,
        HYP_RX,
    )
}

fn call(p: &mut Proxy<Machine>, v: &[u64]) -> [u64; 18] {
    p.handle(&regs(v)).expect("an FF-A call")
}

fn code(r: [u64; 18]) -> i64 {
    if r[0] == u64::from(fid::ERROR) {
        r[2] as u32 as i32 as i64
    } else {
        0
    }
}

fn host(v: Version) -> Proxy<Machine> {
    let mut p = proxy();
    assert_eq!(
        call(
            &mut p,
            &[fid::VERSION as u64, u64::from(ffa_abi::version_word(v))]
        )[0],
        0x1_0002
    );
    p
}

fn mapped(v: Version) -> Proxy<Machine> {
    let mut p = host(v);
    assert_eq!(
        code(call(&mut p, &[fid::RXTX_MAP64 as u64, HOST_TX, HOST_RX, 1])),
        0
    );
    p
}

fn forwarded(p: &mut Proxy<Machine>, f: u32) -> usize {
    p.platform().log.iter().filter(|x| **x == f).count()
}

#[test]
fn init_negotiates_and_maps_the_hyp_buffers() {
    let mut p = proxy();
    assert_eq!(p.firmware(), Ok(V1_2));
    assert_eq!(p.platform().log, [fid::VERSION, fid::RXTX_MAP64]);
    assert_eq!(
        p.handle(&regs(&[0x8400_0000])),
        None,
        "PSCI is not the proxy's"
    );
}

#[test]
fn without_ffa_the_proxy_is_inert() {
    let mut p = Proxy::init(
        machine(false),
        Ownership::new(&[(RAM, RAM_SIZE)], &[HYP]),
        HYP_TX,
        HYP_RX,
    );
    assert_eq!(p.firmware(), Err(Inert::NoFfa));
    assert_eq!(
        call(&mut p, &[fid::VERSION as u64, 0x1_0002])[0],
        0xffff_ffff
    );
    assert_eq!(code(call(&mut p, &[fid::ID_GET as u64])), NS);
    assert_eq!(
        p.platform().log,
        [fid::VERSION],
        "nothing forwarded after the probe"
    );
}

#[test]
fn nothing_before_the_hosts_version() {
    let mut p = proxy();
    assert_eq!(code(call(&mut p, &[fid::ID_GET as u64])), INV);
    assert_eq!(code(call(&mut p, &[fid::DIRECT_REQ64 as u64, 0x8001])), INV);
    assert_eq!(forwarded(&mut p, fid::ID_GET), 0);
    // Version: answered by the proxy, recorded, never forwarded again.
    assert_eq!(call(&mut p, &[fid::VERSION as u64, 0x1_0001])[0], 0x1_0002);
    assert_eq!(p.host_version(), Some(V1_1));
    assert_eq!(forwarded(&mut p, fid::VERSION), 1);
    assert_eq!(
        call(&mut p, &[fid::VERSION as u64, 0x2_0000])[0],
        0xffff_ffff
    );
    assert_eq!(call(&mut p, &[fid::ID_GET as u64])[2], 0, "forwarded now");
    // After another ABI, a different version is refused.
    assert_eq!(
        call(&mut p, &[fid::VERSION as u64, 0x1_0002])[0],
        0xffff_ffff
    );
    assert_eq!(call(&mut p, &[fid::VERSION as u64, 0x1_0001])[0], 0x1_0002);
}

#[test]
fn deny_list_and_features() {
    let mut p = host(V1_2);
    for f in [
        fid::MEM_RETRIEVE_REQ64,
        fid::MEM_DONATE64,
        fid::MEM_FRAG_TX,
        fid::DIRECT_RESP64,
        fid::RXTX_MAP32,
        0x8400_0086,
        0x8400_007F,
    ] {
        assert_eq!(code(call(&mut p, &[f as u64])), NS, "{f:#x}");
        assert_eq!(forwarded(&mut p, f), 0, "{f:#x} must not reach EL3");
        assert_eq!(
            code(call(&mut p, &[fid::FEATURES as u64, f as u64])),
            NS,
            "FEATURES({f:#x})"
        );
    }
    // REQ2 is not denied: FFA_FEATURES is the firmware's truth.
    assert_eq!(
        call(&mut p, &[fid::FEATURES as u64, fid::DIRECT_REQ2 as u64])[0],
        u64::from(fid::SUCCESS32)
    );
    assert_eq!(forwarded(&mut p, fid::FEATURES), 1);
    assert_eq!(
        call(&mut p, &[fid::FEATURES as u64, fid::MEM_SHARE64 as u64])[2] & 1,
        0
    );
    assert_eq!(
        call(&mut p, &[fid::FEATURES as u64, fid::RXTX_MAP64 as u64])[2],
        1 << 16
    );
    assert_eq!(
        call(
            &mut p,
            &[fid::FEATURES as u64, fid::PARTITION_INFO_GET_REGS as u64]
        )[0],
        u64::from(fid::SUCCESS32)
    );
}

#[test]
fn rxtx_checks_and_ownership() {
    let mut p = host(V1_2);
    let map = |p: &mut Proxy<Machine>, tx: u64, rx: u64, n: u64| {
        code(call(p, &[fid::RXTX_MAP64 as u64, tx, rx, n]))
    };
    assert_eq!(
        map(&mut p, HYP_TX, HOST_RX, 1),
        INV,
        "hyp memory is not the host's"
    );
    assert_eq!(map(&mut p, 0x0900_0000, HOST_RX, 1), INV, "not RAM");
    assert_eq!(map(&mut p, HOST_TX + 8, HOST_RX, 1), INV, "unaligned");
    assert_eq!(map(&mut p, HOST_TX, HOST_RX, 2), INV, "size");
    assert_eq!(map(&mut p, HOST_TX, HOST_TX, 1), INV, "same page");
    assert_eq!(
        p.ownership().state(HOST_TX),
        Some(State::Owned),
        "a refused map moved nothing"
    );
    assert_eq!(map(&mut p, HOST_TX, HOST_RX, 1), 0);
    assert_eq!(p.ownership().state(HOST_TX), Some(State::SharedHyp));
    assert_eq!(p.ownership().state(HOST_RX), Some(State::SharedHyp));
    assert_eq!(map(&mut p, DATA, DATA + 0x1000, 1), DEN, "double map");
    assert_eq!(
        map(&mut p, HYP_TX, DATA, 1),
        INV,
        "a hyp page is invalid even when mapped already"
    );
    // The host's buffers never reach the firmware: its only RXTX_MAP was the hyp's.
    assert_eq!(forwarded(&mut p, fid::RXTX_MAP64), 1);
    assert_eq!(code(call(&mut p, &[fid::RXTX_UNMAP as u64, 5 << 16])), INV);
    assert_eq!(code(call(&mut p, &[fid::RXTX_UNMAP as u64])), 0);
    assert_eq!(p.ownership().state(HOST_RX), Some(State::Owned));
    assert_eq!(code(call(&mut p, &[fid::RXTX_UNMAP as u64])), INV);
    assert_eq!(forwarded(&mut p, fid::RXTX_UNMAP), 0);
}

#[test]
fn partition_info_through_the_hyp_in_the_hosts_size() {
    let mut p = host(V1_1);
    assert_eq!(
        code(call(&mut p, &[fid::PARTITION_INFO_GET as u64])),
        FfaError::Busy as i64,
        "no host RX"
    );
    assert_eq!(
        code(call(&mut p, &[fid::RXTX_MAP64 as u64, HOST_TX, HOST_RX, 1])),
        0
    );
    let r = call(&mut p, &[fid::PARTITION_INFO_GET as u64]);
    assert_eq!((r[2], r[3]), (2, 24));
    let mut rx = [0u8; 48];
    p.platform().read(HOST_RX, &mut rx);
    let d = ffa_abi::partinfo::decode(&rx, 2, 24).unwrap();
    assert_eq!(d[1].uuid, testsp::UUID_ALT);
    assert_eq!(
        d[0].props & (1 << 9),
        0,
        "a v1.1 host does not see v1.2 property bits"
    );
    // The firmware's RX is busy until the host releases, which is forwarded.
    assert_eq!(
        code(call(&mut p, &[fid::PARTITION_INFO_GET as u64])),
        FfaError::Busy as i64
    );
    assert_eq!(code(call(&mut p, &[fid::RX_RELEASE as u64])), 0);
    assert_eq!(code(call(&mut p, &[fid::PARTITION_INFO_GET as u64])), 0);
    // Count only needs no buffers.
    call(&mut p, &[fid::RX_RELEASE as u64]);
    let r = call(&mut p, &[fid::PARTITION_INFO_GET as u64, 0, 0, 0, 0, 1]);
    assert_eq!((r[2], r[3]), (2, 24));
    // A v1.0 host gets 8-byte descriptors from a v1.2 firmware.
    let mut p = mapped(V1_0);
    let r = call(&mut p, &[fid::PARTITION_INFO_GET as u64]);
    assert_eq!((r[2], r[3]), (2, 0));
    let mut rx = [0u8; 16];
    p.platform().read(HOST_RX, &mut rx);
    assert_eq!(&rx[..8], &[0x01, 0x80, 2, 0, 1, 0, 0, 0]);
}

fn share(p: &mut Proxy<Machine>, v: Version, f: u32, cs: Vec<Constituent>) -> [u64; 18] {
    let d = share_descriptor(v, testsp::ID, cs);
    p.platform().write(HOST_TX, &d);
    call(p, &[f as u64, d.len() as u64, d.len() as u64])
}

fn c(address: u64, pages: u32) -> Constituent {
    Constituent { address, pages }
}

#[test]
fn share_check_reclaim_with_ownership() {
    for v in [V1_0, V1_1, V1_2] {
        let mut p = mapped(v);
        let content: Vec<u8> = (0..0x2000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        p.platform().write(DATA, &content);
        let r = share(&mut p, v, fid::MEM_SHARE64, alloc::vec![c(DATA, 2)]);
        assert_eq!(r[0], u64::from(fid::SUCCESS32), "{v}");
        let h = r[2] | (r[3] << 32);
        assert_eq!(
            p.ownership().state(DATA + 0x1000),
            Some(State::SharedSecure)
        );
        assert_eq!(p.outstanding().len(), 1);
        // The firmware read a descriptor in its own layout from the hyp's TX.
        let mut fw_desc = [0u8; 128];
        p.platform().read(HYP_TX, &mut fw_desc);
        assert!(ffa_abi::mem::parse(V1_2, &fw_desc, Composite::Required).is_ok());
        // Through the proxy to the test partition and back.
        let r = call(
            &mut p,
            &[
                fid::DIRECT_REQ64 as u64,
                0x8001,
                0,
                testsp::CMD_MEM_CHECK,
                h & 0xffff_ffff,
                h >> 32,
            ],
        );
        assert_eq!(
            (r[4], r[5]),
            (0, testsp::checksum(testsp::CHECKSUM_INIT, &content))
        );
        assert_eq!(
            code(call(
                &mut p,
                &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32]
            )),
            0
        );
        assert_eq!(p.ownership().state(DATA), Some(State::Owned));
        assert_eq!(
            code(call(
                &mut p,
                &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32]
            )),
            INV,
            "unknown handle"
        );
    }
}

#[test]
fn share_validation_and_rollback() {
    let mut p = mapped(V1_2);
    // A page of hyp memory: DENIED, and the first (good) constituent is rolled back.
    let r = share(
        &mut p,
        V1_2,
        fid::MEM_SHARE64,
        alloc::vec![c(DATA, 1), c(HYP.0 + 0x8000, 1)],
    );
    assert_eq!(code(r), DEN);
    assert_eq!(p.ownership().state(DATA), Some(State::Owned));
    assert_eq!(forwarded(&mut p, fid::MEM_SHARE64), 0);
    // The host's own RX/TX pages are shared with the hyp, not owned: DENIED.
    assert_eq!(
        code(share(
            &mut p,
            V1_2,
            fid::MEM_SHARE64,
            alloc::vec![c(HOST_RX, 1)]
        )),
        DEN
    );
    // Double share.
    assert_eq!(
        share(&mut p, V1_2, fid::MEM_SHARE64, alloc::vec![c(DATA, 1)])[0],
        u64::from(fid::SUCCESS32)
    );
    assert_eq!(
        code(share(
            &mut p,
            V1_2,
            fid::MEM_SHARE64,
            alloc::vec![c(DATA, 1)]
        )),
        DEN
    );
    // Overlapping constituents, in one descriptor.
    assert_eq!(
        code(share(
            &mut p,
            V1_2,
            fid::MEM_SHARE64,
            alloc::vec![c(DATA + 0x4000, 2), c(DATA + 0x5000, 1)]
        )),
        INV
    );
    // A descriptor in the wrong layout for the host's version (bad EMAD size / offsets).
    assert_eq!(
        code(share(
            &mut p,
            V1_1,
            fid::MEM_SHARE64,
            alloc::vec![c(DATA + 0x8000, 1)]
        )),
        INV
    );
    // Lengths: longer than TX, fragmented, a dynamic buffer.
    assert_eq!(
        code(call(&mut p, &[fid::MEM_SHARE64 as u64, 0x2000, 0x2000])),
        INV
    );
    assert_eq!(code(call(&mut p, &[fid::MEM_SHARE64 as u64, 96, 80])), NS);
    assert_eq!(
        code(call(&mut p, &[fid::MEM_SHARE64 as u64, 96, 96, DATA, 1])),
        INV
    );
    // The firmware refuses (no such receiver): its error comes back and the pages are rolled back.
    let d = share_descriptor(V1_2, 0x8009, alloc::vec![c(DATA + 0x9000, 1)]);
    p.platform().write(HOST_TX, &d);
    assert_eq!(
        code(call(
            &mut p,
            &[fid::MEM_SHARE64 as u64, d.len() as u64, d.len() as u64]
        )),
        INV
    );
    assert_eq!(p.ownership().state(DATA + 0x9000), Some(State::Owned));
    // A sender other than the host.
    let mut t = ffa_abi::mem::parse(
        V1_2,
        &share_descriptor(V1_2, testsp::ID, alloc::vec![c(DATA + 0xa000, 1)]),
        Composite::Required,
    )
    .unwrap();
    t.sender = 3;
    let d = ffa_abi::mem::build(V1_2, &t);
    p.platform().write(HOST_TX, &d);
    assert_eq!(
        code(call(
            &mut p,
            &[fid::MEM_SHARE64 as u64, d.len() as u64, d.len() as u64]
        )),
        INV
    );
}

#[test]
fn lend_takes_the_pages_away_until_reclaim() {
    let mut p = mapped(V1_2);
    let mut t = ffa_abi::mem::parse(
        V1_2,
        &share_descriptor(V1_2, testsp::ID, alloc::vec![c(DATA, 1)]),
        Composite::Required,
    )
    .unwrap();
    t.attributes = 0;
    let d = ffa_abi::mem::build(V1_2, &t);
    p.platform().write(HOST_TX, &d);
    let r = call(
        &mut p,
        &[fid::MEM_LEND32 as u64, d.len() as u64, d.len() as u64],
    );
    assert_eq!(r[0], u64::from(fid::SUCCESS32));
    assert_eq!(
        forwarded(&mut p, fid::MEM_LEND64),
        1,
        "32-bit LEND goes out as the 64-bit call"
    );
    assert!(!p.ownership().host_may_access(DATA));
    assert_eq!(
        p.take_access_changes(),
        [AccessChange {
            base: DATA,
            pages: 1,
            host_access: false
        }]
    );
    assert!(p.take_access_changes().is_empty());
    assert_eq!(
        code(call(&mut p, &[fid::MEM_RECLAIM as u64, r[2], r[3]])),
        0
    );
    assert!(p.ownership().host_may_access(DATA));
    assert_eq!(
        p.take_access_changes(),
        [AccessChange {
            base: DATA,
            pages: 1,
            host_access: true
        }]
    );
    // Shares change nothing the stage-2 must follow.
    let r = share(&mut p, V1_2, fid::MEM_SHARE64, alloc::vec![c(DATA, 1)]);
    call(&mut p, &[fid::MEM_RECLAIM as u64, r[2], r[3]]);
    assert!(p.take_access_changes().is_empty());
}

#[test]
fn the_test_only_req2_denial_refuses_it_and_says_so() {
    let mut p = host(V1_2);
    p.deny_direct_req2();
    assert_eq!(
        code(call(
            &mut p,
            &[fid::FEATURES as u64, fid::DIRECT_REQ2 as u64]
        )),
        NS
    );
    let (lo, hi) = ffa_abi::uuid_to_regs(&testsp::UUID);
    assert_eq!(
        code(call(&mut p, &[fid::DIRECT_REQ2 as u64, 0x8001, lo, hi, 1])),
        NS
    );
    assert_eq!(forwarded(&mut p, fid::DIRECT_REQ2), 0, "never reaches EL3");
    // REQ still goes through.
    let r = call(
        &mut p,
        &[fid::DIRECT_REQ64 as u64, 0x8001, 0, 1, 2, 3, 4, 5],
    );
    assert_eq!(r[0], u64::from(fid::DIRECT_RESP64));
}

#[test]
fn direct_requests_carry_x0_to_x17() {
    let mut p = host(V1_2);
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::DIRECT_REQ2);
    x[1] = 0x8001;
    let (lo, hi) = ffa_abi::uuid_to_regs(&testsp::UUID);
    x[2] = lo;
    x[3] = hi;
    for (i, r) in x.iter_mut().enumerate().skip(4) {
        *r = 0xa5a5_0000_0000_0000 | i as u64;
    }
    let r = p.handle(&x).unwrap();
    assert_eq!(r[0], u64::from(fid::DIRECT_RESP2));
    assert_eq!(r[4..], x[4..], "every payload register comes back");
    x[1] = 7 << 16 | 0x8001;
    assert_eq!(code(p.handle(&x).unwrap()), INV, "sender must be the host");
    assert_eq!(forwarded(&mut p, fid::DIRECT_REQ2), 1);
    // 32-bit request: the firmware's x0-x17 are returned as they are.
    let r = call(
        &mut p,
        &[fid::DIRECT_REQ32 as u64, 0x8001, 0, 1, 2, 3, 4, 5],
    );
    assert_eq!(
        r[..8],
        [
            u64::from(fid::DIRECT_RESP32),
            0x8001 << 16,
            0,
            1,
            2,
            3,
            4,
            5
        ]
    );
}

#[test]
fn buffers_mapped_before_the_hyp_existed() {
    // The init-order bug: the host mapped its buffers at the SPMC directly, before the hyp.
    let mut m = machine(true);
    let s = m.spmc.as_mut().unwrap();
    s.handle(&regs(&[fid::VERSION as u64, 0x1_0002]));
    s.handle(&regs(&[fid::RXTX_MAP64 as u64, HOST_TX, HOST_RX, 1]));
    let mut p = Proxy::init(
        m,
        Ownership::new(&[(RAM, RAM_SIZE)], &[HYP]),
        HYP_TX,
        HYP_RX,
    );
    assert_eq!(p.firmware(), Ok(V1_2));
    assert_eq!(p.buffers(), Err(FfaError::Denied));
    // The host never negotiated with the hyp: every call is refused, as in the Linux threads.
    assert_eq!(code(call(&mut p, &[fid::PARTITION_INFO_GET as u64])), INV);
    assert_eq!(code(call(&mut p, &[fid::DIRECT_REQ64 as u64, 0x8001])), INV);
    // Even after negotiating, nothing that needs the hyp's buffers works.
    call(&mut p, &[fid::VERSION as u64, 0x1_0002]);
    assert_eq!(
        code(call(&mut p, &[fid::PARTITION_INFO_GET as u64])),
        FfaError::Aborted as i64
    );
}

#[test]
fn calls_the_typed_layer_refuses_never_reach_the_firmware() {
    let mut p = host(V1_2);
    // An ID in the FF-A range that no version defines.
    assert_eq!(code(call(&mut p, &[0x8400_00fe])), NS);
    assert_eq!(forwarded(&mut p, 0x8400_00fe), 0);
    // A v1.2 call from a host that negotiated v1.1.
    let mut p = host(V1_1);
    let r = call(&mut p, &[fid::PARTITION_INFO_GET_REGS as u64, 0, 0, 0]);
    assert_eq!(code(r), NS);
    assert_eq!(forwarded(&mut p, fid::PARTITION_INFO_GET_REGS), 0);
    // Malformed flags (MEM_RECLAIM's reserved bits): refused here, not forwarded.
    let mut p = host(V1_2);
    assert_eq!(
        code(call(&mut p, &[fid::MEM_RECLAIM as u64, 1, 0, 0x8])),
        INV
    );
    assert_eq!(forwarded(&mut p, fid::MEM_RECLAIM), 0);
}
