//! The CPU and the platform's architected parts: entry, exceptions, the interrupt controller
//! (a GIC, or the Raspberry Pi's BCM2836/2835 pair), PSCI, the counter, and the EL2 boot stub.

pub mod bcm2836;
pub mod entry;
pub mod exceptions;
pub mod gic;
pub mod hyp_stub;
pub mod psci;
pub mod time;
