//! The kernel's side of the driver API (`catena_drivers::kapi`): the only door drivers have
//! into the kernel.

use crate::arch::{psci, time};
use crate::init::boot;
use crate::{console, hyp};
use catena_drivers::kapi::{Hyp, Kernel};
use dtinfo::PsciMethod;

struct Api;

impl Kernel for Api {
    fn now_us(&self) -> u64 {
        time::now_us()
    }

    fn write_line(&self, line: &str) {
        console::write_str(line);
    }

    fn hyp(&self) -> Hyp {
        if !hyp::installed() {
            Hyp::Absent
        } else if hyp::finalised() {
            Hyp::Finalised
        } else {
            Hyp::Installed
        }
    }

    fn smccc(&self, x: &mut [u64; 18]) {
        let mut args = [0u64; 17];
        args.copy_from_slice(&x[1..]);
        *x = match psci::method() {
            Some(PsciMethod::Smc) => smccc::smc64(x[0] as u32, args),
            Some(PsciMethod::Hvc) => smccc::hvc64(x[0] as u32, args),
            None => {
                let mut r = [0u64; 18];
                r[0] = u64::MAX;
                r
            }
        };
    }

    fn ffa_early(&self) -> bool {
        cfg!(feature = "test-hooks") && boot::params().ffa_early
    }
}

static API: Api = Api;

/// Opens the door (before any driver registers).
pub fn init() {
    catena_drivers::kapi::set_kernel(&API);
}
