//! Catena's platform drivers, bound through the device model.
//!
//! Each driver is a [`devmodel::Driver`] with a DT match table and a probe. What a driver needs
//! from the kernel (an interrupt controller, interrupt routing) comes through [`irq`], so the
//! drivers do not depend on the kernel crate.
#![no_std]

pub mod armv8_timer;
pub mod irq;
pub mod pl011;
