//! The `query` system call's reports and the `attest` action (the kernel's side of the
//! shell's commands). Each is text; a service that is not there answers one line starting
//! with `absent: ` and why.

use crate::init::boot::params;
use crate::init::{TIMELINE, with_model};
use alloc::format;
use alloc::string::String;
use catena_drivers::query as dq;
use core::fmt::Write;
use devmodel::DeviceState;
use user_abi::query as q;

/// The report `kind` asks for (`arg`: its argument), or `None` for an unknown kind.
pub fn text(kind: u64, arg: &str) -> Option<String> {
    Some(match kind {
        q::INITCALLS => initcalls(),
        q::DEVICES => devices(),
        q::FFA => dq::ffa(),
        q::PCRS => dq::pcrs(),
        q::EFIVARS => dq::efivars(),
        q::EFIVAR => dq::efivar(arg),
        q::KEYS => dq::keys(),
        q::EVENTLOG => dq::eventlog(),
        q::MEASUREMENTS => dq::measurements(),
        q::PS => super::ps(),
        q::PROGRAMS => super::programs().join("\n") + "\n",
        _ => return None,
    })
}

/// Every initcall in the order it ran, with its level, result and time.
fn initcalls() -> String {
    let t = TIMELINE.lock();
    let mut out = format!("{} initcalls\n", t.len());
    for r in t.iter() {
        let _ = writeln!(
            out,
            "{:<12} {:<28} {:<4} {:>8} us{}",
            r.level,
            r.name,
            if r.result.is_some() { "err" } else { "ok" },
            r.us,
            r.result.map(|w| format!(" ({w})")).unwrap_or_default()
        );
    }
    out
}

/// The device model: every device by path, its driver or why it has none.
fn devices() -> String {
    let r = with_model(|m| {
        let mut out = String::new();
        let ids: alloc::vec::Vec<_> = m.devices().collect();
        let _ = writeln!(out, "{} devices", ids.len());
        for id in ids {
            let path = m.path(id).unwrap_or("?");
            let state = match m.state(id) {
                Some(DeviceState::Bound(d)) => format!("bound to {d}"),
                Some(DeviceState::Deferred { driver, reason }) => {
                    format!("deferred by {driver}: {reason}")
                }
                Some(DeviceState::Unbound) | None => String::from("no driver"),
            };
            let _ = writeln!(out, "{path:<44} {state}");
        }
        out
    });
    r.unwrap_or_else(|_| format!("{}no device model\n", q::ABSENT))
}

/// The attestation: the measurement list replayed against PCR 10 and exported, the quote
/// over PCRs 0-11 with the verifier's nonce, and, when `catena.verifier` names one, the
/// exchange with it. Run by the userland agent (`/bin/agent`), or at `late_sync` by the
/// kernel when there is no init to run it. Returns what happened, a line each.
pub fn attest() -> String {
    let mut out = String::new();
    catena_drivers::ima::report();
    out += &catena_drivers::attest::quote();
    out.push('\n');
    if let Some(v) = params().verifier {
        match attest::wire::parse_server(v) {
            Some(server) => out += &catena_drivers::agent::run(server),
            None => {
                crate::console::emit(catena_event::Kind::Attest, |e| {
                    e.str("state", "error")
                        .str("via", "network")
                        .str("reason", "catena.verifier is not A.B.C.D:PORT")
                });
                out += "catena.verifier is not A.B.C.D:PORT";
            }
        }
        out.push('\n');
    }
    out
}
