//! `tpm-crb-ffa`: the TPM through Arm DEN0138 (CRB over FF-A), as Linux's `tpm_crb_ffa` uses
//! it — the function ID in x4 on REQ and REQ2 — but choosing REQ2 only when the partition
//! advertises it *and* FFA_FEATURES says the instance (the hyp) passes it, REQ otherwise.

use super::register;
use crate::ffa::{errno, with_session};
use crate::kapi;
use alloc::boxed::Box;
use alloc::format;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use ffa_abi::{FfaError, Uuid};
use ffa_core::Form;
use ffa_core::client::CallError;
use spin::Mutex;
use tpm_service::client::{Channel, Client};
use tpm_service::{Crb, OutsideCrb, den0138};

/// The CRB the firmware reserved: (base, size), from the `catena,tpm-crb-ffa` node.
static CRB: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// The DT's CRB description (the project-local binding; see docs/tpm.md).
pub const CRB_DRIVER: Driver = Driver {
    name: "tpm-crb",
    bus: "platform",
    ids: &[MatchId::Compatible("catena,tpm-crb-ffa")],
    probe: crb_probe,
    bound: None,
};

fn crb_probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let r = *ctx
        .device()
        .regions
        .first()
        .ok_or(ProbeError::Failed("no reg"))?;
    let need = tpm_service::LOCALITIES * tpm_service::PAGE;
    if r.size < need || r.base % tpm_service::PAGE != 0 {
        return Err(ProbeError::Failed("CRB smaller than five aligned pages"));
    }
    *CRB.lock() = Some((r.base, need));
    // The firmware's measured-boot log, when it names one on this node.
    if let (Some(base), Some(size)) = (
        ctx.device().prop(super::SML_BASE),
        ctx.device().prop(super::SML_SIZE),
    ) {
        *super::EVENT_LOG.lock() = Some((base, size));
    }
    Ok(())
}

/// The partition's driver.
pub const DRIVER: Driver = Driver {
    name: "tpm-crb-ffa",
    bus: crate::ffa::BUS,
    ids: &[MatchId::Uuid(den0138::UUID)],
    probe,
    bound: None,
};

/// The CRB pages through the kernel's identity map (Normal memory), kept coherent with a
/// service that may read and write them with its MMU off: lines are cleaned to the point of
/// coherency after each write and invalidated before each read.
struct Pages {
    base: u64,
    size: u64,
}

impl Pages {
    fn at(&self, off: u64, len: usize) -> Result<u64, OutsideCrb> {
        let end = off.checked_add(len as u64).ok_or(OutsideCrb)?;
        if end > self.size {
            return Err(OutsideCrb);
        }
        Ok(self.base + off)
    }
}

impl Crb for Pages {
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideCrb> {
        let a = self.at(off, buf.len())?;
        // Clean first, then invalidate: nothing the kernel wrote is lost, and the read sees
        // the service's bytes.
        arch::clean_to_poc(a, buf.len() as u64);
        // SAFETY: `[a, a + len)` lies in the CRB (checked by `at`), reserved RAM that only
        // this driver and the service use; it was just cleaned, so no dirty data is lost.
        unsafe { arch::invalidate(a, buf.len() as u64) };
        // SAFETY: inside the CRB, identity-mapped as RAM by the kernel; volatile because
        // the service writes it behind the compiler's back.
        unsafe { arch::read_shared(a as usize, buf) };
        Ok(())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideCrb> {
        let a = self.at(off, data.len())?;
        // SAFETY: as for `read`.
        unsafe { arch::write_shared(a as usize, data) };
        arch::clean_to_poc(a, data.len() as u64);
        Ok(())
    }
}

/// DEN0138 calls on the FF-A session.
struct Ffa {
    id: u16,
    props: u32,
    uuid: Uuid,
    /// REQ2 when the partition accepts it and FFA_FEATURES said the instance passes it
    /// (fixed once the session is negotiated).
    form: Form,
}

/// How many times a BUSY answer (another CPU holds the service) is retried.
const BUSY_RETRIES: usize = 100;

impl Channel for Ffa {
    fn call(&mut self, func: u64, x5: u64, x6: u64) -> Result<(u64, u64), &'static str> {
        let form = self.form;
        for _ in 0..BUSY_RETRIES {
            // REQ carries x3 (MBZ) first; REQ2 starts at x4. Only these registers travel
            // (x7 onwards zero, as DEN0138 §3.2 wants), and come back: status x4, result x5.
            let mut req = [0, func, x5, x6];
            let first = if form == Form::Req { 1 } else { 0 };
            let a = &mut req[1 - first..];
            let r =
                with_session(|f| f.send_in_place(self.id, self.props, &self.uuid, a, Some(form)))
                    .ok_or("no FF-A session")?;
            match r {
                Ok(_) => return Ok((req[1], req[2])),
                Err(CallError::Ffa(FfaError::Busy)) => core::hint::spin_loop(),
                Err(e) => {
                    log::error!("tpm-crb-ffa: direct request: {}", errno(e));
                    return Err("ffa-direct-request");
                }
            }
        }
        Err("ffa-busy")
    }
}

struct CrbTransport(Client<Pages, Ffa>);

impl tpm_core::Transport for CrbTransport {
    fn transmit(&mut self, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        self.0.execute(0, cmd, rsp).map_err(|e| e.name())
    }
}

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let Some((base, size)) = *CRB.lock() else {
        return Err(ProbeError::Defer(
            "no CRB described yet (catena,tpm-crb-ffa)",
        ));
    };
    let dev = ctx.device();
    let props = dev.prop("properties").unwrap_or(0) as u32;
    let form = with_session(|f| ffa_core::form(props, f.req2, f.version, None))
        .ok_or(ProbeError::Failed("no FF-A session"))?;
    let ch = Ffa {
        id: dev.prop("partition-id").unwrap_or(0) as u16,
        props,
        uuid: dev.uuid.unwrap_or(ffa_abi::NIL_UUID),
        form,
    };
    let path = alloc::string::String::from(ctx.path());
    let mut client = Client::new(base, Pages { base, size }, ch);
    let reason = match client.version() {
        // The client accepts only 1.x.
        Ok((major, minor)) => {
            log::info!(
                "tpm-crb-ffa: DEN0138 {major}.{minor} at partition {:#x} via {}",
                client.channel().id,
                if form == Form::Req2 { "REQ2" } else { "REQ" }
            );
            None
        }
        Err(e) => Some(format!("interface version: {}", e.name())),
    };
    if let Some(reason) = reason {
        kapi::emit(catena_event::Kind::Tpm, |w| {
            w.str("state", "error")
                .str("transport", "crb-ffa")
                .str("dev", &path)
                .str("reason", &reason)
        });
        return Err(ProbeError::Failed("tpm-crb-ffa-version"));
    }
    let via = if form == Form::Req2 { "req2" } else { "req" };
    register(Box::new(CrbTransport(client)), "crb-ffa", via, &path)
        .map_err(|_| ProbeError::Failed("tpm-crb-ffa"))
}
