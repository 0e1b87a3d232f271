//! The partition behind the real SPMC: the registers a Linux `tpm_crb_ffa` client uses.
extern crate std;

use super::*;
use crate::partition::TpmPartition;
use alloc::boxed::Box;
use ffa_abi::{V1_2, fid};
use spmc::sim::SimRam;
use spmc::{Config, Spmc};
use std::vec;

extern crate alloc;

const RAM: u64 = 0x4000_0000;
const CRB_PA: u64 = RAM + 0x10_0000;

/// The CRB pages, shared between the partition and the test (playing the normal world).
type Pages = crate::sim::SimCrb;

/// A TPM answering every command with a success carrying the command code.
struct Echo;

impl Tpm for Echo {
    fn execute(&mut self, _loc: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError> {
        let r = [
            0x80, 1, 0, 0, 0, 14, 0, 0, 0, 0, cmd[6], cmd[7], cmd[8], cmd[9],
        ];
        rsp[..14].copy_from_slice(&r);
        Ok(14)
    }
}

fn setup() -> (Spmc<SimRam>, Pages) {
    let cfg = Config {
        ns_ram: vec![(RAM, 0x20_0000)],
        secure: vec![],
        exec_ctx: 2,
    };
    let mut s = Spmc::new(cfg, SimRam::new(RAM, 0x20_0000));
    let pages = Pages::new(0);
    let p = TpmPartition::new(CRB_PA, pages.clone(), Echo).unwrap();
    s.add_partition(Box::new(p)).unwrap();
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::VERSION);
    x[1] = u64::from(ffa_abi::version_word(V1_2));
    s.handle(&x);
    (s, pages)
}

/// A direct request with x4.. = `args`, by REQ (x3 = 0) or REQ2 (x2-x3 = the UUID); returns
/// (x0, x4, x5).
fn call(s: &mut Spmc<SimRam>, req2: bool, args: &[u64]) -> (u64, u64, u64) {
    let mut x = [0u64; 18];
    x[1] = u64::from(PARTITION_ID);
    if req2 {
        x[0] = u64::from(fid::DIRECT_REQ2);
        (x[2], x[3]) = ffa_abi::uuid_to_regs(&den0138::UUID);
    } else {
        x[0] = u64::from(fid::DIRECT_REQ64);
    }
    x[4..4 + args.len()].copy_from_slice(args);
    let r = s.handle(&x).regs;
    (r[0], r[4], r[5])
}

#[test]
fn both_direct_request_abis_carry_the_function_in_x4() {
    let (mut s, _) = setup();
    for (req2, resp) in [(false, fid::DIRECT_RESP64), (true, fid::DIRECT_RESP2)] {
        assert_eq!(
            call(&mut s, req2, &[GET_INTERFACE_VERSION]),
            (u64::from(resp), OK_RESULTS_RETURNED, INTERFACE_VERSION)
        );
        assert_eq!(call(&mut s, req2, &[0x0f00_0601]).1, NOFUNC);
        assert_eq!(call(&mut s, req2, &[GET_FEATURE_INFO]).1, NOTSUP);
    }
    // REQ's x3 is MBZ.
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::DIRECT_REQ64);
    x[1] = u64::from(PARTITION_ID);
    x[3] = 1;
    x[4] = GET_INTERFACE_VERSION;
    assert_eq!(s.handle(&x).regs[4], INVARG);
}

#[test]
fn a_command_runs_through_the_crb_on_either_abi() {
    for req2 in [false, true] {
        let (mut s, mut crb) = setup();
        crb.set(reg::LOC_CTRL, 1);
        assert_eq!(call(&mut s, req2, &[START, START_LOCALITY, 0]).1, OK);
        assert_eq!(crb.u32(reg::LOC_STATE) & 0x2, 0x2, "locality 0 assigned");
        let cmd = [0x80, 1, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0];
        crb.write(DATA, &cmd).unwrap();
        crb.set(reg::CTRL_START, 1);
        assert_eq!(call(&mut s, req2, &[START, START_COMMAND, 0]).1, OK);
        assert_eq!(crb.u32(reg::CTRL_START), 0, "completion");
        assert_eq!(crb.u32(reg::CTRL_STS) & 1, 0, "no error");
        let mut rsp = [0u8; 14];
        crb.read(DATA, &mut rsp).unwrap();
        assert_eq!(rsp, [0x80, 1, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 1, 0x44]);
    }
}

#[test]
fn discovery_names_the_service_with_its_properties() {
    let (mut s, _) = setup();
    let (lo, hi) = ffa_abi::uuid_to_regs(&den0138::UUID);
    let mut x = [0u64; 18];
    x[0] = 0xC400_008B; // FFA_PARTITION_INFO_GET_REGS
    x[1] = lo;
    x[2] = hi;
    let r = s.handle(&x).regs;
    assert_eq!(r[0], 0xC400_0061, "FFA_SUCCESS64");
    // First descriptor in x3: ID in 15:0, exec contexts 31:16, properties 63:32.
    assert_eq!(r[3] as u16, PARTITION_ID);
    let props = (r[3] >> 32) as u32;
    assert_eq!(
        props,
        ffa_abi::props::DIRECT_REQ_RECV
            | ffa_abi::props::DIRECT_REQ2_RECV
            | ffa_abi::props::AARCH64
    );
}
