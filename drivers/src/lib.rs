//! Catena's device and protocol drivers, bound through the device model.
//!
//! Each driver is a [`devmodel::Driver`] with a match table (DT compatible, FF-A UUID, name)
//! and a probe. What a driver needs from the kernel comes through [`kapi`] (events, time, the
//! hyp's phase, the SMCCC conduit, identity-mapped pages) and [`irq`] (interrupt routing), so
//! the drivers do not depend on the kernel crate.
#![no_std]

extern crate alloc;

pub mod agent;
pub mod armv8_timer;
pub mod attest;
pub mod bcm2835_wdt;
pub mod certs;
pub mod efivar;
pub mod ffa;
pub mod fwcfg;
pub mod ima;
pub mod irq;
pub mod kapi;
pub mod net;
pub mod pl011;
pub mod power;
pub mod query;
pub mod tpm;
