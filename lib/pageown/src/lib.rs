//! Host page ownership, as pKVM's `mem_protect.c` tracks it for the host stage-2.
//!
//! Owns the state of every 4 KiB page the host may use: [`State::Owned`], shared with the hyp
//! (RX/TX buffers), shared with the secure world (FFA_MEM_SHARE), or lent to it
//! (FFA_MEM_LEND). Transitions are checked and all-or-nothing over a range: either every page
//! moves, or none does and the first offending page is named. Memory that is not the host's
//! (hyp, secure, anything outside the host ranges) is never any of these. It says nothing about
//! how the states reach the stage-2 tables; [`Ownership::host_may_access`] is the rule the
//! stage-2 follows.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// 4 KiB.
pub const PAGE: u64 = 4096;

/// A host page's state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// The host owns it exclusively.
    Owned,
    /// Shared with the hyp (the host's FF-A RX/TX buffers): the host keeps access.
    SharedHyp,
    /// Shared with the secure world (FFA_MEM_SHARE): the host keeps access.
    SharedSecure,
    /// Lent to the secure world (FFA_MEM_LEND): the host loses access until reclaim.
    Lent,
}

/// Why a transition was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OwnError {
    /// Not 4 KiB aligned, empty, or wrapping.
    BadRange,
    /// The page is not host memory at all (hyp, secure, MMIO, outside RAM).
    NotHost(u64),
    /// The page is in the wrong state for this transition.
    WrongState(u64, State),
}

/// The tracker.
#[derive(Debug, Clone)]
pub struct Ownership {
    host: Vec<(u64, u64)>,
    /// Pages not in the default (Owned) state, by page number.
    pages: BTreeMap<u64, State>,
}

impl Ownership {
    /// Host memory is `ram` minus `carve_outs` (the hyp's own memory, secure reservations).
    pub fn new(ram: &[(u64, u64)], carve_outs: &[(u64, u64)]) -> Self {
        let mut host: Vec<(u64, u64)> = Vec::new();
        for &(b, s) in ram {
            let mut pieces = alloc::vec![(b, b.saturating_add(s))];
            for &(cb, cs) in carve_outs {
                let ce = cb.saturating_add(cs);
                pieces = pieces
                    .into_iter()
                    .flat_map(|(s0, e0)| {
                        let mut out = Vec::new();
                        if ce <= s0 || cb >= e0 {
                            out.push((s0, e0));
                        } else {
                            if cb > s0 {
                                out.push((s0, cb));
                            }
                            if ce < e0 {
                                out.push((ce, e0));
                            }
                        }
                        out
                    })
                    .collect();
            }
            host.extend(pieces.into_iter().map(|(s0, e0)| (s0, e0 - s0)));
        }
        Ownership {
            host,
            pages: BTreeMap::new(),
        }
    }

    /// Whether `pa`'s page is host memory.
    pub fn is_host(&self, pa: u64) -> bool {
        self.host.iter().any(|&(b, s)| pa >= b && pa - b < s)
    }

    /// The state of `pa`'s page, or None when it is not host memory.
    pub fn state(&self, pa: u64) -> Option<State> {
        if !self.is_host(pa) {
            return None;
        }
        Some(
            self.pages
                .get(&(pa / PAGE))
                .copied()
                .unwrap_or(State::Owned),
        )
    }

    /// Whether the host stage-2 maps `pa` for the host.
    pub fn host_may_access(&self, pa: u64) -> bool {
        matches!(
            self.state(pa),
            Some(State::Owned | State::SharedHyp | State::SharedSecure)
        )
    }

    /// Host memory ranges (for building the stage-2).
    pub fn host_ranges(&self) -> &[(u64, u64)] {
        &self.host
    }

    /// Pages currently lent (the stage-2 leaves them out).
    pub fn lent_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages
            .iter()
            .filter(|(_, s)| **s == State::Lent)
            .map(|(p, _)| p * PAGE)
    }

    fn pages_of(base: u64, pages: u64) -> Result<core::ops::Range<u64>, OwnError> {
        if !base.is_multiple_of(PAGE) || pages == 0 {
            return Err(OwnError::BadRange);
        }
        let end = pages
            .checked_mul(PAGE)
            .and_then(|l| base.checked_add(l))
            .ok_or(OwnError::BadRange)?;
        Ok(base / PAGE..end / PAGE)
    }

    /// Moves every page of `[base, base + pages * 4 KiB)` from `from` to `to`, or none.
    pub fn transition(
        &mut self,
        base: u64,
        pages: u64,
        from: State,
        to: State,
    ) -> Result<(), OwnError> {
        let range = Self::pages_of(base, pages)?;
        for p in range.clone() {
            match self.state(p * PAGE) {
                None => return Err(OwnError::NotHost(p * PAGE)),
                Some(s) if s != from => return Err(OwnError::WrongState(p * PAGE, s)),
                Some(_) => {}
            }
        }
        for p in range {
            if to == State::Owned {
                self.pages.remove(&p);
            } else {
                self.pages.insert(p, to);
            }
        }
        Ok(())
    }

    /// Several ranges at once, all-or-nothing: on a failure, the ranges already moved are
    /// moved back and the error for the offending range is returned.
    pub fn transition_all(
        &mut self,
        ranges: &[(u64, u64)],
        from: State,
        to: State,
    ) -> Result<(), OwnError> {
        for (i, &(b, n)) in ranges.iter().enumerate() {
            if let Err(e) = self.transition(b, n, from, to) {
                for &(rb, rn) in &ranges[..i] {
                    // These moved from `from` to `to` a moment ago; moving back cannot fail.
                    let _ = self.transition(rb, rn, to, from);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: (u64, u64) = (0x4000_0000, 0x4000_0000);
    const HYP: (u64, u64) = (0x4100_0000, 0x10_0000);

    fn own() -> Ownership {
        Ownership::new(&[RAM], &[HYP])
    }

    #[test]
    fn host_memory_is_ram_minus_carve_outs() {
        let o = own();
        assert_eq!(o.state(0x4000_0000), Some(State::Owned));
        assert_eq!(o.state(HYP.0), None, "hyp memory is not the host's");
        assert_eq!(o.state(HYP.0 + HYP.1), Some(State::Owned));
        assert_eq!(o.state(0x900_0000), None, "MMIO");
        assert_eq!(o.state(0x8000_0000), None, "past RAM");
        assert_eq!(
            o.host_ranges(),
            &[(0x4000_0000, 0x100_0000), (0x4110_0000, 0x3ef0_0000)]
        );
    }

    #[test]
    fn share_lend_reclaim_cycle() {
        let mut o = own();
        let b = 0x4800_0000;
        o.transition(b, 2, State::Owned, State::SharedSecure)
            .unwrap();
        assert_eq!(o.state(b + PAGE), Some(State::SharedSecure));
        assert!(o.host_may_access(b));
        // Double share: refused, naming the page.
        assert_eq!(
            o.transition(b + PAGE, 1, State::Owned, State::SharedSecure),
            Err(OwnError::WrongState(b + PAGE, State::SharedSecure))
        );
        o.transition(b, 2, State::SharedSecure, State::Owned)
            .unwrap();
        o.transition(b, 1, State::Owned, State::Lent).unwrap();
        assert!(!o.host_may_access(b));
        assert_eq!(o.lent_pages().collect::<Vec<_>>(), [b]);
        o.transition(b, 1, State::Lent, State::Owned).unwrap();
        assert_eq!(o.lent_pages().count(), 0);
    }

    #[test]
    fn all_or_nothing() {
        let mut o = own();
        // A range that runs into hyp memory moves nothing.
        let start = HYP.0 - PAGE;
        assert_eq!(
            o.transition(start, 2, State::Owned, State::SharedHyp),
            Err(OwnError::NotHost(HYP.0))
        );
        assert_eq!(o.state(start), Some(State::Owned));
        // Several ranges: the second fails, the first is rolled back.
        o.transition(0x4900_0000, 1, State::Owned, State::SharedSecure)
            .unwrap();
        let r = o.transition_all(
            &[(0x4800_0000, 4), (0x4900_0000, 1)],
            State::Owned,
            State::SharedSecure,
        );
        assert_eq!(
            r,
            Err(OwnError::WrongState(0x4900_0000, State::SharedSecure))
        );
        assert_eq!(o.state(0x4800_0000), Some(State::Owned));
        assert_eq!(o.state(0x4800_3000), Some(State::Owned));
    }

    #[test]
    fn bad_ranges() {
        let mut o = own();
        assert_eq!(
            o.transition(0x4800_0001, 1, State::Owned, State::Lent),
            Err(OwnError::BadRange)
        );
        assert_eq!(
            o.transition(0x4800_0000, 0, State::Owned, State::Lent),
            Err(OwnError::BadRange)
        );
        assert_eq!(
            o.transition(!0xfffu64, 2, State::Owned, State::Lent),
            Err(OwnError::BadRange)
        );
    }
}
