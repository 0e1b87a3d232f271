//! Who powers the system off when PSCI cannot: a board driver registers its way
//! (`bcm2835-pm-wdt` on the Raspberry Pi), the kernel calls it after `done`.

use spin::Once;

static OFF: Once<(&'static str, fn())> = Once::new();

/// Registers the board's power-off (the first driver to ask keeps it).
pub fn register(name: &'static str, off: fn()) {
    OFF.call_once(|| (name, off));
}

/// Powers off through the registered driver. Returns its name if the call came back (it
/// failed) and `None` when no driver registered one.
pub fn off() -> Option<&'static str> {
    let (name, f) = *OFF.get()?;
    f();
    Some(name)
}

/// The registered power-off's name.
pub fn name() -> Option<&'static str> {
    OFF.get().map(|(n, _)| *n)
}
