//! QEMU's fw_cfg (docs/specs/fw_cfg.rst) as the firmware reads it: the signature, the file
//! directory, the `opt/catena/kernel-base` file, and the `-kernel` Image and `-append` line,
//! placed where the Image header allows.
//!
//! Owns: every decision about what fw_cfg says (sizes, names, addresses are outside input and
//! are checked). Must not: touch the device or memory itself — the firmware gives it a
//! [`FwCfgIo`] (the MMIO registers) and a [`Ram`] (normal-world DRAM), tests give it fakes.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use arm64_image::{HEADER_LEN, Header};

/// Item selectors (fw_cfg.rst, "Selector Register").
pub mod sel {
    /// "QEMU".
    pub const SIGNATURE: u16 = 0x00;
    /// Kernel size, LE32.
    pub const KERNEL_SIZE: u16 = 0x08;
    /// Kernel bytes.
    pub const KERNEL_DATA: u16 = 0x11;
    /// Command line size, LE32 (with its NUL).
    pub const CMDLINE_SIZE: u16 = 0x14;
    /// Command line bytes.
    pub const CMDLINE_DATA: u16 = 0x15;
    /// The file directory.
    pub const FILE_DIR: u16 = 0x19;
    /// Initrd size, LE32 (`-initrd`).
    pub const INITRD_SIZE: u16 = 0x0b;
    /// Initrd bytes.
    pub const INITRD_DATA: u16 = 0x12;
}

/// A fw_cfg file (`-fw_cfg name=opt/catena/kernel-base,string=0x48000000`) that moves the
/// kernel to a higher 2 MiB boundary, to prove the Image runs wherever it is put.
pub const KERNEL_BASE_FILE: &[u8] = b"opt/catena/kernel-base";
/// The longest command line accepted.
pub const CMDLINE_MAX: u32 = 4096;
/// Most directory entries read (QEMU has a few dozen).
pub const MAX_FILES: u32 = 256;

/// The device: select an item, then read it in order.
pub trait FwCfgIo {
    /// Selects an item; reading restarts at its first byte.
    fn select(&mut self, key: u16);
    /// Reads the next `buf.len()` bytes of the selected item (zeros past its end).
    fn read(&mut self, buf: &mut [u8]);
}

/// Normal-world DRAM the kernel is loaded into.
pub trait Ram {
    /// Writes `data` at physical `addr` (inside the range [`load_kernel`] checked).
    fn write(&mut self, addr: u64, data: &[u8]);
}

/// The selector and size of the file `name` (fw_cfg.rst, "File Directory": a big-endian
/// count, then 64-byte entries {size BE32, select BE16, reserved, name[56]}).
pub fn find_file(io: &mut dyn FwCfgIo, name: &[u8]) -> Option<(u16, u32)> {
    let mut n = [0u8; 4];
    io.select(sel::FILE_DIR);
    io.read(&mut n);
    let count = u32::from_be_bytes(n).min(MAX_FILES);
    for _ in 0..count {
        let mut e = [0u8; 64];
        io.read(&mut e);
        let fname = &e[8..];
        let len = fname.iter().position(|b| *b == 0).unwrap_or(fname.len());
        if &fname[..len] == name {
            let size = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            return Some((u16::from_be_bytes([e[4], e[5]]), size));
        }
    }
    None
}

/// One entry of the file directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Its name (UTF-8, up to 55 bytes).
    pub name: String,
    /// Its selector.
    pub key: u16,
    /// Its size in bytes.
    pub size: u32,
}

/// The files whose names start with `prefix`, in name order. Entries whose name is not
/// NUL-terminated UTF-8 are skipped; at most [`MAX_FILES`] entries are read.
pub fn files(io: &mut dyn FwCfgIo, prefix: &str) -> Vec<File> {
    let mut n = [0u8; 4];
    io.select(sel::FILE_DIR);
    io.read(&mut n);
    let count = u32::from_be_bytes(n).min(MAX_FILES);
    let mut out = Vec::new();
    for _ in 0..count {
        let mut e = [0u8; 64];
        io.read(&mut e);
        let fname = &e[8..];
        let Some(len) = fname.iter().position(|b| *b == 0) else {
            continue;
        };
        let Ok(name) = core::str::from_utf8(&fname[..len]) else {
            continue;
        };
        if name.starts_with(prefix) {
            out.push(File {
                name: String::from(name),
                key: u16::from_be_bytes([e[4], e[5]]),
                size: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A file's bytes; a file larger than `max` is an error, not truncated.
pub fn read_file(io: &mut dyn FwCfgIo, f: &File, max: u32) -> Result<Vec<u8>, String> {
    if f.size > max {
        return Err(format!(
            "fw_cfg {}: {} bytes, more than the {max} allowed",
            f.name, f.size
        ));
    }
    let mut v = vec![0u8; f.size as usize];
    io.select(f.key);
    io.read(&mut v);
    Ok(v)
}

/// The kernel base requested through [`KERNEL_BASE_FILE`], if any (hex with 0x, or decimal).
/// Text that is not a number is an error, not a silent fall-back to the default place.
pub fn requested_base(io: &mut dyn FwCfgIo) -> Result<Option<u64>, String> {
    number_file(io, KERNEL_BASE_FILE)
}

/// A test-only file: the variable store's flash loses power before this program or erase
/// step (`docs/uefi-variables.md`).
pub const VARSTORE_CUT_FILE: &[u8] = b"opt/catena/varstore-cut";

/// The number in the fw_cfg file `name`, if it exists (hex with 0x, or decimal; a string
/// file, so a trailing NUL or newline is allowed). Text that is not a number is an error.
pub fn number_file(io: &mut dyn FwCfgIo, name: &[u8]) -> Result<Option<u64>, String> {
    let Some((key, size)) = find_file(io, name) else {
        return Ok(None);
    };
    let shown = String::from_utf8_lossy(name);
    let mut buf = [0u8; 24];
    if size as usize > buf.len() {
        return Err(format!(
            "fw_cfg {shown}: {size} bytes, longer than any number"
        ));
    }
    let n = size as usize;
    io.select(key);
    io.read(&mut buf[..n]);
    match arm64_image::parse_address(&buf[..n]) {
        Some(a) => Ok(Some(a)),
        None => Err(format!(
            "fw_cfg {shown}: {:?} is not a number",
            String::from_utf8_lossy(&buf[..n])
        )),
    }
}

/// The largest initramfs accepted.
pub const INITRD_MAX: u32 = 256 << 20;

/// An initramfs loaded from fw_cfg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedInitrd {
    /// Where it was put (2 MiB aligned).
    pub base: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// Loads the `-initrd` file, if fw_cfg carries one, at the first 2 MiB boundary at or above
/// `lowest` (after the kernel), wholly below `ram_end`. `Ok(None)`: no initrd. Too large, or
/// not fitting: an error, and nothing is written.
pub fn load_initrd(
    io: &mut dyn FwCfgIo,
    ram: &mut dyn Ram,
    lowest: u64,
    ram_end: u64,
) -> Result<Option<LoadedInitrd>, String> {
    let size = read_u32(io, sel::INITRD_SIZE);
    if size == 0 {
        return Ok(None);
    }
    if size > INITRD_MAX {
        return Err(format!("-initrd: {size} bytes, more than {INITRD_MAX}"));
    }
    let base = lowest
        .checked_add((2 << 20) - 1)
        .map(|v| v & !((2 << 20) - 1))
        .ok_or("-initrd: no room")?;
    if base
        .checked_add(u64::from(size))
        .is_none_or(|e| e > ram_end)
    {
        return Err(format!(
            "-initrd: {size} bytes do not fit at {base:#x} below {ram_end:#x}"
        ));
    }
    io.select(sel::INITRD_DATA);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < u64::from(size) {
        let n = (u64::from(size) - off).min(chunk.len() as u64) as usize;
        io.read(&mut chunk[..n]);
        ram.write(base + off, &chunk[..n]);
        off += n as u64;
    }
    Ok(Some(LoadedInitrd {
        base,
        size: u64::from(size),
    }))
}

/// A raw normal-world boot loader (U-Boot's `u-boot.bin`) to run instead of the `-kernel`
/// Image: `-fw_cfg name=opt/catena/bl33,file=u-boot.bin`. The Image and `-append` stay in
/// fw_cfg for that loader (U-Boot's `qfw load`).
pub const BL33_FILE: &[u8] = b"opt/catena/bl33";
/// The largest BL33 accepted (Debian's qemu_arm64 U-Boot is under 1 MiB).
pub const BL33_MAX: u32 = 8 << 20;

/// A raw BL33 loaded from fw_cfg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedBl33 {
    /// Where it was put (its entry point: a raw binary starts at its first byte).
    pub entry: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// Loads [`BL33_FILE`], if fw_cfg carries it, at `at` (which must be 4 KiB aligned, with the
/// whole file inside `[at, ram_end)`). `Ok(None)`: no such file. An empty or oversized file,
/// or one that does not fit, is an error and nothing is written.
pub fn load_bl33(
    io: &mut dyn FwCfgIo,
    ram: &mut dyn Ram,
    at: u64,
    ram_end: u64,
) -> Result<Option<LoadedBl33>, String> {
    let Some((key, size)) = find_file(io, BL33_FILE) else {
        return Ok(None);
    };
    if size == 0 || size > BL33_MAX {
        return Err(format!(
            "fw_cfg opt/catena/bl33: {size} bytes (1..={BL33_MAX} accepted)"
        ));
    }
    if !at.is_multiple_of(4096) || at.checked_add(u64::from(size)).is_none_or(|e| e > ram_end) {
        return Err(format!(
            "fw_cfg opt/catena/bl33: {size} bytes do not fit at {at:#x} below {ram_end:#x}"
        ));
    }
    io.select(key);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    while off < u64::from(size) {
        let n = (u64::from(size) - off).min(chunk.len() as u64) as usize;
        io.read(&mut chunk[..n]);
        ram.write(at + off, &chunk[..n]);
        off += n as u64;
    }
    Ok(Some(LoadedBl33 {
        entry: at,
        size: u64::from(size),
    }))
}

/// The `-append` command line (at most [`CMDLINE_MAX`] bytes, without its NUL; bytes that are
/// not UTF-8 replaced).
pub fn cmdline(io: &mut dyn FwCfgIo) -> String {
    let len = read_u32(io, sel::CMDLINE_SIZE).min(CMDLINE_MAX);
    let mut cmd = vec![0u8; len as usize];
    io.select(sel::CMDLINE_DATA);
    io.read(&mut cmd);
    String::from_utf8_lossy(&cmd).trim_end_matches('\0').into()
}

fn read_u32(io: &mut dyn FwCfgIo, key: u16) -> u32 {
    let mut b = [0u8; 4];
    io.select(key);
    io.read(&mut b);
    u32::from_le_bytes(b)
}

/// A kernel loaded from fw_cfg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Where it was put (its entry point).
    pub entry: u64,
    /// File size.
    pub size: u64,
    /// What the Image occupies from `entry`, its .bss included (the header's `image_size`,
    /// never less than the file): where the next payload may start.
    pub image_size: u64,
    /// The `-append` string.
    pub cmdline: String,
}

/// Loads the `-kernel` Image, if fw_cfg carries one, into DRAM `[lowest, ram_end)` — at
/// `lowest` (the first byte after the DT slot) or where the kernel-base file asks, rounded as
/// the Image header says — and zeroes its .bss. `Ok(None)`: no `-kernel`.
pub fn load_kernel(
    io: &mut dyn FwCfgIo,
    ram: &mut dyn Ram,
    lowest: u64,
    ram_end: u64,
) -> Result<Option<Loaded>, String> {
    let mut sig = [0u8; 4];
    io.select(sel::SIGNATURE);
    io.read(&mut sig);
    if &sig != b"QEMU" {
        return Err(format!("fw_cfg signature {sig:02x?}, expected \"QEMU\""));
    }
    let size = u64::from(read_u32(io, sel::KERNEL_SIZE));
    if size == 0 {
        return Ok(None);
    }
    // Before selecting the kernel's data: any other selection restarts the stream.
    let from = match requested_base(io)? {
        Some(b) if b >= lowest => b,
        Some(b) => {
            return Err(format!(
                "kernel base {b:#x} overlaps the DT slot below {lowest:#x}"
            ));
        }
        None => lowest,
    };
    let mut head = [0u8; HEADER_LEN];
    io.select(sel::KERNEL_DATA);
    io.read(&mut head);
    let header = Header::parse(&head, size).map_err(|e| format!("-kernel image: {e}"))?;
    let entry = header
        .load_address(from, ram_end)
        .map_err(|e| format!("-kernel image of {size} bytes: {e}"))?;
    // `Header::parse` checked size <= image_size, `load_address` that the image fits.
    ram.write(entry, &head);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut off = HEADER_LEN as u64;
    while off < size {
        let n = (size - off).min(chunk.len() as u64) as usize;
        io.read(&mut chunk[..n]);
        ram.write(entry + off, &chunk[..n]);
        off += n as u64;
    }
    chunk.fill(0);
    let mut off = size;
    while off < header.image_size {
        let n = (header.image_size - off).min(chunk.len() as u64) as usize;
        ram.write(entry + off, &chunk[..n]);
        off += n as u64;
    }
    let cmdline = cmdline(io);
    Ok(Some(Loaded {
        entry,
        size,
        image_size: header.image_size,
        cmdline,
    }))
}

#[cfg(test)]
mod tests;
