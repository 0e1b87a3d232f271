//! The CPU and the platform's architected parts: entry, exceptions, the GIC, PSCI, the
//! counter, and the EL2 boot stub.

pub mod entry;
pub mod exceptions;
pub mod gic;
pub mod hyp_stub;
pub mod psci;
pub mod time;
