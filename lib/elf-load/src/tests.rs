extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;

const LIMITS: Limits = Limits {
    base: 0x40_0000,
    end: 0x80_0000_0000,
    max_segments: 8,
};

/// (type, flags, offset, vaddr, filesz, memsz, align)
type Ph = (u32, u32, u64, u64, u64, u64, u64);

fn elf(entry: u64, phs: &[Ph], size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size.max(64 + 56 * phs.len())];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&183u16.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, p) in phs.iter().enumerate() {
        let o = 64 + 56 * i;
        b[o..o + 4].copy_from_slice(&p.0.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&p.1.to_le_bytes());
        b[o + 8..o + 16].copy_from_slice(&p.2.to_le_bytes());
        b[o + 16..o + 24].copy_from_slice(&p.3.to_le_bytes());
        b[o + 32..o + 40].copy_from_slice(&p.4.to_le_bytes());
        b[o + 40..o + 48].copy_from_slice(&p.5.to_le_bytes());
        b[o + 48..o + 56].copy_from_slice(&p.6.to_le_bytes());
    }
    b
}

const TEXT: Ph = (1, 5, 0, 0x40_0000, 0x2000, 0x2000, 0x1000);
const DATA: Ph = (1, 6, 0x2000, 0x40_2000, 0x100, 0x3000, 0x1000);

#[test]
fn a_static_program_is_read() {
    let b = elf(
        0x40_0100,
        &[DATA, TEXT, (0x6474_e551, 6, 0, 0, 0, 0, 16)],
        0x3000,
    );
    let p = parse(&b, &LIMITS).unwrap();
    assert_eq!(p.entry, 0x40_0100);
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.segments[0].vaddr, 0x40_0000, "sorted by address");
    assert!(p.segments[0].exec && !p.segments[0].write);
    assert_eq!(p.segments[1].file, 0x2000..0x2100);
    assert_eq!(p.segments[1].memsz, 0x3000);
}

#[test]
fn every_rule_is_enforced() {
    let ok = elf(0x40_0100, &[TEXT, DATA], 0x3000);
    assert!(parse(&ok, &LIMITS).is_ok());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            elf(0x40_2100, &[TEXT, DATA], 0x3000),
            "entry in a data segment",
        ),
        (
            elf(
                0x40_0100,
                &[(1, 7, 0, 0x40_0000, 0x2000, 0x2000, 0x1000)],
                0x3000,
            ),
            "W+X",
        ),
        (
            elf(
                0x40_0100,
                &[TEXT, (1, 6, 0x2000, 0x40_1000, 0x100, 0x100, 0x1000)],
                0x3000,
            ),
            "overlap",
        ),
        (
            elf(0x1000, &[(1, 5, 0, 0x1000, 0x1000, 0x1000, 0x1000)], 0x3000),
            "below the user range",
        ),
        (
            elf(
                0x40_0100,
                &[(1, 5, 0, 0x40_0000, 0x10000, 0x10000, 0x1000)],
                0x3000,
            ),
            "bytes past the file",
        ),
        (
            elf(
                0x40_0100,
                &[(1, 5, 0, 0x40_0000, 0x3000, 0x2000, 0x1000)],
                0x3000,
            ),
            "filesz > memsz",
        ),
        (
            elf(
                0x40_0100,
                &[(1, 5, 0x10, 0x40_0000, 0x100, 0x100, 0x1000)],
                0x3000,
            ),
            "not congruent",
        ),
        (
            elf(0x40_0100, &[TEXT, (3, 4, 0, 0, 0, 0, 1)], 0x3000),
            "interpreter",
        ),
        (
            elf(
                0x7f_ffff_f000,
                &[(1, 5, 0, 0x7f_ffff_f000, 0x2000, 0x2000, 0x1000)],
                0x3000,
            ),
            "past the end",
        ),
        (
            elf(
                0x40_0100,
                &[(1, 5, 0, u64::MAX - 0xfff, 0x10, 0x2000, 0x1000)],
                0x3000,
            ),
            "wraps",
        ),
    ];
    for (b, why) in cases {
        assert!(parse(&b, &LIMITS).is_err(), "{why}");
    }
    // Header damage: magic, class, endianness, type, machine, sizes, counts.
    for (at, v) in [
        (0usize, 0u8),
        (4, 1),
        (5, 2),
        (16, 3),
        (18, 0),
        (52, 65),
        (54, 55),
        (56, 0),
    ] {
        let mut b = ok.clone();
        b[at] = v;
        assert!(parse(&b, &LIMITS).is_err(), "byte {at}");
    }
    let mut many = ok.clone();
    many[56..58].copy_from_slice(&1000u16.to_le_bytes());
    assert!(parse(&many, &LIMITS).is_err());
    for cut in [0, 15, 63, 64 + 56] {
        assert!(parse(&ok[..cut], &LIMITS).is_err(), "cut {cut}");
    }
}

#[test]
fn user_pointers_must_lie_inside_one_mapping() {
    let r = [(0x1000, 0x3000), (0x8000, 0x9000)];
    assert!(inside(&r, 0x1000, 0x2000));
    assert!(inside(&r, 0x8fff, 1));
    assert!(inside(&r, 0x2000, 0), "an empty range inside a mapping");
    assert!(!inside(&r, 0x2fff, 2), "past the end");
    assert!(
        !inside(&r, 0x2000, 0x7000),
        "across two mappings and the hole"
    );
    assert!(!inside(&r, 0xfff, 2), "before the start");
    assert!(!inside(&r, u64::MAX, 2), "wraps");
    assert!(!inside(&[], 0x1000, 1));
}
