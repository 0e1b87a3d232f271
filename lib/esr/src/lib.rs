//! Names for AArch64 exception syndromes, for fault reports.
//!
//! Owns the table of exception classes (Arm ARM DDI 0487, D24.2.40 "ESR_EL1", field EC) and the
//! fault status codes of data/instruction aborts (ISS DFSC/IFSC), as stable lower-case words
//! that reports and tests can match on. It decides nothing about handling.
#![no_std]
#![forbid(unsafe_code)]

/// A decoded syndrome.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Syndrome {
    /// Exception class (ESR[31:26]).
    pub ec: u8,
    /// Instruction length bit (ESR[25]).
    pub il: bool,
    /// Instruction-specific syndrome (ESR[24:0]).
    pub iss: u32,
}

impl Syndrome {
    /// Splits an ESR value.
    pub const fn new(esr: u64) -> Self {
        Syndrome {
            ec: ((esr >> 26) & 0x3f) as u8,
            il: (esr >> 25) & 1 == 1,
            iss: (esr & 0x1ff_ffff) as u32,
        }
    }

    /// The exception class as a stable word.
    pub const fn class_name(&self) -> &'static str {
        match self.ec {
            0x00 => "unknown",
            0x01 => "wfi-wfe",
            0x07 => "fp-simd-access",
            0x0e => "illegal-execution-state",
            0x11 => "svc-aarch32",
            0x15 => "svc",
            0x16 => "hvc",
            0x17 => "smc",
            0x18 => "sysreg-trap",
            0x19 => "sve-access",
            0x20 => "instruction-abort-lower-el",
            0x21 => "instruction-abort",
            0x22 => "pc-alignment",
            0x24 => "data-abort-lower-el",
            0x25 => "data-abort",
            0x26 => "sp-alignment",
            0x2c => "fp-exception",
            0x2f => "serror",
            0x30 => "breakpoint-lower-el",
            0x31 => "breakpoint",
            0x32 => "step-lower-el",
            0x33 => "step",
            0x34 => "watchpoint-lower-el",
            0x35 => "watchpoint",
            0x3c => "brk",
            _ => "reserved",
        }
    }

    /// Whether this is an instruction or data abort (with a fault status code in ISS[5:0]).
    pub const fn is_abort(&self) -> bool {
        matches!(self.ec, 0x20 | 0x21 | 0x24 | 0x25)
    }

    /// For aborts, the fault status code (DFSC/IFSC) as a stable word.
    pub const fn fault_status(&self) -> Option<&'static str> {
        if !self.is_abort() {
            return None;
        }
        let fsc = (self.iss & 0x3f) as u8;
        Some(match fsc {
            0x00..=0x03 => "address-size-fault",
            0x04..=0x07 => "translation-fault",
            0x09..=0x0b => "access-flag-fault",
            0x0d..=0x0f => "permission-fault",
            0x10 => "external-abort",
            0x14..=0x17 => "external-abort-on-walk",
            0x21 => "alignment-fault",
            0x30 => "tlb-conflict",
            _ => "other-fault",
        })
    }

    /// For aborts, the lookup level the fault status names (0-3), where it has one.
    pub const fn fault_level(&self) -> Option<u8> {
        if !self.is_abort() {
            return None;
        }
        let fsc = (self.iss & 0x3f) as u8;
        match fsc {
            0x00..=0x0f | 0x14..=0x17 => Some(fsc & 3),
            _ => None,
        }
    }

    /// For data aborts, whether the access was a write (ISS.WnR).
    pub const fn is_write(&self) -> bool {
        matches!(self.ec, 0x24 | 0x25) && (self.iss >> 6) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_secure_memory_abort_seen_on_qemu() {
        // NS EL2 read of secure RAM on QEMU virt (reference/qemu-facts.md).
        let s = Syndrome::new(0x9780_0010);
        assert_eq!(s.ec, 0x25);
        assert!(s.il);
        assert_eq!(s.class_name(), "data-abort");
        assert_eq!(s.fault_status(), Some("external-abort"));
        assert_eq!(s.fault_level(), None);
        assert!(!s.is_write());
    }

    #[test]
    fn translation_fault_level_and_write() {
        // EC 0x25, IL, WnR, DFSC 0x07 (translation fault, level 3).
        let s = Syndrome::new((0x25 << 26) | (1 << 25) | (1 << 6) | 0x07);
        assert_eq!(s.fault_status(), Some("translation-fault"));
        assert_eq!(s.fault_level(), Some(3));
        assert!(s.is_write());
    }

    #[test]
    fn non_aborts_have_no_fault_status() {
        let s = Syndrome::new(0x0200_0000); // EC 0 (unknown), IL
        assert_eq!(s.class_name(), "unknown");
        assert_eq!(s.fault_status(), None);
        assert_eq!(Syndrome::new(0x17 << 26).class_name(), "smc");
        assert_eq!(Syndrome::new(0x3f << 26).class_name(), "reserved");
    }
}
