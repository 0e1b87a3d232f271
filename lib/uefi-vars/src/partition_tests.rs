//! The partition behind the real SPMC, called the way U-Boot's `efi_variable_tee.c` calls it.
extern crate std;

use crate::mm::{COMM_HEADER, SMM_VARIABLE_GUID, VAR_HEADER, func, rc};
use crate::partition::{Buffer, OutsideBuffer, PARTITION_ID, UUID, VarPartition};
use crate::{Limits, Vars, attr, status};
use alloc::boxed::Box;
use ffa_abi::{V1_0, fid};
use spmc::sim::SimRam;
use spmc::{Config, Spmc};
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;
use varstore::Store;
use varstore::sim::SimFlash;

extern crate alloc;

const RAM: u64 = 0x4000_0000;

/// The shared buffer, held by the test (the normal world) and the partition (the client's
/// tests use it too).
#[derive(Clone)]
pub(crate) struct Shared(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Buffer for Shared {
    fn size(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideBuffer> {
        let m = self.0.lock().unwrap();
        let s = usize::try_from(off).map_err(|_| OutsideBuffer)?;
        let e = s
            .checked_add(buf.len())
            .filter(|e| *e <= m.len())
            .ok_or(OutsideBuffer)?;
        buf.copy_from_slice(&m[s..e]);
        Ok(())
    }
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideBuffer> {
        let mut m = self.0.lock().unwrap();
        let s = usize::try_from(off).map_err(|_| OutsideBuffer)?;
        let e = s
            .checked_add(data.len())
            .filter(|e| *e <= m.len())
            .ok_or(OutsideBuffer)?;
        m[s..e].copy_from_slice(data);
        Ok(())
    }
}

fn partition() -> (VarPartition<Shared, SimFlash>, Shared) {
    let (store, _) = Store::open(SimFlash::new(16384, 2048)).unwrap();
    let vars = Vars::new(
        store,
        Limits {
            max_var_size: 1024,
            volatile_bytes: 512,
        },
    );
    let buf = Shared(Arc::new(Mutex::new(vec![0; 4096])));
    (VarPartition::new(vars, buf.clone()), buf)
}

/// A SetVariable message for `name` = `data`.
fn set_msg(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&[9; 16]);
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(&(name.len() as u64).to_le_bytes());
    p.extend_from_slice(&(attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS).to_le_bytes());
    p.extend_from_slice(name);
    p.extend_from_slice(data);
    let mut m = Vec::new();
    m.extend_from_slice(&SMM_VARIABLE_GUID);
    m.extend_from_slice(&((VAR_HEADER + p.len()) as u64).to_le_bytes());
    m.extend_from_slice(&func::SET_VARIABLE.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&p);
    m
}

fn put(buf: &Shared, off: usize, m: &[u8]) {
    buf.0.lock().unwrap()[off..off + m.len()].copy_from_slice(m);
}

fn return_status(buf: &Shared, off: usize) -> u64 {
    let m = buf.0.lock().unwrap();
    let at = off + COMM_HEADER + 8;
    u64::from_le_bytes(m[at..at + 8].try_into().unwrap())
}

#[test]
fn a_message_at_an_offset_is_answered_in_place() {
    let (mut p, buf) = partition();
    let name = [b'V', 0, 0, 0];
    put(&buf, 64, &set_msg(&name, b"value"));
    assert_eq!(p.request([64, 0, 0, 0, 0]), rc::SUCCESS);
    assert_eq!(return_status(&buf, 64), status::SUCCESS);
    assert_eq!(p.vars().get(&[9; 16], &name).unwrap().data, b"value");
    assert_eq!(p.last().unwrap().function, func::SET_VARIABLE);
}

#[test]
fn offsets_lengths_and_registers_outside_the_rules_are_invalid() {
    let (mut p, buf) = partition();
    let m = set_msg(&[b'V', 0, 0, 0], b"value");
    // x4..x7 are zero in this ABI.
    put(&buf, 0, &m);
    assert_eq!(p.request([0, 1, 0, 0, 0]), rc::INVALID_PARAMETER);
    // The header must fit; the message it announces must fit.
    assert_eq!(p.request([4096 - 23, 0, 0, 0, 0]), rc::INVALID_PARAMETER);
    assert_eq!(p.request([u64::MAX, 0, 0, 0, 0]), rc::INVALID_PARAMETER);
    put(&buf, 4096 - m.len() + 1, &m[..m.len() - 1]);
    assert_eq!(
        p.request([(4096 - m.len() + 1) as u64, 0, 0, 0, 0]),
        rc::INVALID_PARAMETER
    );
    // Another service's header GUID.
    let mut other = m.clone();
    other[0] ^= 0xff;
    put(&buf, 0, &other);
    assert_eq!(p.request([0, 0, 0, 0, 0]), rc::NOT_SUPPORTED);
    assert_eq!(
        p.vars().all().count(),
        3,
        "nothing but the firmware's three"
    );
}

#[test]
fn behind_the_spmc_as_u_boot_calls_it() {
    let cfg = Config {
        ns_ram: vec![(RAM, 0x20_0000)],
        secure: vec![],
        exec_ctx: 2,
    };
    let mut s = Spmc::new(cfg, SimRam::new(RAM, 0x20_0000));
    let (p, buf) = partition();
    s.add_partition(Box::new(p)).unwrap();
    // U-Boot negotiates v1.0.
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::VERSION);
    x[1] = u64::from(ffa_abi::version_word(V1_0));
    s.handle(&x);
    put(&buf, 0, &set_msg(&[b'U', 0, 0, 0], b"from u-boot"));
    // FFA_MSG_SEND_DIRECT_REQ, SMC64: x1 = sender (0) << 16 | receiver, x3 = offset.
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::DIRECT_REQ64);
    x[1] = u64::from(PARTITION_ID);
    x[3] = 0;
    let r = s.handle(&x).regs;
    assert_eq!(r[0], u64::from(fid::DIRECT_RESP64));
    assert_eq!(r[3], rc::SUCCESS as u64);
    assert_eq!(&r[4..8], &[0, 0, 0, 0]);
    assert_eq!(return_status(&buf, 0), status::SUCCESS);
    // REQ2 is not offered.
    let mut x = [0u64; 18];
    x[0] = u64::from(fid::DIRECT_REQ2);
    x[1] = u64::from(PARTITION_ID);
    (x[2], x[3]) = ffa_abi::uuid_to_regs(&UUID);
    assert_eq!(s.handle(&x).regs[0], u64::from(fid::ERROR));
}
