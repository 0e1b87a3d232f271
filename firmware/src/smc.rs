//! EL3 exception vectors and the SMC dispatcher.
//!
//! A lower-EL synchronous exception saves x0–x30, ELR_EL3 and SPSR_EL3 on this CPU's EL3
//! stack and calls [`el3_sync_lower`]. SMC64 calls are dispatched by function ID: PSCI and the
//! SMCCC architecture calls to `psci-el3`; everything else gets SMCCC NOT_SUPPORTED (-1) in
//! x0 with every other register preserved (SMCCC 1.2 §2.6). Exceptions taken *from* EL3 are
//! firmware bugs: reported, then the system stops.

use crate::{console, fwlog, power};
use core::arch::global_asm;
use psci_el3::{Action, Psci};
use spin::Mutex;
use spmc::tally::Tally;

pub use trapframe::Frame;

global_asm!(
    include_str!("../../lib/trapframe/src/frame.S"),
    r#"
.section .text.vectors, "ax"
.balign 0x800
.global el3_vectors
el3_vectors:
    trap_table el3_sync_lower, el3_unexpected, el3
"#,
);

fn esr() -> u64 {
    arm_sysregs::el3::accessors::read_esr_el3().bits()
}

fn this_cpu() -> usize {
    (arm_sysregs::el1::accessors::read_mpidr_el1().bits() & 0xff) as usize
}

// arm-sysregs 0.5.2 has no FAR_EL3 accessor: this defines one with its own macro.
arm_sysregs::read_sysreg!(far_el3, u64, safe);

/// EC of an SMC executed in AArch64 state (Arm ARM D24.2.40).
const EC_SMC64: u64 = 0x17;

fn psci_name(fid: u32) -> &'static str {
    use smccc_ids::*;
    match fid & !(1 << 16) {
        PSCI_VERSION => "PSCI_VERSION",
        PSCI_FEATURES => "PSCI_FEATURES",
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => "CPU_ON",
        PSCI_CPU_OFF => "CPU_OFF",
        PSCI_CPU_SUSPEND_32 | PSCI_CPU_SUSPEND_64 => "CPU_SUSPEND",
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => "AFFINITY_INFO",
        PSCI_MIGRATE_INFO_TYPE => "MIGRATE_INFO_TYPE",
        PSCI_SYSTEM_OFF => "SYSTEM_OFF",
        PSCI_SYSTEM_RESET => "SYSTEM_RESET",
        psci_el3::SMCCC_VERSION => "SMCCC_VERSION",
        psci_el3::SMCCC_ARCH_FEATURES => "SMCCC_ARCH_FEATURES",
        _ => "other",
    }
}

mod smccc_ids {
    pub use smccc::psci::*;
}

#[unsafe(no_mangle)]
extern "C" fn el3_sync_lower(frame: &mut Frame, _kind: u64) {
    let esr = esr();
    if esr >> 26 != EC_SMC64 {
        fwlog!(
            "unexpected exception from the normal world: ESR_EL3={esr:#x} ELR={:#x}",
            frame.elr
        );
        crate::fail("unexpected-lower-el-exception");
    }
    let fid = frame.x[0] as u32;
    let cpu = this_cpu();
    if Psci::owns(fid) {
        let mut x = [0u64; 8];
        x.copy_from_slice(&frame.x[..8]);
        let action = match crate::PSCI.get() {
            Some(p) => p.lock().handle(cpu, &x),
            None => Action::Return([u64::MAX, 0, 0, 0]),
        };
        psci_event(fid, &x, &action);
        match action {
            Action::Return(r) => frame.x[..4].copy_from_slice(&r),
            Action::StartCpu { target, .. } => {
                frame.x[..4].copy_from_slice(&[0, 0, 0, 0]);
                crate::release_cpu(target);
            }
            Action::Standby => {
                // SCR_EL3 leaves IRQs to the lower ELs, so a pending one wakes us and is taken
                // after the ERET.
                arch::wfi();
                frame.x[..4].copy_from_slice(&[0, 0, 0, 0]);
            }
            Action::ParkCaller => crate::park(cpu),
            Action::SystemOff => {
                report_ffa_calls();
                power::off()
            }
            Action::SystemReset => {
                report_ffa_calls();
                power::reset()
            }
        }
        return;
    }
    if ffa_abi::fid::is_ffa(fid) {
        let mut x = [0u64; 18];
        x.copy_from_slice(&frame.x[..18]);
        let reply = crate::spmc_glue::handle(&x);
        let code = reply.status.err().map_or(0, |e| e as i32);
        // The first call of each kind and outcome is logged; the rest are counted and
        // reported at power-off (`spmc::tally`).
        if FFA_CALLS.lock().record(reply.call, code) {
            console::event(catena_event::FwEvent::Ffa, |e| {
                e.str("call", reply.call)
                    .u64("cpu", cpu as u64)
                    .str("result", &result_text(code))
            });
        }
        reply.write_to(&mut frame.x);
        return;
    }
    if fid == crate::tpm::BENCH_DIRECT_SMC
        && let Some(ticks) = crate::tpm::bench_one_direct()
    {
        frame.x[0] = 0;
        frame.x[1] = ticks;
        return;
    }
    // Not ours: SMCCC NOT_SUPPORTED, other registers untouched.
    console::event(catena_event::FwEvent::Smc, |e| {
        e.hex("fid", u64::from(fid)).str("result", "not-supported")
    });
    frame.x[0] = u64::MAX;
}

static FFA_CALLS: Mutex<Tally> = Mutex::new(Tally::new());

fn result_text(code: i32) -> alloc::string::String {
    if code == 0 {
        "ok".into()
    } else {
        alloc::format!("{code}")
    }
}

/// `fw ev=ffa-calls` for each kind and outcome of FF-A call the normal world made.
fn report_ffa_calls() {
    let t = FFA_CALLS.lock();
    for e in t.entries() {
        console::event(catena_event::FwEvent::FfaCalls, |w| {
            w.str("call", e.call)
                .str("result", &result_text(e.result))
                .u64("n", e.count)
        });
    }
    if t.overflow() > 0 {
        console::event(catena_event::FwEvent::FfaCalls, |w| {
            w.str("call", "other").u64("n", t.overflow())
        });
    }
}

fn psci_event(fid: u32, x: &[u64; 8], action: &Action) {
    let name = psci_name(fid);
    console::event(catena_event::FwEvent::Psci, |e| {
        let e = e.str("call", name).u64("cpu", this_cpu() as u64);
        let e = match fid & !(1 << 16) {
            smccc::psci::PSCI_CPU_ON_32 | smccc::psci::PSCI_CPU_ON_64 => {
                e.hex("target", x[1]).hex("entry", x[2])
            }
            smccc::psci::PSCI_FEATURES | psci_el3::SMCCC_ARCH_FEATURES => e.hex("query", x[1]),
            _ => e,
        };
        match action {
            Action::Return(r) => e.str("result", &alloc::format!("{}", r[0] as i64)),
            Action::StartCpu { target, .. } => e.u64("started", *target as u64),
            Action::ParkCaller => e.str("result", "parked"),
            Action::Standby => e.str("result", "standby"),
            Action::SystemOff => e.str("result", "off"),
            Action::SystemReset => e.str("result", "reset"),
        }
    });
}

#[unsafe(no_mangle)]
extern "C" fn el3_unexpected(frame: &mut Frame, kind: u64) {
    let esr = esr();
    let far = read_far_el3();
    let _ = core::fmt::Write::write_fmt(
        &mut console::Raw,
        format_args!(
            "\nEL3: unexpected exception (vector {kind}) ESR={esr:#x} FAR={far:#x} ELR={:#x}\n",
            frame.elr
        ),
    );
    let _ = core::fmt::Write::write_str(
        &mut console::Raw,
        "@event fw ev=fail reason=el3-exception\n",
    );
    power::off()
}
