//! Time from the architected counter (CNTVCT_EL0 at CNTFRQ_EL0).

use arm_sysregs::el0::accessors::{read_cntfrq_el0, read_cntvct_el0};

/// The counter frequency in Hz.
pub fn counter_hz() -> u64 {
    read_cntfrq_el0().bits()
}

/// The virtual counter (after an ISB, so it is read after the code before it).
pub fn counter() -> u64 {
    arch::isb();
    read_cntvct_el0().bits()
}

/// Microseconds since the counter started at reset (0 if the frequency is unknown). The
/// virtual count equals the physical one: the firmware and the hyp set CNTVOFF_EL2 to 0.
pub fn now_us() -> u64 {
    catena_event::ticks_to_us(counter(), counter_hz())
}

/// Spins (with WFE/WFI wake-ups) until `done()` or `us` microseconds pass. Returns `done()`.
pub fn wait_until(us: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = now_us();
    while !done() {
        if now_us().saturating_sub(start) >= us {
            return done();
        }
        core::hint::spin_loop();
    }
    true
}
