extern crate std;

use super::*;
use std::vec::Vec;

const SECURE_TPM: &[u8] = include_bytes!("../../../testdata/qemu-virt/secure-gicv3-tpm.dtb");
const TIS: &str = "/platform-bus@c000000/tpm_tis@0";
const CRB: (u64, u64) = (0x4010_0000, 0x5000);

fn slot() -> Vec<u8> {
    let mut s = SECURE_TPM.to_vec();
    s.resize(0x10_0000, 0);
    s
}

#[test]
fn the_tpm_edit_reserves_a_host_reachable_crb_and_gives_the_tis_to_the_secure_world() {
    let mut s = slot();
    let t = TpmEdit {
        crb: CRB,
        tis_path: TIS,
        event_log: None,
    };
    edit(&mut s, Some("console=x"), Some(&t), None).unwrap();
    let p = Platform::parse(&s).unwrap();
    // The CRB: reserved from the kernel's allocator, but mappable ...
    let crb = dtinfo::Range {
        base: CRB.0,
        size: CRB.1,
    };
    assert!(p.reserved.contains(&crb));
    assert!(p.reserved_mapped.contains(&crb));
    // ... named by the project-local compatible ...
    let node = p.compatible(TPM_CRB_FFA_COMPATIBLE).unwrap();
    assert_eq!(node.regions, [crb]);
    // ... and the TIS is no longer the normal world's.
    assert!(p.compatible("tcg,tpm-tis-mmio").is_none());
    assert!(p.secure_compatible("tcg,tpm-tis-mmio").is_some());
    // The hyp's policy agrees: TIS hidden, CRB not.
    let v = hyp_policy::host_view(&p);
    let inside = |r: &[(u64, u64)], a: u64| r.iter().any(|&(b, n)| b <= a && a < b + n);
    assert!(!inside(&v.secure, CRB.0));
    assert!(inside(&v.secure, 0x0c00_0000));
    assert_eq!(p.bootargs.as_deref(), Some("console=x"));
}

#[test]
fn without_a_tpm_nothing_is_reserved_and_the_tis_stays() {
    let mut s = slot();
    edit(&mut s, None, None, None).unwrap();
    let p = Platform::parse(&s).unwrap();
    assert!(p.reserved.is_empty());
    assert!(p.compatible(TPM_CRB_FFA_COMPATIBLE).is_none());
    assert!(p.compatible("tcg,tpm-tis-mmio").is_some());
}

#[test]
fn a_missing_tis_node_is_an_error_not_a_half_edit() {
    let mut s = slot();
    let before = s.clone();
    let t = TpmEdit {
        crb: CRB,
        tis_path: "/nowhere",
        event_log: None,
    };
    assert!(edit(&mut s, None, Some(&t), None).is_err());
    assert_eq!(s, before, "the slot is untouched");
}

#[test]
fn the_edit_is_idempotent() {
    let mut s = slot();
    let t = TpmEdit {
        crb: CRB,
        tis_path: TIS,
        event_log: None,
    };
    edit(&mut s, None, Some(&t), None).unwrap();
    let once = Platform::parse(&s).unwrap();
    edit(&mut s, None, Some(&t), None).unwrap();
    assert_eq!(Platform::parse(&s).unwrap(), once);
}

#[test]
fn the_mm_buffer_is_reserved_mappable_and_named_beside_the_crb() {
    let mut s = slot();
    let t = TpmEdit {
        crb: CRB,
        tis_path: TIS,
        event_log: None,
    };
    let mm = (0x4012_0000, 0x4_0000);
    edit(&mut s, None, Some(&t), Some(mm)).unwrap();
    let p = Platform::parse(&s).unwrap();
    let r = dtinfo::Range {
        base: mm.0,
        size: mm.1,
    };
    assert!(p.reserved.contains(&r) && p.reserved_mapped.contains(&r));
    assert_eq!(p.reserved.len(), 2, "beside the CRB's entry");
    assert_eq!(p.compatible(MM_BUFFER_COMPATIBLE).unwrap().regions, [r]);
    // The host keeps it: it is normal-world memory.
    let v = hyp_policy::host_view(&p);
    assert!(!v.secure.iter().any(|&(b, n)| b <= mm.0 && mm.0 < b + n));
}

#[test]
fn the_event_log_is_named_on_the_tpm_node_and_reserved() {
    let mut s = slot();
    let t = TpmEdit {
        crb: CRB,
        tis_path: TIS,
        event_log: Some((0x4016_0000, 0x1_0000)),
    };
    edit(&mut s, None, Some(&t), None).unwrap();
    let p = Platform::parse(&s).unwrap();
    let log = dtinfo::Range {
        base: 0x4016_0000,
        size: 0x1_0000,
    };
    assert!(p.reserved.contains(&log) && p.reserved_mapped.contains(&log));
    let total = u32::from_be_bytes([s[4], s[5], s[6], s[7]]) as usize;
    let fdt = dtoolkit::fdt::Fdt::new(&s[..total]).unwrap();
    let tree = DeviceTree::from_fdt(&fdt);
    let node = tree.find_node("/tpm@40100000").unwrap();
    use dtoolkit::Property;
    let base = node.property("linux,sml-base").unwrap();
    assert_eq!(base.value(), &[0, 0, 0, 0, 0x40, 0x16, 0, 0]);
    let size = node.property("linux,sml-size").unwrap();
    assert_eq!(size.value(), &[0, 1, 0, 0]);
}

#[test]
fn the_initrd_is_named_in_chosen() {
    let mut s = slot();
    set_initrd(&mut s, 0x4400_0000, 0x1_2345).unwrap();
    let total = u32::from_be_bytes(s[4..8].try_into().unwrap()) as usize;
    let p = dtinfo::Platform::parse(&s[..total]).unwrap();
    assert_eq!(
        p.initrd,
        Some(dtinfo::Range {
            base: 0x4400_0000,
            size: 0x1_2345
        })
    );
    assert!(set_initrd(&mut s, u64::MAX, 2).is_err());
}
