//! A user program's ELF64 image, validated before a byte of it is mapped (ELF-64 Object File
//! Format 1.5; the AArch64 ELF ABI for `e_machine`): little-endian, AArch64, a static
//! executable (`ET_EXEC`, no interpreter, no dynamic section), program headers inside the file,
//! `PT_LOAD` segments inside the user range, page-congruent, non-overlapping, never both
//! writable and executable, the entry point inside an executable one.
//!
//! No ELF crate from the project's list fits (none is there); the format's few fields are read
//! here, and the policy (W^X, the user range) is ours in any case.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::ops::Range;

/// Why an image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Where user programs may live.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Lowest user address.
    pub base: u64,
    /// One past the highest.
    pub end: u64,
    /// Most loadable segments.
    pub max_segments: usize,
}

/// One loadable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its first virtual address.
    pub vaddr: u64,
    /// Its size in memory (the part past the file's bytes is zero).
    pub memsz: u64,
    /// Its bytes in the file.
    pub file: Range<usize>,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
}

/// A validated program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The entry point.
    pub entry: u64,
    /// Its loadable segments, in address order.
    pub segments: Vec<Segment>,
}

/// Catena's user address range: 384 to 448 GiB of the 39-bit space the kernel's translation
/// uses, above every physical address its identity map covers on the machines it runs on
/// (RAM and the DT's devices; QEMU virt's high PCIe windows start at 256 GiB and are not
/// mapped by the kernel).
pub const USER: Limits = Limits {
    base: 0x60_0000_0000,
    end: 0x70_0000_0000,
    max_segments: 8,
};

const PAGE: u64 = 4096;
const EHDR: usize = 64;
const PHDR: usize = 56;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

fn u16_at(b: &[u8], o: usize) -> Result<u16, Malformed> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(Malformed("truncated"))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, Malformed> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(Malformed("truncated"))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, Malformed> {
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(Malformed("truncated"))
}

/// Validates `elf` against `limits`.
pub fn parse(elf: &[u8], limits: &Limits) -> Result<Program, Malformed> {
    let id = elf
        .get(..16)
        .ok_or(Malformed("shorter than an ELF identification"))?;
    if id[..4] != [0x7f, b'E', b'L', b'F'] {
        return Err(Malformed("not ELF"));
    }
    if id[4] != 2 || id[5] != 1 || id[6] != 1 {
        return Err(Malformed("not ELF64, little-endian, version 1"));
    }
    if u16_at(elf, 16)? != ET_EXEC {
        return Err(Malformed("not a static executable (ET_EXEC)"));
    }
    if u16_at(elf, 18)? != EM_AARCH64 || u32_at(elf, 20)? != 1 {
        return Err(Malformed("not an AArch64 ELF of version 1"));
    }
    let entry = u64_at(elf, 24)?;
    let phoff = usize::try_from(u64_at(elf, 32)?)
        .map_err(|_| Malformed("program headers beyond the file"))?;
    if u16_at(elf, 52)? as usize != EHDR || u16_at(elf, 54)? as usize != PHDR {
        return Err(Malformed("unexpected header sizes"));
    }
    let phnum = u16_at(elf, 56)? as usize;
    if phnum == 0 || phnum > 32 {
        return Err(Malformed("program header count out of range"));
    }
    phoff
        .checked_add(phnum * PHDR)
        .filter(|e| *e <= elf.len())
        .ok_or(Malformed("program headers beyond the file"))?;
    let mut segments: Vec<Segment> = Vec::new();
    for i in 0..phnum {
        let p = phoff + i * PHDR;
        let typ = u32_at(elf, p)?;
        match typ {
            PT_INTERP | PT_DYNAMIC => return Err(Malformed("dynamically linked")),
            PT_LOAD => {}
            _ => continue,
        }
        let flags = u32_at(elf, p + 4)?;
        let offset = u64_at(elf, p + 8)?;
        let vaddr = u64_at(elf, p + 16)?;
        let filesz = u64_at(elf, p + 32)?;
        let memsz = u64_at(elf, p + 40)?;
        let align = u64_at(elf, p + 48)?;
        if memsz == 0 {
            continue;
        }
        if filesz > memsz {
            return Err(Malformed("a segment's file size exceeds its memory size"));
        }
        if !align.is_power_of_two() || align < PAGE || vaddr % PAGE != offset % PAGE {
            return Err(Malformed("a segment not page-aligned with its file offset"));
        }
        let file_end = offset
            .checked_add(filesz)
            .filter(|e| *e <= elf.len() as u64)
            .ok_or(Malformed("a segment's bytes beyond the file"))?;
        let end = vaddr
            .checked_add(memsz)
            .ok_or(Malformed("a segment wraps"))?;
        if vaddr < limits.base || end > limits.end {
            return Err(Malformed("a segment outside the user address range"));
        }
        let (write, exec) = (flags & PF_W != 0, flags & PF_X != 0);
        if write && exec {
            return Err(Malformed("a segment both writable and executable"));
        }
        let page_lo = vaddr & !(PAGE - 1);
        let page_hi = end.div_ceil(PAGE) * PAGE;
        if segments.iter().any(|s| {
            let lo = s.vaddr & !(PAGE - 1);
            let hi = (s.vaddr + s.memsz).div_ceil(PAGE) * PAGE;
            page_lo < hi && lo < page_hi
        }) {
            return Err(Malformed("segments share a page"));
        }
        if segments.len() == limits.max_segments {
            return Err(Malformed("too many segments"));
        }
        segments.push(Segment {
            vaddr,
            memsz,
            file: offset as usize..file_end as usize,
            write,
            exec,
        });
    }
    if !segments
        .iter()
        .any(|s| s.exec && entry >= s.vaddr && entry < s.vaddr + s.memsz)
    {
        return Err(Malformed("the entry point is not in an executable segment"));
    }
    segments.sort_by_key(|s| s.vaddr);
    Ok(Program { entry, segments })
}

/// Whether `[start, start + len)` lies wholly inside one of `ranges` (start, end): what a
/// syscall's pointer and length from EL0 must satisfy before the kernel reads them.
pub fn inside(ranges: &[(u64, u64)], start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    ranges.iter().any(|&(lo, hi)| start >= lo && end <= hi)
}

#[cfg(test)]
mod tests;
