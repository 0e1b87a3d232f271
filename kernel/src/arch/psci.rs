//! PSCI through the conduit the DT names (`/psci` method).

use dtinfo::PsciMethod;
use smccc::{Hvc, Smc, psci};
use spin::Once;

static METHOD: Once<PsciMethod> = Once::new();

/// Records the conduit (from `/psci`).
pub fn init(method: Option<PsciMethod>) {
    if let Some(m) = method {
        METHOD.call_once(|| m);
    }
}

/// The conduit, if the DT has one.
pub fn method() -> Option<PsciMethod> {
    METHOD.get().copied()
}

/// PSCI_VERSION as (major, minor).
pub fn version() -> Option<(u16, u16)> {
    let v = match method()? {
        PsciMethod::Smc => psci::version::<Smc>(),
        PsciMethod::Hvc => psci::version::<Hvc>(),
    };
    v.ok().map(|v| (v.major, v.minor))
}

/// CPU_ON (64-bit).
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), psci::error::Error> {
    match method() {
        Some(PsciMethod::Smc) => psci::cpu_on::<Smc>(mpidr, entry, context),
        Some(PsciMethod::Hvc) => psci::cpu_on::<Hvc>(mpidr, entry, context),
        None => Err(psci::error::Error::NotSupported),
    }
}

/// SYSTEM_OFF; returns only if it failed or there is no PSCI.
pub fn system_off() {
    let _ = match method() {
        Some(PsciMethod::Smc) => psci::system_off::<Smc>(),
        Some(PsciMethod::Hvc) => psci::system_off::<Hvc>(),
        None => Ok(()),
    };
}
