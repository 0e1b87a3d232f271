//! What a driver may ask of the kernel — and nothing else: event lines on the console, the
//! time, the hyp's phase, the SMCCC conduit, identity-mapped pages to share with the other
//! side of a conduit, and the interrupt routing in [`crate::irq`]. The kernel installs its
//! implementation once ([`set_kernel`]) before any driver registers; drivers never name a
//! kernel module.

use alloc::boxed::Box;
use alloc::string::String;
use catena_event::{EventWriter, Kind};
use spin::Once;

/// The hyp as drivers see it (`ffa_core::Hyp`).
pub use ffa_core::Hyp;

/// The kernel's side of the API.
pub trait Kernel: Sync {
    /// Microseconds since reset (the `t=` of events).
    fn now_us(&self) -> u64;
    /// Writes one whole line (newline included) to the console, under the console lock.
    fn write_line(&self, line: &str);
    /// Where the hyp stands.
    fn hyp(&self) -> Hyp;
    /// An SMCCC 1.2 call on the conduit the DT's PSCI node names (x0–x17 in, replaced by
    /// x0–x17 out); SMCCC NOT_SUPPORTED in x0 when there is no conduit.
    fn smccc(&self, x: &mut [u64; 18]);
    /// `catena.ffa_early` (a test hook; always false in the product image).
    fn ffa_early(&self) -> bool;
}

static KERNEL: Once<&'static dyn Kernel> = Once::new();

/// Installs the kernel's implementation (once, before drivers register).
pub fn set_kernel(k: &'static dyn Kernel) {
    KERNEL.call_once(|| k);
}

fn kernel() -> Option<&'static dyn Kernel> {
    KERNEL.get().copied()
}

/// Emits one `@event` line of `kind` with its time.
pub fn emit(kind: Kind, f: impl FnOnce(EventWriter<'_, String>) -> EventWriter<'_, String>) {
    let Some(k) = kernel() else { return };
    let t = k.now_us();
    let mut line = String::with_capacity(96);
    let _ = f(EventWriter::new(&mut line, kind)).time(t).finish();
    line.push('\n');
    k.write_line(&line);
    crate::ima::observe(&line);
}

/// Microseconds since reset (0 before the kernel installed the API).
pub fn now_us() -> u64 {
    kernel().map_or(0, |k| k.now_us())
}

/// The hyp's phase (Absent before the kernel installed the API).
pub fn hyp() -> Hyp {
    kernel().map_or(Hyp::Absent, |k| k.hyp())
}

/// An SMCCC call on the platform's conduit.
pub fn smccc(x: &mut [u64; 18]) {
    match kernel() {
        Some(k) => k.smccc(x),
        None => {
            *x = [0u64; 18];
            x[0] = u64::MAX;
        }
    }
}

/// `catena.ffa_early`.
pub fn ffa_early() -> bool {
    kernel().is_some_and(|k| k.ffa_early())
}

/// One 4 KiB page, aligned.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

/// Pages to give another world (an FF-A RX/TX pair, shared memory): kernel heap pages, which
/// the kernel maps with VA = PA, so [`pa`] is the address the other side is told.
pub fn pages(n: usize) -> Box<[Page]> {
    (0..n).map(|_| Page([0; 4096])).collect()
}

/// The physical (= virtual) address of a page run from [`pages`].
pub fn pa(p: &[Page]) -> u64 {
    p.as_ptr() as u64
}
