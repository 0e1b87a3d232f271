//! The attestation agent init starts: asks the kernel to attest (export the measurement list,
//! quote the PCRs with the verifier's nonce, talk to the verifier when one is named) after
//! the programs before it were measured, and prints what happened.
#![no_std]
#![no_main]

extern crate alloc;

use catena_user_rt as rt;

/// The program.
#[unsafe(no_mangle)]
fn main(_arg: &str) -> u64 {
    match rt::attest() {
        Ok(text) => {
            for line in text.lines() {
                rt::print(&alloc::format!("agent: {line}\n"));
            }
            0
        }
        Err(e) => {
            rt::print(&alloc::format!(
                "agent: attest failed: {}\n",
                rt::errno_name(e)
            ));
            1
        }
    }
}
