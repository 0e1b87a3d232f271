//! QEMU's fw_cfg (docs/specs/fw_cfg.rst): the kernel and command line given with `-kernel`
//! and `-append`. MMIO interface: data at +0 (string-preserving, up to 8 bytes per read),
//! selector at +8 (16-bit big-endian).

use alloc::string::String;
use alloc::vec;
use arm64_image::{HEADER_LEN, Header};
use dtinfo::Platform;

const SEL_SIGNATURE: u16 = 0x00;
const SEL_KERNEL_SIZE: u16 = 0x08;
const SEL_KERNEL_DATA: u16 = 0x11;
const SEL_CMDLINE_SIZE: u16 = 0x14;
const SEL_CMDLINE_DATA: u16 = 0x15;
const SEL_FILE_DIR: u16 = 0x19;
/// A fw_cfg file (`-fw_cfg name=opt/catena/kernel-base,string=0x48000000`) that moves the
/// kernel to a higher 2 MiB boundary, to prove the Image runs wherever it is put.
const KERNEL_BASE_FILE: &[u8] = b"opt/catena/kernel-base";
/// The longest command line accepted.
const CMDLINE_MAX: u32 = 4096;

/// QEMU's fw_cfg MMIO interface (docs/specs/fw_cfg.rst: data at +0, selector at +8).
struct FwCfg {
    base: usize,
}

impl FwCfg {
    /// # Safety
    /// `base` must be the fw_cfg MMIO block (at least 16 bytes: data and selector), reachable
    /// with the EL3 MMU off (Device-nGnRnE), and used by nothing else while this value lives:
    /// selecting an item and reading it are one sequence of register accesses.
    unsafe fn new(base: usize) -> FwCfg {
        FwCfg { base }
    }

    fn select(&self, key: u16) {
        // SAFETY: the selector register of the fw_cfg block `new`'s caller vouched for.
        unsafe { core::ptr::write_volatile((self.base + 8) as *mut u16, key.to_be()) };
    }

    /// Reads the next `buf.len()` bytes of the selected item.
    fn read(&self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: the fw_cfg data register; an 8-byte read returns the next 8 bytes of the
            // item in order.
            let v = unsafe { core::ptr::read_volatile(self.base as *const u64) };
            c.copy_from_slice(&v.to_ne_bytes());
        }
        for b in chunks.into_remainder() {
            // SAFETY: as above, one byte.
            *b = unsafe { core::ptr::read_volatile(self.base as *const u8) };
        }
    }

    /// The selector of the fw_cfg file `name` (docs/specs/fw_cfg.rst, "File Directory"):
    /// a big-endian count, then 64-byte entries {size BE32, select BE16, reserved, name[56]}.
    fn find_file(&self, name: &[u8]) -> Option<(u16, u32)> {
        let mut n = [0u8; 4];
        self.select(SEL_FILE_DIR);
        self.read(&mut n);
        let count = u32::from_be_bytes(n).min(256);
        for _ in 0..count {
            let mut e = [0u8; 64];
            self.read(&mut e);
            let fname = &e[8..];
            let len = fname.iter().position(|b| *b == 0).unwrap_or(fname.len());
            if &fname[..len] == name {
                let size = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                return Some((u16::from_be_bytes([e[4], e[5]]), size));
            }
        }
        None
    }

    /// The kernel base requested through [`KERNEL_BASE_FILE`], if any (hex with 0x, or
    /// decimal). Text that is not a number is an error, not a silent fall-back to the default
    /// place.
    fn requested_base(&self) -> Result<Option<u64>, String> {
        let Some((sel, size)) = self.find_file(KERNEL_BASE_FILE) else {
            return Ok(None);
        };
        let mut buf = [0u8; 24];
        if size as usize > buf.len() {
            return Err(alloc::format!(
                "fw_cfg opt/catena/kernel-base: {size} bytes, longer than any address"
            ));
        }
        let n = size as usize;
        self.select(sel);
        self.read(&mut buf[..n]);
        match arm64_image::parse_address(&buf[..n]) {
            Some(a) => Ok(Some(a)),
            None => Err(alloc::format!(
                "fw_cfg opt/catena/kernel-base: {:?} is not an address",
                String::from_utf8_lossy(&buf[..n])
            )),
        }
    }

    fn read_u32(&self, key: u16) -> u32 {
        let mut b = [0u8; 4];
        self.select(key);
        self.read(&mut b);
        u32::from_le_bytes(b)
    }
}

/// A kernel loaded from fw_cfg.
pub struct Loaded {
    /// Where it was put (its entry point).
    pub entry: u64,
    /// File size.
    pub size: u64,
    /// The `-append` string.
    pub cmdline: String,
}

/// Loads the `-kernel` Image, if fw_cfg carries one, after the DTB slot in the first DRAM
/// range, honouring its header.
pub fn load_kernel(p: &Platform) -> Result<Option<Loaded>, String> {
    let Some(dev) = p.compatible("qemu,fw-cfg-mmio") else {
        return Ok(None);
    };
    let base = dev
        .regions
        .first()
        .map(|r| r.base as usize)
        .ok_or("fw_cfg without reg")?;
    // SAFETY: the DT's `qemu,fw-cfg-mmio` region (QEMU places it in the normal-world device
    // space, reachable from EL3 with the MMU off); only this boot CPU uses it, before any
    // other CPU is released.
    let fw = unsafe { FwCfg::new(base) };
    let mut sig = [0u8; 4];
    fw.select(SEL_SIGNATURE);
    fw.read(&mut sig);
    if &sig != b"QEMU" {
        return Err(alloc::format!(
            "fw_cfg signature {sig:02x?}, expected \"QEMU\""
        ));
    }
    let size = u64::from(fw.read_u32(SEL_KERNEL_SIZE));
    if size == 0 {
        return Ok(None);
    }
    let ram = p
        .memory
        .iter()
        .find(|r| r.base <= crate::platform::DTB_ADDR && crate::platform::DTB_ADDR < r.end())
        .ok_or("no DRAM range holds the DTB")?;
    // Before selecting the kernel's data: any other selection restarts the stream.
    let lowest = crate::platform::DTB_ADDR + crate::platform::DTB_SLOT as u64;
    let from = match fw.requested_base()? {
        Some(b) if b >= lowest => b,
        Some(b) => {
            return Err(alloc::format!(
                "kernel base {b:#x} overlaps the DT slot below {lowest:#x}"
            ));
        }
        None => lowest,
    };
    let mut head = [0u8; HEADER_LEN];
    fw.select(SEL_KERNEL_DATA);
    fw.read(&mut head);
    let header = Header::parse(&head, size).map_err(|e| alloc::format!("-kernel image: {e}"))?;
    let entry = header
        .load_address(from, ram.end())
        .map_err(|e| alloc::format!("-kernel image of {size} bytes: {e}"))?;
    // SAFETY: [entry, entry + image_size) was checked to lie in DRAM after the DTB slot; the
    // normal world is not running, so the firmware is its only user.
    let dest =
        unsafe { core::slice::from_raw_parts_mut(entry as *mut u8, header.image_size as usize) };
    dest[..HEADER_LEN].copy_from_slice(&head);
    fw.read(&mut dest[HEADER_LEN..size as usize]);
    dest[size as usize..].fill(0);

    let len = fw.read_u32(SEL_CMDLINE_SIZE).min(CMDLINE_MAX);
    let mut cmd = vec![0u8; len as usize];
    fw.select(SEL_CMDLINE_DATA);
    fw.read(&mut cmd);
    let cmdline = String::from_utf8_lossy(&cmd).trim_end_matches('\0').into();
    Ok(Some(Loaded {
        entry,
        size,
        cmdline,
    }))
}

/// A payload preloaded at `addr` (U-Boot via `-device loader`): its address if the first
/// word is not empty.
pub fn preloaded(addr: u64) -> Option<u64> {
    // SAFETY: `addr` is in QEMU virt's DRAM (a platform constant); reading 8 bytes is harmless.
    let first = unsafe { core::ptr::read_volatile(addr as *const u64) };
    (first != 0 && first != u64::MAX).then_some(addr)
}
