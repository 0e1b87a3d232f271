//! Which FF-A calls the normal world made and how they ended, counted without logging each.
//!
//! The firmware reports the first call of each (function, outcome) pair as it happens — the
//! order the scenarios and the boot chart look at — and the counts when the system powers
//! off. Logging every call would cost a formatted UART line per direct request, several
//! thousand instructions on a path the TPM benchmark measures; TF-A and Hafnium release
//! builds do not trace every SMC either.

/// Distinct (call, outcome) pairs kept; further pairs are counted in `overflow`.
pub const SLOTS: usize = 48;

/// One (call, outcome) pair and how often it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The FF-A function's name.
    pub call: &'static str,
    /// 0 for success, else the FF-A error code.
    pub result: i32,
    /// Calls with this outcome.
    pub count: u64,
}

/// The counts.
pub struct Tally {
    entries: [Option<Entry>; SLOTS],
    overflow: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// No calls yet.
    pub const fn new() -> Tally {
        Tally {
            entries: [None; SLOTS],
            overflow: 0,
        }
    }

    /// Counts one call; true when it is the first of its pair (so the caller logs it).
    pub fn record(&mut self, call: &'static str, result: i32) -> bool {
        for slot in self.entries.iter_mut() {
            match slot {
                // The names are `fid::name`'s literals: the same pointer for the same call
                // (checked first: comparing the text cost a memcmp on every FF-A call).
                Some(e)
                    if e.result == result && (core::ptr::eq(e.call, call) || e.call == call) =>
                {
                    e.count = e.count.saturating_add(1);
                    return false;
                }
                Some(_) => {}
                None => {
                    *slot = Some(Entry {
                        call,
                        result,
                        count: 1,
                    });
                    return true;
                }
            }
        }
        // Full: counted, and logged, since it could not be remembered.
        self.overflow = self.overflow.saturating_add(1);
        true
    }

    /// The pairs seen, in first-seen order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// Calls whose pair found no free slot (each was logged as it happened).
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_of_each_pair_is_reported_then_counted() {
        let mut t = Tally::new();
        assert!(t.record("FFA_VERSION", 0));
        assert!(t.record("FFA_MSG_SEND_DIRECT_REQ2", 0));
        assert!(!t.record("FFA_MSG_SEND_DIRECT_REQ2", 0));
        assert!(t.record("FFA_MSG_SEND_DIRECT_REQ2", -3));
        assert!(!t.record("FFA_MSG_SEND_DIRECT_REQ2", 0));
        let e: alloc::vec::Vec<_> = t.entries().copied().collect();
        assert_eq!(
            e,
            [
                Entry {
                    call: "FFA_VERSION",
                    result: 0,
                    count: 1
                },
                Entry {
                    call: "FFA_MSG_SEND_DIRECT_REQ2",
                    result: 0,
                    count: 3
                },
                Entry {
                    call: "FFA_MSG_SEND_DIRECT_REQ2",
                    result: -3,
                    count: 1
                },
            ]
        );
        assert_eq!(t.overflow(), 0);
    }

    #[test]
    fn a_full_table_counts_and_reports_the_rest() {
        let mut t = Tally::new();
        for i in 0..SLOTS as i32 {
            assert!(t.record("X", -i));
        }
        assert!(t.record("X", 1));
        assert!(
            t.record("X", 1),
            "an unremembered pair is reported every time"
        );
        assert_eq!(t.overflow(), 2);
        assert_eq!(t.entries().count(), SLOTS);
    }
}
