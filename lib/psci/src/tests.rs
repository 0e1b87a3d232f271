use super::*;

const RAM: [NsRange; 1] = [NsRange {
    base: 0x4000_0000,
    size: 0x4000_0000,
}];

fn sys() -> Psci {
    Psci::new(&[0x0, 0x1], &RAM)
}

fn call(p: &mut Psci, caller: usize, regs: &[u64]) -> Action {
    let mut x = [0u64; 8];
    x[..regs.len()].copy_from_slice(regs);
    p.handle(caller, &x)
}

fn code(a: Action) -> i64 {
    match a {
        Action::Return(r) => r[0] as i64,
        other => panic!("expected a return, got {other:?}"),
    }
}

#[test]
fn versions() {
    let mut p = sys();
    assert_eq!(code(call(&mut p, 0, &[PSCI_VERSION as u64])), 0x1_0001);
    assert_eq!(code(call(&mut p, 0, &[SMCCC_VERSION as u64])), 0x1_0002);
    assert_eq!(
        code(call(
            &mut p,
            0,
            &[SMCCC_ARCH_FEATURES as u64, SMCCC_VERSION as u64]
        )),
        0
    );
    // ARCH_WORKAROUND_1 is not implemented.
    assert_eq!(
        code(call(&mut p, 0, &[SMCCC_ARCH_FEATURES as u64, 0x8000_8000])),
        -1
    );
}

#[test]
fn features_tell_the_truth() {
    let mut p = sys();
    for fid in [
        PSCI_CPU_ON_64,
        PSCI_CPU_OFF,
        PSCI_SYSTEM_OFF,
        PSCI_AFFINITY_INFO_64,
        SMCCC_VERSION,
        PSCI_CPU_SUSPEND_64,
    ] {
        assert_eq!(
            code(call(&mut p, 0, &[PSCI_FEATURES as u64, fid as u64])),
            0,
            "{fid:#x}"
        );
    }
    for fid in [
        PSCI_SYSTEM_SUSPEND_64,
        PSCI_MIGRATE_64,
        PSCI_SYSTEM_RESET2_64,
        0x8400_0060,
    ] {
        assert_eq!(
            code(call(&mut p, 0, &[PSCI_FEATURES as u64, fid as u64])),
            -1,
            "{fid:#x}"
        );
    }
}

#[test]
fn cpu_on_lifecycle_and_errors() {
    let mut p = sys();
    // Unknown MPIDR.
    assert_eq!(
        code(call(
            &mut p,
            0,
            &[PSCI_CPU_ON_64 as u64, 0x7, 0x4020_0000, 0]
        )),
        INVALID_PARAMETERS as i64
    );
    // Entry outside normal-world RAM, and misaligned.
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_CPU_ON_64 as u64, 1, 0x0e00_0000, 0])),
        INVALID_ADDRESS as i64
    );
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_CPU_ON_64 as u64, 1, 0x4020_0002, 0])),
        INVALID_ADDRESS as i64
    );
    // The boot CPU is on.
    assert_eq!(
        code(call(&mut p, 1, &[PSCI_CPU_ON_64 as u64, 0, 0x4020_0000, 0])),
        ALREADY_ON as i64
    );
    // Good call.
    assert_eq!(
        call(
            &mut p,
            0,
            &[PSCI_CPU_ON_64 as u64, 1, 0x4020_0000, 0xc0ffee]
        ),
        Action::StartCpu {
            target: 1,
            entry: 0x4020_0000,
            context: 0xc0ffee
        }
    );
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_AFFINITY_INFO_64 as u64, 1, 0])),
        AFF_ON_PENDING as i64
    );
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_CPU_ON_64 as u64, 1, 0x4020_0000, 0])),
        ON_PENDING as i64
    );
    assert_eq!(p.cpu_entering(1), Some((0x4020_0000, 0xc0ffee)));
    assert_eq!(p.cpu_entering(1), None);
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_AFFINITY_INFO_64 as u64, 1, 0])),
        AFF_ON as i64
    );
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_CPU_ON_64 as u64, 1, 0x4020_0000, 0])),
        ALREADY_ON as i64
    );
    // CPU 1 turns itself off; then it can be started again.
    assert_eq!(call(&mut p, 1, &[PSCI_CPU_OFF as u64]), Action::ParkCaller);
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_AFFINITY_INFO_64 as u64, 1, 0])),
        AFF_OFF as i64
    );
    assert!(matches!(
        call(&mut p, 0, &[PSCI_CPU_ON_64 as u64, 1, 0x4020_0000, 0]),
        Action::StartCpu { .. }
    ));
    // Affinity levels above 0 and unknown CPUs.
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_AFFINITY_INFO_64 as u64, 1, 1])),
        INVALID_PARAMETERS as i64
    );
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_AFFINITY_INFO_64 as u64, 9, 0])),
        INVALID_PARAMETERS as i64
    );
}

#[test]
fn smc32_arguments_use_the_low_words() {
    let mut p = sys();
    // CPU_ON_32 with garbage in the upper halves: the call sees only w1-w3.
    assert_eq!(
        call(
            &mut p,
            0,
            &[
                PSCI_CPU_ON_32 as u64 | 0xdead_0000_0000_0000,
                0xffff_ffff_0000_0001,
                0xaaaa_aaaa_4020_0000,
                0xbbbb_bbbb_0000_0005
            ]
        ),
        Action::StartCpu {
            target: 1,
            entry: 0x4020_0000,
            context: 5
        }
    );
}

#[test]
fn suspend_off_reset_and_unknown_calls() {
    let mut p = sys();
    assert_eq!(
        call(&mut p, 0, &[PSCI_CPU_SUSPEND_64 as u64, 0, 0x4020_0000, 0]),
        Action::Standby
    );
    // Power-down state type is not offered.
    assert_eq!(
        code(call(
            &mut p,
            0,
            &[PSCI_CPU_SUSPEND_64 as u64, 1 << 16, 0x4020_0000, 0]
        )),
        INVALID_PARAMETERS as i64
    );
    assert_eq!(code(call(&mut p, 0, &[PSCI_MIGRATE_INFO_TYPE as u64])), 2);
    assert_eq!(
        code(call(&mut p, 0, &[PSCI_MIGRATE_64 as u64, 1])),
        NOT_SUPPORTED as i64
    );
    assert_eq!(
        call(&mut p, 0, &[PSCI_SYSTEM_OFF as u64]),
        Action::SystemOff
    );
    assert_eq!(
        call(&mut p, 0, &[PSCI_SYSTEM_RESET as u64]),
        Action::SystemReset
    );
    // CPU_OFF from a CPU that is not on.
    assert_eq!(code(call(&mut p, 1, &[PSCI_CPU_OFF as u64])), DENIED as i64);
    assert!(Psci::owns(PSCI_SYSTEM_OFF));
    assert!(Psci::owns(SMCCC_VERSION));
    assert!(!Psci::owns(0x8400_0063)); // FFA_VERSION belongs to the SPMC
}
