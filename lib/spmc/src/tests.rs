extern crate std;

use super::*;
use crate::test_partition::TestPartition;
use alloc::vec;
use ffa_abi::mem::{
    ATTR_NORMAL_WB_INNER, Constituent, DATA_RO, DATA_RW, Emad, INSTR_NX, INSTR_X, MemTxn,
};
use ffa_abi::{V1_0, testsp, uuid_to_words};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x20_0000;
const TX: u64 = RAM + 0x1000;
const RX: u64 = RAM + 0x2000;
const DATA: u64 = RAM + 0x10_0000;
const INV: i64 = FfaError::InvalidParameters as i64;
const NS: i64 = FfaError::NotSupported as i64;
const DEN: i64 = FfaError::Denied as i64;
const BUSY: i64 = FfaError::Busy as i64;

/// The normal world's RAM: shared, so a test can look at it while the SPMC holds it.
type Ram = crate::sim::SimRam;

fn spmc() -> Spmc<Ram> {
    let cfg = Config {
        ns_ram: vec![(RAM, RAM_SIZE)],
        // A secure carve-out inside the RAM range, to prove it is refused.
        secure: vec![(RAM + 0x1f_0000, 0x1_0000), (0x0e00_0000, 0x100_0000)],
        exec_ctx: 2,
    };
    let mut s = Spmc::new(cfg, Ram::new(RAM, RAM_SIZE as usize));
    s.add_partition(Box::new(TestPartition)).unwrap();
    s
}

fn call(s: &mut Spmc<Ram>, regs: &[u64]) -> [u64; 18] {
    let mut x = [0u64; 18];
    x[..regs.len()].copy_from_slice(regs);
    s.handle(&x).regs
}

/// The FF-A error code of a reply, or 0 for anything but FFA_ERROR.
fn err(r: [u64; 18]) -> i64 {
    if r[0] == u64::from(fid::ERROR) {
        r[2] as u32 as i32 as i64
    } else {
        0
    }
}

fn negotiated(v: Version) -> Spmc<Ram> {
    let mut s = spmc();
    assert_eq!(
        call(
            &mut s,
            &[fid::VERSION as u64, u64::from(ffa_abi::version_word(v))]
        )[0],
        0x1_0002
    );
    s
}

fn mapped(v: Version) -> Spmc<Ram> {
    let mut s = negotiated(v);
    assert_eq!(
        call(&mut s, &[fid::RXTX_MAP64 as u64, TX, RX, 1])[0],
        u64::from(fid::SUCCESS32)
    );
    s
}

#[test]
fn version_negotiation_matrix() {
    for (asked, answer, kept) in [
        (0x1_0000u64, 0x1_0002u64, Some(V1_0)),
        (0x1_0001, 0x1_0002, Some(V1_1)),
        (0x1_0002, 0x1_0002, Some(V1_2)),
        (0x1_0003, 0x1_0002, Some(V1_2)), // a newer caller is downgraded
        (0x2_0000, 0xffff_ffff, None),
        (0x8001_0002, 0xffff_ffff, None), // bit 31 MBZ
    ] {
        let mut s = spmc();
        assert_eq!(
            call(&mut s, &[fid::VERSION as u64, asked])[0],
            answer,
            "{asked:#x}"
        );
        assert_eq!(s.ns_version(), kept);
    }
    // Before any other call the caller may ask again (and downgrade).
    let mut s = negotiated(V1_2);
    assert_eq!(call(&mut s, &[fid::VERSION as u64, 0x1_0001])[0], 0x1_0002);
    assert_eq!(s.ns_version(), Some(V1_1));
    // Once another ABI was used, negotiation is over: the same version is fine, another not.
    call(&mut s, &[fid::ID_GET as u64]);
    assert_eq!(call(&mut s, &[fid::VERSION as u64, 0x1_0001])[0], 0x1_0002);
    assert_eq!(
        call(&mut s, &[fid::VERSION as u64, 0x1_0002])[0],
        0xffff_ffff
    );
    assert_eq!(s.ns_version(), Some(V1_1));
}

#[test]
fn nothing_before_version_negotiation() {
    let mut s = spmc();
    for f in [
        fid::FEATURES,
        fid::ID_GET,
        fid::RXTX_MAP64,
        fid::PARTITION_INFO_GET,
        fid::DIRECT_REQ64,
    ] {
        assert_eq!(
            err(call(&mut s, &[f as u64, TX, RX, 1])),
            NS,
            "{}",
            fid::name(f)
        );
    }
}

#[test]
fn ids_and_features() {
    let mut s = negotiated(V1_2);
    assert_eq!(
        call(&mut s, &[fid::ID_GET as u64])[..3],
        [u64::from(fid::SUCCESS32), 0, 0]
    );
    assert_eq!(call(&mut s, &[fid::SPM_ID_GET as u64])[2], 0x8000);
    let feat = |s: &mut Spmc<Ram>, q: u32, input: u64| {
        call(s, &[fid::FEATURES as u64, u64::from(q), input])
    };
    assert_eq!(
        feat(&mut s, fid::DIRECT_REQ2, 0)[0],
        u64::from(fid::SUCCESS32)
    );
    assert_eq!(
        feat(&mut s, fid::PARTITION_INFO_GET_REGS, 0)[0],
        u64::from(fid::SUCCESS32)
    );
    assert_eq!(
        feat(&mut s, fid::RXTX_MAP64, 0)[2],
        u64::from(MAX_RXTX_PAGES) << 16
    );
    assert_eq!(
        feat(&mut s, fid::MEM_SHARE64, 0)[2],
        0,
        "no dynamically allocated buffers"
    );
    assert_eq!(err(feat(&mut s, fid::MEM_RETRIEVE_REQ64, 0)), NS);
    assert_eq!(err(feat(&mut s, 0x8400_0086, 0)), NS, "MSG_SEND2");
    assert_eq!(
        err(feat(&mut s, 1, 0)),
        NS,
        "notification pending interrupt"
    );
    assert_eq!(
        err(feat(&mut s, fid::ID_GET, 1)),
        INV,
        "input properties MBZ"
    );
    // A v1.1 caller is told the truth about v1.2-only calls; a v1.0 caller has no SPM_ID_GET.
    let mut s = negotiated(V1_1);
    assert_eq!(err(feat(&mut s, fid::DIRECT_REQ2, 0)), NS);
    assert_eq!(feat(&mut s, fid::RXTX_MAP64, 0)[2], 0);
    let mut s = negotiated(V1_0);
    assert_eq!(err(call(&mut s, &[fid::SPM_ID_GET as u64])), NS);
}

#[test]
fn rxtx_lifecycle_and_errors() {
    let mut s = negotiated(V1_2);
    let map = |s: &mut Spmc<Ram>, tx: u64, rx: u64, n: u64| {
        err(call(s, &[fid::RXTX_MAP64 as u64, tx, rx, n]))
    };
    assert_eq!(map(&mut s, TX + 8, RX, 1), INV, "unaligned");
    assert_eq!(map(&mut s, TX, RX, 0), INV, "no pages");
    assert_eq!(
        map(&mut s, TX, RX, u64::from(MAX_RXTX_PAGES) + 1),
        INV,
        "too many pages"
    );
    assert_eq!(map(&mut s, TX, RX, 1 | 1 << 6), INV, "w3 bits 31:6 MBZ");
    assert_eq!(map(&mut s, 0x0e00_0000, RX, 1), INV, "secure RAM");
    assert_eq!(
        map(&mut s, RAM + 0x1f_0000, RX, 1),
        INV,
        "secure carve-out in RAM"
    );
    assert_eq!(map(&mut s, 0x1000, RX, 1), INV, "not RAM");
    assert_eq!(
        map(&mut s, RAM + RAM_SIZE - 0x1000, RX, 2),
        INV,
        "runs off RAM"
    );
    assert_eq!(map(&mut s, TX, TX, 1), INV, "TX and RX overlap");
    assert_eq!(map(&mut s, TX, RX, 1), 0);
    assert_eq!(map(&mut s, TX + 0x4000, RX + 0x4000, 1), DEN, "double map");
    assert_eq!(
        err(call(&mut s, &[fid::RXTX_UNMAP as u64, 1 << 16])),
        INV,
        "w1 names another endpoint"
    );
    assert_eq!(err(call(&mut s, &[fid::RXTX_UNMAP as u64])), 0);
    assert_eq!(
        err(call(&mut s, &[fid::RXTX_UNMAP as u64])),
        INV,
        "nothing mapped"
    );
    // The 32-bit form takes w1/w2 only.
    assert_eq!(
        err(call(
            &mut s,
            &[fid::RXTX_MAP32 as u64, 0xffff_ffff_0000_0000 | TX, RX, 1]
        )),
        0
    );
}

#[test]
fn partition_info_per_version_and_rx_ownership() {
    let mut s = mapped(V1_2);
    let pig = |s: &mut Spmc<Ram>, u: [u32; 4], flags: u64| {
        call(
            s,
            &[
                fid::PARTITION_INFO_GET as u64,
                u[0].into(),
                u[1].into(),
                u[2].into(),
                u[3].into(),
                flags,
            ],
        )
    };
    // Nil UUID: one descriptor per UUID the partition serves, UUIDs filled in.
    let r = pig(&mut s, [0; 4], 0);
    assert_eq!((r[0], r[2], r[3]), (u64::from(fid::SUCCESS32), 2, 24));
    let mut rx = [0u8; 48];
    s.memory().read(RX, &mut rx);
    let d = ffa_abi::partinfo::decode(&rx, 2, 24).unwrap();
    assert_eq!(d[0].id, testsp::ID);
    assert_eq!(d[0].exec_ctx, 2);
    assert_eq!(d[0].props, 0x301);
    assert_eq!(d[0].uuid, testsp::UUID);
    assert_eq!(d[1].uuid, testsp::UUID_ALT);
    // RX now belongs to the caller: the next fill is BUSY until FFA_RX_RELEASE.
    assert_eq!(err(pig(&mut s, [0; 4], 0)), BUSY);
    assert_eq!(err(call(&mut s, &[fid::RX_RELEASE as u64])), 0);
    assert_eq!(
        err(call(&mut s, &[fid::RX_RELEASE as u64])),
        DEN,
        "not owned any more"
    );
    // A specific UUID: one descriptor, UUID field zero.
    let r = pig(&mut s, uuid_to_words(&testsp::UUID_ALT), 0);
    assert_eq!(r[2], 1);
    s.memory().read(RX, &mut rx);
    assert_eq!(
        ffa_abi::partinfo::decode(&rx, 1, 24).unwrap()[0].uuid,
        [0; 16]
    );
    call(&mut s, &[fid::RX_RELEASE as u64]);
    // Count only: no RX use.
    let r = pig(&mut s, [0; 4], 1);
    assert_eq!(r[2], 2);
    assert_eq!(err(call(&mut s, &[fid::RX_RELEASE as u64])), DEN);
    assert_eq!(err(pig(&mut s, [1, 2, 3, 4], 0)), INV, "unknown UUID");
    assert_eq!(err(pig(&mut s, [0; 4], 2)), INV, "flags MBZ");
    // A v1.0 caller gets 8-byte descriptors, w3 = 0, properties masked to bits 2:0.
    let mut s = mapped(V1_0);
    let r = pig(&mut s, [0; 4], 0);
    assert_eq!((r[2], r[3]), (2, 0));
    let mut rx = [0u8; 16];
    s.memory().read(RX, &mut rx);
    assert_eq!(&rx[..8], &[0x01, 0x80, 2, 0, 1, 0, 0, 0]);
    assert_eq!(
        err(pig(&mut s, [0; 4], 1)),
        INV,
        "v1.0 has no count-only flag"
    );
    // No RX buffer.
    let mut s = negotiated(V1_2);
    assert_eq!(err(pig(&mut s, [0; 4], 0)), BUSY);
}

#[test]
fn partition_info_get_regs() {
    let mut s = negotiated(V1_2);
    let r = call(&mut s, &[fid::PARTITION_INFO_GET_REGS as u64, 0, 0, 0]);
    assert_eq!(r[0], u64::from(fid::SUCCESS64));
    assert_eq!(
        r[2],
        1 | (1 << 16) | (24 << 48),
        "last index 1, current 1, size 24"
    );
    assert_eq!(r[3], 0x8001 | (2 << 16) | (0x301 << 32));
    assert_eq!(ffa_abi::uuid_from_regs(r[4], r[5]), testsp::UUID);
    assert_eq!(ffa_abi::uuid_from_regs(r[7], r[8]), testsp::UUID_ALT);
    let r = call(&mut s, &[fid::PARTITION_INFO_GET_REGS as u64, 0, 0, 1]);
    assert_eq!(r[2] & 0xffff_ffff, 1 | (1 << 16));
    assert_eq!(
        err(call(
            &mut s,
            &[fid::PARTITION_INFO_GET_REGS as u64, 0, 0, 2]
        )),
        INV,
        "start past the end"
    );
    assert_eq!(
        err(call(
            &mut s,
            &[fid::PARTITION_INFO_GET_REGS as u64, 0, 0, 1 << 16]
        )),
        INV,
        "tag"
    );
    assert_eq!(
        err(call(
            &mut s,
            &[fid::PARTITION_INFO_GET_REGS as u64, 9, 9, 0]
        )),
        INV,
        "unknown UUID"
    );
    let mut s = negotiated(V1_1);
    assert_eq!(
        err(call(&mut s, &[fid::PARTITION_INFO_GET_REGS as u64])),
        NS
    );
}

#[test]
fn direct_requests() {
    let mut s = negotiated(V1_2);
    let r = call(
        &mut s,
        &[
            fid::DIRECT_REQ64 as u64,
            0x8001,
            0,
            1,
            2,
            3,
            u64::MAX,
            5,
            0xdead,
        ],
    );
    assert_eq!(
        r[..8],
        [
            u64::from(fid::DIRECT_RESP64),
            0x8001 << 16,
            0,
            1,
            2,
            3,
            u64::MAX,
            5
        ]
    );
    assert_eq!(
        r[8], 0,
        "x8-x17 are results too for SMC64: zeroed, never leaked"
    );
    // 32-bit: upper halves are not part of the message.
    let r = call(
        &mut s,
        &[
            fid::DIRECT_REQ32 as u64,
            0x8001,
            0,
            0xaaaa_0000_0000_0001,
            2,
            3,
            4,
            5,
        ],
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
    assert!(
        !s.handle(&[
            fid::DIRECT_REQ32 as u64,
            0x8001,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0
        ])
        .wide
    );
    assert_eq!(
        err(call(&mut s, &[fid::DIRECT_REQ64 as u64, 5 << 16 | 0x8001])),
        INV,
        "sender is not the caller"
    );
    assert_eq!(
        err(call(&mut s, &[fid::DIRECT_REQ64 as u64, 0x8002])),
        INV,
        "no such partition"
    );
    assert_eq!(
        err(call(&mut s, &[fid::DIRECT_REQ64 as u64, 0x8001, 1 << 31])),
        INV,
        "framework message"
    );
    // REQ2: all of x4-x17 echoed.
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::DIRECT_REQ2);
    x[1] = 0x8001;
    for (i, r) in x.iter_mut().enumerate().skip(4) {
        *r = 0x1111 * i as u64;
    }
    let r = s.handle(&x).regs;
    assert_eq!(r[0], u64::from(fid::DIRECT_RESP2));
    assert_eq!(r[1], 0x8001 << 16);
    assert_eq!(r[4..], x[4..]);
    // WHOAMI reports the UUID addressed; Nil means the partition's first UUID.
    let (lo, hi) = ffa_abi::uuid_to_regs(&testsp::UUID_ALT);
    let r = call(
        &mut s,
        &[fid::DIRECT_REQ2 as u64, 0x8001, lo, hi, testsp::CMD_WHOAMI],
    );
    assert_eq!(ffa_abi::uuid_from_regs(r[5], r[6]), testsp::UUID_ALT);
    let r = call(
        &mut s,
        &[fid::DIRECT_REQ2 as u64, 0x8001, 0, 0, testsp::CMD_WHOAMI],
    );
    assert_eq!(ffa_abi::uuid_from_regs(r[5], r[6]), testsp::UUID);
    assert_eq!(
        err(call(&mut s, &[fid::DIRECT_REQ2 as u64, 0x8001, 1, 2])),
        INV,
        "UUID not served"
    );
    assert_eq!(
        err(call(&mut s, &[fid::DIRECT_REQ2 as u64, 3 << 16 | 0x8001])),
        INV,
        "sender"
    );
    let mut s = negotiated(V1_1);
    assert_eq!(err(call(&mut s, &[fid::DIRECT_REQ2 as u64, 0x8001])), NS);
}

fn share_desc(v: Version, constituents: Vec<Constituent>, perms: u8) -> Vec<u8> {
    ffa_abi::mem::build(
        v,
        &MemTxn {
            sender: 0,
            attributes: ATTR_NORMAL_WB_INNER,
            emads: vec![Emad {
                receiver: testsp::ID,
                perms,
                flags: 0,
            }],
            constituents,
            ..MemTxn::default()
        },
    )
}

fn send(s: &mut Spmc<Ram>, f: u32, desc: &[u8]) -> [u64; 18] {
    s.mem.write(TX, desc);
    call(s, &[f as u64, desc.len() as u64, desc.len() as u64])
}

fn pages(address: u64, pages: u32) -> Vec<Constituent> {
    vec![Constituent { address, pages }]
}

#[test]
fn share_check_mark_reclaim_round_trip_in_every_version() {
    for v in [V1_0, V1_1, V1_2] {
        let mut s = mapped(v);
        let content: Vec<u8> = (0..0x2000u32).map(|i| (i * 7 + 3) as u8).collect();
        s.mem.write(DATA, &content);
        let r = send(
            &mut s,
            fid::MEM_SHARE64,
            &share_desc(v, pages(DATA, 2), DATA_RW | INSTR_NX),
        );
        assert_eq!(r[0], u64::from(fid::SUCCESS32), "{v}: {r:x?}");
        let handle = r[2] | (r[3] << 32);
        assert_eq!(s.transactions(), 1);
        let r = call(
            &mut s,
            &[
                fid::DIRECT_REQ64 as u64,
                0x8001,
                0,
                testsp::CMD_MEM_CHECK,
                handle & 0xffff_ffff,
                handle >> 32,
            ],
        );
        assert_eq!(r[4], 0, "{v}: partition status");
        assert_eq!(r[5], testsp::checksum(testsp::CHECKSUM_INIT, &content));
        assert_eq!(r[6], 0x2000);
        let mut head = [0u8; 8];
        s.memory().read(DATA, &mut head);
        assert_eq!(head, testsp::MARKER);
        assert_eq!(
            err(call(
                &mut s,
                &[fid::MEM_RECLAIM as u64, handle & 0xffff_ffff, handle >> 32]
            )),
            0
        );
        assert_eq!(s.transactions(), 0);
        assert_eq!(
            err(call(
                &mut s,
                &[fid::MEM_RECLAIM as u64, handle & 0xffff_ffff, handle >> 32]
            )),
            INV
        );
    }
}

#[test]
fn share_errors() {
    let mut s = negotiated(V1_2);
    let good = share_desc(V1_2, pages(DATA, 1), DATA_RW);
    assert_eq!(
        err(call(
            &mut s,
            &[
                fid::MEM_SHARE64 as u64,
                good.len() as u64,
                good.len() as u64
            ]
        )),
        DEN,
        "no TX"
    );
    let mut s = mapped(V1_2);
    let n = good.len() as u64;
    s.mem.write(TX, &good);
    assert_eq!(
        err(call(&mut s, &[fid::MEM_SHARE64 as u64, n, n - 16])),
        NS,
        "fragmented"
    );
    assert_eq!(
        err(call(&mut s, &[fid::MEM_SHARE64 as u64, 0x2000, 0x2000])),
        INV,
        "longer than TX"
    );
    assert_eq!(
        err(call(&mut s, &[fid::MEM_SHARE64 as u64, n, n, DATA, 1])),
        INV,
        "dynamic buffer"
    );
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        (
            "secure memory",
            share_desc(V1_2, pages(RAM + 0x1f_0000, 1), DATA_RW),
            INV,
        ),
        (
            "outside RAM",
            share_desc(V1_2, pages(0x8000_0000, 1), DATA_RW),
            INV,
        ),
        (
            "the RX buffer",
            share_desc(V1_2, pages(RX, 1), DATA_RW),
            DEN,
        ),
        (
            "executable",
            share_desc(V1_2, pages(DATA, 1), DATA_RW | INSTR_X),
            DEN,
        ),
        (
            "no data access",
            share_desc(V1_2, pages(DATA, 1), INSTR_NX),
            INV,
        ),
        (
            "v1.1 layout from a v1.2 caller",
            share_desc(V1_1, pages(DATA, 1), DATA_RW),
            INV,
        ),
        ("garbage", vec![0xff; 96], INV),
    ];
    for (name, desc, want) in cases {
        assert_eq!(err(send(&mut s, fid::MEM_SHARE64, &desc)), want, "{name}");
    }
    let mut t = ffa_abi::mem::parse(V1_2, &good, ffa_abi::mem::Composite::Required).unwrap();
    type Variant = (&'static str, fn(&mut MemTxn), i64);
    let variants: Vec<Variant> = vec![
        ("sender not the caller", |t| t.sender = 7, INV),
        ("handle set", |t| t.handle = 9, INV),
        ("unknown receiver", |t| t.emads[0].receiver = 0x8009, INV),
        ("duplicate receiver", |t| t.emads.push(t.emads[0]), INV),
        ("zero flag on share", |t| t.flags = 1, INV),
        ("time slicing", |t| t.flags = 2, INV),
        ("device memory", |t| t.attributes = 1 << 4, INV),
        ("attribute MBZ bits", |t| t.attributes |= 1 << 8, INV),
    ];
    for (name, f, want) in variants {
        let mut u = t.clone();
        f(&mut u);
        assert_eq!(
            err(send(
                &mut s,
                fid::MEM_SHARE64,
                &ffa_abi::mem::build(V1_2, &u)
            )),
            want,
            "{name}"
        );
    }
    // The same pages cannot be given twice while the first transaction is outstanding.
    t.constituents = pages(DATA, 2);
    assert_eq!(
        send(&mut s, fid::MEM_SHARE64, &ffa_abi::mem::build(V1_2, &t))[0],
        u64::from(fid::SUCCESS32)
    );
    t.constituents = pages(DATA + 0x1000, 1);
    assert_eq!(
        err(send(
            &mut s,
            fid::MEM_LEND64,
            &ffa_abi::mem::build(V1_2, &t)
        )),
        DEN
    );
}

#[test]
fn retrieve_relinquish_and_reclaim_rules() {
    let mut s = mapped(V1_2);
    let r = send(
        &mut s,
        fid::MEM_SHARE64,
        &share_desc(V1_2, pages(DATA, 1), DATA_RO),
    );
    let h = r[2] | (r[3] << 32);
    // Relinquish without a retrieval, and access without one, are denied.
    assert_eq!(
        s.with_partition_memory(testsp::ID, |m| m.relinquish(h)),
        Err(FfaError::Denied)
    );
    assert_eq!(
        s.with_partition_memory(testsp::ID, |m| m.read(h, 0, &mut [0; 4])),
        Err(FfaError::Denied)
    );
    // Only a receiver may retrieve.
    assert!(s.with_partition_memory(0x8005, |m| m.retrieve(h)).is_err());
    let got = s
        .with_partition_memory(testsp::ID, |m| m.retrieve(h))
        .unwrap();
    assert_eq!(got.constituents, pages(DATA, 1));
    assert_eq!(got.perms & 3, DATA_RO);
    // Read-only: writes are denied; reads past the end are refused.
    assert_eq!(
        s.with_partition_memory(testsp::ID, |m| m.write(h, 0, b"x")),
        Err(FfaError::Denied)
    );
    assert_eq!(
        s.with_partition_memory(testsp::ID, |m| m.read(h, 0xfff, &mut [0; 2])),
        Err(FfaError::InvalidParameters)
    );
    // Reclaim while retrieved: DENIED; after relinquish: fine.
    assert_eq!(
        err(call(
            &mut s,
            &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32]
        )),
        DEN
    );
    // The partition's own status is reported when its check fails (RO: cannot mark).
    let r = call(
        &mut s,
        &[
            fid::DIRECT_REQ64 as u64,
            0x8001,
            0,
            testsp::CMD_MEM_CHECK,
            h,
            0,
        ],
    );
    assert_eq!(r[4] as i64 as i32, FfaError::Denied as i32);
    s.with_partition_memory(testsp::ID, |m| m.relinquish(h))
        .unwrap();
    assert_eq!(
        err(call(
            &mut s,
            &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 1]
        )),
        INV,
        "zeroing a share"
    );
    assert_eq!(
        err(call(
            &mut s,
            &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 4]
        )),
        INV,
        "flags MBZ"
    );
    assert_eq!(
        err(call(
            &mut s,
            &[fid::MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32]
        )),
        0
    );
}

#[test]
fn lend_with_zeroing_on_reclaim() {
    let mut s = mapped(V1_2);
    s.mem.write(DATA, &[0xab; 64]);
    let mut t = ffa_abi::mem::parse(
        V1_2,
        &share_desc(V1_2, pages(DATA, 1), DATA_RW),
        ffa_abi::mem::Composite::Required,
    )
    .unwrap();
    t.attributes = 0; // unspecified, as a lender to a PE endpoint sends
    let r = send(&mut s, fid::MEM_LEND64, &ffa_abi::mem::build(V1_2, &t));
    let h = r[2] | (r[3] << 32);
    assert_eq!(err(call(&mut s, &[fid::MEM_RECLAIM as u64, h, 0, 1])), 0);
    let mut b = [0xffu8; 64];
    s.memory().read(DATA, &mut b);
    assert_eq!(b, [0; 64]);
}

#[test]
fn everything_else_is_not_supported() {
    let mut s = mapped(V1_2);
    for f in [
        0x8400_0086u32,
        0x8400_007F,
        0x8400_006D,
        0x8400_006B,
        fid::MEM_RETRIEVE_REQ64,
        fid::MEM_DONATE64,
        fid::MEM_FRAG_TX,
        fid::DIRECT_RESP64,
        0x8400_00ff,
    ] {
        assert_eq!(err(call(&mut s, &[f as u64])), NS, "{f:#x}");
    }
}

#[test]
fn partition_registry_rules() {
    let mut s = spmc();
    assert_eq!(
        s.add_partition(Box::new(TestPartition)),
        Err(FfaError::InvalidParameters),
        "duplicate ID"
    );
}

#[test]
fn replies_keep_the_registers_an_smc32_caller_did_not_get_back() {
    let mut s = negotiated(V1_2);
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::ID_GET);
    x[8..].fill(0xdead);
    let reply = s.handle(&x);
    assert!(!reply.wide);
    reply.write_to(&mut x);
    assert_eq!(x[0], u64::from(fid::SUCCESS32));
    assert_eq!(
        &x[8..],
        &[0xdead; 10],
        "x8-x17 preserved for an SMC32 reply"
    );

    let mut x = [0u64; 18];
    x[..4].copy_from_slice(&[u64::from(fid::DIRECT_REQ2), 0x8001, 0, 0]);
    x[4..].fill(0xbeef);
    let uuid = uuid_to_words(&testsp::UUID);
    x[2] = u64::from(uuid[0]) | u64::from(uuid[1]) << 32;
    x[3] = u64::from(uuid[2]) | u64::from(uuid[3]) << 32;
    let reply = s.handle(&x);
    assert!(reply.wide, "REQ2 answers in x0-x17");
    reply.write_to(&mut x);
    assert_eq!(x, reply.regs, "an SMC64 reply replaces every register");
}
