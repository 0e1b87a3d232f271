//! Time from the architected counter (CNTVCT_EL0 at CNTFRQ_EL0).

use core::arch::asm;

/// The counter frequency in Hz.
pub fn counter_hz() -> u64 {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack, preserves_flags)) };
    f
}

/// The virtual counter.
pub fn counter() -> u64 {
    let c: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; the ISB orders it after earlier code.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) c, options(nomem, nostack, preserves_flags))
    };
    c
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
