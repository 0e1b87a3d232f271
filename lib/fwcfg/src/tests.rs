extern crate std;

use super::*;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// fw_cfg as QEMU presents it: items by selector, read in order after a select.
#[derive(Default)]
struct Fake {
    items: BTreeMap<u16, Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl FwCfgIo for Fake {
    fn select(&mut self, key: u16) {
        self.cur = self.items.get(&key).cloned().unwrap_or_default();
        self.pos = 0;
    }
    fn read(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.cur.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }
}

const RAM_BASE: u64 = 0x4000_0000;
const RAM_END: u64 = 0x4000_0000 + 0x4000_0000;
const LOWEST: u64 = RAM_BASE + 0x20_0000;

/// 1 GiB of RAM, stored by page as written (unwritten bytes read 0xee).
struct FakeRam(BTreeMap<u64, Vec<u8>>);

impl FakeRam {
    fn byte(&self, addr: u64) -> u8 {
        self.0
            .get(&(addr & !0xfff))
            .map_or(0xee, |p| p[(addr & 0xfff) as usize])
    }
    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| self.byte(addr + i)).collect()
    }
}

impl Ram for FakeRam {
    fn write(&mut self, addr: u64, data: &[u8]) {
        assert!(
            addr >= RAM_BASE && addr + data.len() as u64 <= RAM_END,
            "outside RAM"
        );
        for (i, b) in data.iter().enumerate() {
            let a = addr + i as u64;
            self.0
                .entry(a & !0xfff)
                .or_insert_with(|| alloc::vec![0xee; 4096])[(a & 0xfff) as usize] = *b;
        }
    }
}

/// An Image: text_offset 0, image_size = file + bss, "place anywhere", 4 KiB pages.
fn image(file: usize, bss: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..file).map(|i| (i % 251) as u8 + 1).collect();
    v[0x08..0x10].copy_from_slice(&0u64.to_le_bytes());
    v[0x10..0x18].copy_from_slice(&((file + bss) as u64).to_le_bytes());
    v[0x18..0x20].copy_from_slice(&(0b1010u64).to_le_bytes());
    v[0x38..0x3c].copy_from_slice(b"ARM\x64");
    v
}

fn qemu(kernel: &[u8], cmdline: &str, files: &[(&str, &[u8])]) -> Fake {
    let mut f = Fake::default();
    f.items.insert(sel::SIGNATURE, b"QEMU".to_vec());
    f.items.insert(
        sel::KERNEL_SIZE,
        (kernel.len() as u32).to_le_bytes().to_vec(),
    );
    f.items.insert(sel::KERNEL_DATA, kernel.to_vec());
    let mut c = cmdline.as_bytes().to_vec();
    c.push(0);
    f.items
        .insert(sel::CMDLINE_SIZE, (c.len() as u32).to_le_bytes().to_vec());
    f.items.insert(sel::CMDLINE_DATA, c);
    let mut dir = (files.len() as u32).to_be_bytes().to_vec();
    for (i, (name, data)) in files.iter().enumerate() {
        let key = 0x20 + i as u16;
        let mut e = [0u8; 64];
        e[..4].copy_from_slice(&(data.len() as u32).to_be_bytes());
        e[4..6].copy_from_slice(&key.to_be_bytes());
        e[8..8 + name.len()].copy_from_slice(name.as_bytes());
        dir.extend_from_slice(&e);
        f.items.insert(key, data.to_vec());
    }
    f.items.insert(sel::FILE_DIR, dir);
    f
}

fn ram() -> FakeRam {
    FakeRam(BTreeMap::new())
}

#[test]
fn the_kernel_lands_after_the_dt_slot_with_its_bss_zeroed() {
    let k = image(0x3000, 0x2000);
    let mut io = qemu(&k, "loglevel=info", &[]);
    let mut m = ram();
    let l = load_kernel(&mut io, &mut m, LOWEST, RAM_END)
        .unwrap()
        .unwrap();
    assert_eq!(l.entry, LOWEST);
    assert_eq!(l.size, 0x3000);
    assert_eq!(l.image_size, 0x5000, "the next payload goes after the .bss");
    assert_eq!(l.cmdline, "loglevel=info");
    assert_eq!(m.bytes(LOWEST, 0x3000), k);
    assert!(
        m.bytes(LOWEST + 0x3000, 0x2000).iter().all(|b| *b == 0),
        "bss zeroed"
    );
    assert_eq!(
        m.byte(LOWEST + 0x5000),
        0xee,
        "nothing past image_size touched"
    );
}

#[test]
fn the_kernel_base_file_moves_it_and_bad_bases_are_refused() {
    let k = image(0x1000, 0);
    let mut io = qemu(
        &k,
        "",
        &[
            ("etc/other", b"x"),
            ("opt/catena/kernel-base", b"0x48000000"),
        ],
    );
    let mut m = ram();
    let l = load_kernel(&mut io, &mut m, LOWEST, RAM_END)
        .unwrap()
        .unwrap();
    assert_eq!(l.entry, 0x4800_0000);
    // Not on a 2 MiB boundary: rounded up, as the header's "place anywhere" allows.
    let mut io = qemu(&k, "", &[("opt/catena/kernel-base", b"0x48000001")]);
    assert_eq!(
        load_kernel(&mut io, &mut m, LOWEST, RAM_END)
            .unwrap()
            .unwrap()
            .entry,
        0x4820_0000
    );
    for (text, why) in [
        (&b"0x4800zz00"[..], "is not a number"),
        (b"0x40000000", "overlaps the DT slot"),
        (b"0x7ff00000", "does not fit"),
        (b"0x1000000000", "does not fit"),
        (b"0x1234567890123456789012345", "longer than any number"),
    ] {
        let mut io = qemu(&k, "", &[("opt/catena/kernel-base", text)]);
        let e = load_kernel(&mut io, &mut m, LOWEST, RAM_END).unwrap_err();
        assert!(e.contains(why), "{text:?}: {e}");
    }
}

#[test]
fn no_kernel_no_device_and_bad_images_are_told_apart() {
    let mut io = qemu(&[], "", &[]);
    io.items
        .insert(sel::KERNEL_SIZE, 0u32.to_le_bytes().to_vec());
    assert_eq!(load_kernel(&mut io, &mut ram(), LOWEST, RAM_END), Ok(None));
    let mut io = qemu(&image(0x1000, 0), "", &[]);
    io.items.insert(sel::SIGNATURE, b"NOPE".to_vec());
    assert!(
        load_kernel(&mut io, &mut ram(), LOWEST, RAM_END)
            .unwrap_err()
            .contains("signature")
    );
    let mut bad = image(0x1000, 0);
    bad[0x38] = 0;
    let mut io = qemu(&bad, "", &[]);
    assert!(
        load_kernel(&mut io, &mut ram(), LOWEST, RAM_END)
            .unwrap_err()
            .contains("-kernel image")
    );
    // An image too big for RAM after the slot.
    let mut io = qemu(&image(0x1000, 0x4000_0000), "", &[]);
    assert!(load_kernel(&mut io, &mut ram(), LOWEST, RAM_END).is_err());
}

#[test]
fn a_directory_that_lies_about_its_size_is_bounded() {
    let mut io = qemu(&image(0x1000, 0), "", &[]);
    io.items
        .insert(sel::FILE_DIR, u32::MAX.to_be_bytes().to_vec());
    assert_eq!(find_file(&mut io, KERNEL_BASE_FILE), None);
    // A command line longer than the limit is cut at it.
    let long = "x".repeat(10_000);
    let mut io = qemu(&image(0x1000, 0), &long, &[]);
    let l = load_kernel(&mut io, &mut ram(), LOWEST, RAM_END)
        .unwrap()
        .unwrap();
    assert_eq!(l.cmdline.len(), CMDLINE_MAX as usize);
}

#[test]
fn files_are_listed_by_prefix_in_order_and_read_within_a_bound() {
    let mut io = qemu(
        &[],
        "",
        &[
            ("opt/catena/enroll/2-KEK", b"kek"),
            ("etc/other", b"x"),
            ("opt/catena/enroll/1-PK", b"pk"),
        ],
    );
    let f = files(&mut io, "opt/catena/enroll/");
    let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["opt/catena/enroll/1-PK", "opt/catena/enroll/2-KEK"]);
    assert_eq!(read_file(&mut io, &f[1], 16).unwrap(), b"kek");
    assert!(
        read_file(&mut io, &f[1], 2)
            .unwrap_err()
            .contains("more than")
    );
}

#[test]
fn a_bl33_is_loaded_raw_where_asked_and_bad_ones_write_nothing() {
    let uboot: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let at = RAM_BASE + 0x2000_0000;
    let mut io = qemu(&image(0x1000, 0), "", &[("opt/catena/bl33", &uboot)]);
    let mut m = ram();
    let l = load_bl33(&mut io, &mut m, at, RAM_END).unwrap().unwrap();
    assert_eq!(
        l,
        LoadedBl33 {
            entry: at,
            size: uboot.len() as u64
        }
    );
    assert_eq!(m.bytes(at, uboot.len()), uboot);
    // No file: nothing to do.
    let mut io = qemu(&image(0x1000, 0), "", &[]);
    assert_eq!(load_bl33(&mut io, &mut m, at, RAM_END), Ok(None));
    // Refused, and RAM untouched: misaligned, past the end of RAM, empty, too large.
    let big = alloc::vec![1u8; BL33_MAX as usize + 1];
    for (data, at) in [
        (&uboot[..], at + 8),
        (&uboot[..], RAM_END - 4096),
        (&[][..], at),
        (&big[..], at),
    ] {
        let mut io = qemu(&image(0x1000, 0), "", &[("opt/catena/bl33", data)]);
        let mut m = ram();
        assert!(load_bl33(&mut io, &mut m, at, RAM_END).is_err());
        assert!(m.0.is_empty(), "nothing written for a refused BL33");
    }
}

#[test]
fn an_initrd_lands_on_the_next_2_mib_boundary_and_bad_ones_write_nothing() {
    let rd: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
    let mut io = qemu(&image(0x1000, 0), "", &[]);
    io.items
        .insert(sel::INITRD_SIZE, (rd.len() as u32).to_le_bytes().to_vec());
    io.items.insert(sel::INITRD_DATA, rd.clone());
    let mut m = ram();
    let after_kernel = LOWEST + 0x12_3456;
    let l = load_initrd(&mut io, &mut m, after_kernel, RAM_END)
        .unwrap()
        .unwrap();
    assert_eq!(l.base, (after_kernel + 0x1f_ffff) & !0x1f_ffff);
    assert_eq!(m.bytes(l.base, rd.len()), rd);
    // None given; too large; not fitting below the end of RAM.
    let mut none = qemu(&image(0x1000, 0), "", &[]);
    assert_eq!(load_initrd(&mut none, &mut m, LOWEST, RAM_END), Ok(None));
    let mut huge = qemu(&image(0x1000, 0), "", &[]);
    huge.items
        .insert(sel::INITRD_SIZE, (INITRD_MAX + 1).to_le_bytes().to_vec());
    let mut fresh = ram();
    assert!(load_initrd(&mut huge, &mut fresh, LOWEST, RAM_END).is_err());
    assert!(load_initrd(&mut io, &mut fresh, RAM_END - 4096, RAM_END).is_err());
    assert!(fresh.0.is_empty(), "nothing written for a refused initrd");
}
