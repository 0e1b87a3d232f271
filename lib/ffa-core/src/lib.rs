//! The decisions of the kernel's FF-A core, apart from the SMCs that carry them.
//!
//! Owns: whether the core may probe now (Linux 7.2: the FF-A core is a platform driver whose
//! probe defers until pKVM is finalised; without FF-A it is a quiet miss), how the answer to
//! FFA_VERSION is read, which FF-A devices the partitions become, which direct-message form a
//! request uses, and how an interrupted direct request is resumed with FFA_RUN. Everything here
//! is a pure function of its inputs and is tested on the host. [`client`] makes the calls, over
//! any conduit: the kernel's SMC/HVC, or the SPMC itself in host tests.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod client;
#[cfg(test)]
mod client_tests;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use devmodel::{Device, ProbeError};
use ffa_abi::partinfo::PartitionDesc;
use ffa_abi::{FfaError, V1_2, Version, props};

/// The hyp as the FF-A core sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Hyp {
    /// No EL2 component (entered at EL1): FF-A calls go straight to the firmware.
    Absent,
    /// Installed (SMCs trap to it) but not finalised.
    Installed,
    /// Finalised: its FF-A proxy is the FF-A instance the host talks to.
    Finalised,
}

/// Whether the core may talk FF-A now (Linux `ffa_probe` with `is_pkvm_initialized()`).
pub fn gate(hyp: Hyp) -> Result<(), ProbeError> {
    match hyp {
        Hyp::Installed => Err(ProbeError::Defer("hyp not finalised")),
        Hyp::Absent | Hyp::Finalised => Ok(()),
    }
}

/// FF-A needs SMCCC 1.2 (the 18-register convention): `smccc` is SMCCC_VERSION's answer
/// (or `None` when the conduit does not implement it).
pub fn smccc_ok(smccc: Option<u32>) -> bool {
    matches!(smccc, Some(v) if v as i32 >= 0 && v >= 0x1_0002)
}

/// What FFA_VERSION(1.2) told us.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Negotiated {
    /// FF-A is not there (NOT_SUPPORTED): a quiet miss.
    Absent,
    /// The version both sides use.
    Version(Version),
    /// An answer the core cannot work with (another major, or below 1.0).
    Unusable(u32),
}

/// Reads FFA_VERSION's w0 the way Linux's arm_ffa driver does: NOT_SUPPORTED → absent; a
/// different major → unusable; a newer minor → we use ours (1.2); else theirs.
pub fn negotiate(w0: u32) -> Negotiated {
    if w0 == ffa_abi::VERSION_NOT_SUPPORTED as u32 {
        return Negotiated::Absent;
    }
    match ffa_abi::parse_version(w0) {
        Some(v) if v.0 == 1 => Negotiated::Version(if v > V1_2 { V1_2 } else { v }),
        _ => Negotiated::Unusable(w0),
    }
}

/// The FF-A devices for the partitions, one per (partition, UUID), named `arm-ffa-N` in
/// discovery order, on bus `ffa`.
pub fn devices(parts: &[PartitionDesc]) -> Vec<Device> {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d = Device::new("ffa", &format!("arm-ffa-{}", i + 1));
            d.uuid = Some(p.uuid);
            d.props
                .push((String::from("partition-id"), u64::from(p.id)));
            d.props
                .push((String::from("properties"), u64::from(p.props)));
            d.props
                .push((String::from("exec-ctx"), u64::from(p.exec_ctx)));
            d
        })
        .collect()
}

/// Which direct-request form to use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// FFA_MSG_SEND_DIRECT_REQ (64-bit), 5 payload registers.
    Req,
    /// FFA_MSG_SEND_DIRECT_REQ2, 14 payload registers and a service UUID.
    Req2,
}

/// REQ2 when the partition receives it, the instance supports it (FFA_FEATURES) and both
/// sides speak 1.2; REQ otherwise. `force` overrides (a caller that needs one form).
pub fn form(
    partition_props: u32,
    req2_supported: bool,
    version: Version,
    force: Option<Form>,
) -> Form {
    if let Some(f) = force {
        return f;
    }
    if partition_props & props::DIRECT_REQ2_RECV != 0 && req2_supported && version >= V1_2 {
        Form::Req2
    } else {
        Form::Req
    }
}

/// Most FFA_RUN resumptions of one request before giving up.
pub const MAX_RESUMES: usize = 64;

/// An FF-A status as a kernel error word (Linux's mapping, `ffa_to_linux_errno`).
pub fn errno_name(e: FfaError) -> &'static str {
    match e {
        FfaError::NotSupported => "EOPNOTSUPP",
        FfaError::InvalidParameters => "EINVAL",
        FfaError::NoMemory => "ENOMEM",
        FfaError::Busy => "EBUSY",
        FfaError::Interrupted => "EINTR",
        FfaError::Denied => "EACCES",
        FfaError::Retry => "EAGAIN",
        FfaError::Aborted => "ECANCELED",
        FfaError::NoData => "ENODATA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devmodel::{DeviceModel, Driver, MatchId, ProbeCtx, ProbeResult};
    use ffa_abi::testsp;

    #[test]
    fn probe_gate() {
        assert_eq!(
            gate(Hyp::Installed),
            Err(ProbeError::Defer("hyp not finalised"))
        );
        assert_eq!(gate(Hyp::Finalised), Ok(()));
        assert_eq!(gate(Hyp::Absent), Ok(()));
    }

    #[test]
    fn smccc_and_version_reading() {
        assert!(smccc_ok(Some(0x1_0002)));
        assert!(!smccc_ok(Some(0x1_0001)), "FF-A needs SMCCC 1.2");
        assert!(!smccc_ok(Some(0xffff_ffff)), "NOT_SUPPORTED");
        assert!(!smccc_ok(None));
        assert_eq!(negotiate(0xffff_ffff), Negotiated::Absent);
        assert_eq!(negotiate(0x1_0002), Negotiated::Version(V1_2));
        assert_eq!(negotiate(0x1_0001), Negotiated::Version(ffa_abi::V1_1));
        assert_eq!(
            negotiate(0x1_0005),
            Negotiated::Version(V1_2),
            "newer firmware: use ours"
        );
        assert_eq!(negotiate(0x2_0000), Negotiated::Unusable(0x2_0000));
    }

    #[test]
    fn partitions_become_named_devices_and_bind_by_uuid() {
        let parts = [
            PartitionDesc {
                id: 0x8001,
                exec_ctx: 2,
                props: 0x301,
                uuid: testsp::UUID,
            },
            PartitionDesc {
                id: 0x8001,
                exec_ctx: 2,
                props: 0x301,
                uuid: testsp::UUID_ALT,
            },
            PartitionDesc {
                id: 0x8002,
                exec_ctx: 1,
                props: 0x1,
                uuid: [9; 16],
            },
        ];
        let devs = devices(&parts);
        assert_eq!(
            devs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["arm-ffa-1", "arm-ffa-2", "arm-ffa-3"]
        );
        assert_eq!(devs[1].prop("partition-id"), Some(0x8001));
        assert_eq!(devs[2].prop("properties"), Some(1));
        // Under the core's device, bound by UUID: only the matching one binds.
        fn ok(_: &mut ProbeCtx<'_>) -> ProbeResult {
            Ok(())
        }
        let mut m = DeviceModel::new(alloc::boxed::Box::new(|_| {}));
        m.register_bus("platform").unwrap();
        m.register_bus("ffa").unwrap();
        let core = m
            .add_device(Device::new("platform", "arm-ffa"), None)
            .unwrap();
        for d in devs {
            m.add_device(d, Some(core)).unwrap();
        }
        m.register_driver(Driver {
            name: "ffa-test",
            bus: "ffa",
            ids: &[MatchId::Uuid(testsp::UUID)],
            probe: ok,
            bound: None,
        })
        .unwrap();
        let bound: Vec<&str> = m
            .devices()
            .filter(|id| m.state(*id) == Some(&devmodel::DeviceState::Bound("ffa-test")))
            .filter_map(|id| m.path(id))
            .collect();
        assert_eq!(bound, ["platform/arm-ffa/arm-ffa-1"]);
    }

    #[test]
    fn message_form() {
        assert_eq!(form(0x301, true, V1_2, None), Form::Req2);
        assert_eq!(
            form(0x301, false, V1_2, None),
            Form::Req,
            "instance says no (e.g. a proxy that denies it)"
        );
        assert_eq!(
            form(0x101, true, V1_2, None),
            Form::Req,
            "partition does not receive REQ2"
        );
        assert_eq!(form(0x301, true, ffa_abi::V1_1, None), Form::Req);
        assert_eq!(form(0x301, true, V1_2, Some(Form::Req)), Form::Req);
    }

    #[test]
    fn errors_have_linux_names() {
        assert_eq!(errno_name(FfaError::InvalidParameters), "EINVAL");
    }
}
