//! The initramfs archive: SVR4 "newc" cpio (Linux `Documentation/driver-api/early-userspace/
//! buffer-format.rst`, `usr/gen_init_cpio.c` writes it): per entry a 110-byte ASCII header —
//! the magic `070701` and thirteen 8-digit hex fields (ino, mode, uid, gid, nlink, mtime,
//! filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check) — then the name
//! (namesize bytes with its NUL) padded to 4 bytes from the header's start, then the data
//! padded to 4; the entry named `TRAILER!!!` ends the archive.
//!
//! Owns: reading an archive from outside (the boot loader put it in RAM) without trusting a
//! byte of it — every field hex, every size inside the archive, names NUL-terminated UTF-8
//! without `..` components, a trailer required; and writing one (`cargo xtask`).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

/// The newc magic.
pub const MAGIC: &[u8; 6] = b"070701";
/// The header's size.
pub const HEADER: usize = 110;
/// The last entry's name.
pub const TRAILER: &str = "TRAILER!!!";
/// File type bits of `mode` (S_IFMT) and the two types an initramfs of ours holds.
pub const S_IFMT: u32 = 0o170000;
/// A regular file.
pub const S_IFREG: u32 = 0o100000;
/// A directory.
pub const S_IFDIR: u32 = 0o040000;
/// Most entries read.
pub const MAX_ENTRIES: usize = 1024;

/// Why an archive is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its path, without a leading `/`.
    pub name: &'a str,
    /// Type and permission bits.
    pub mode: u32,
    /// Its contents (empty for a directory).
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
}

fn hex8(b: &[u8]) -> Result<u32, Malformed> {
    let s = core::str::from_utf8(b).map_err(|_| Malformed("a header field is not text"))?;
    if s.len() != 8 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Malformed("a header field is not 8 hex digits"));
    }
    u32::from_str_radix(s, 16).map_err(|_| Malformed("a header field is not 8 hex digits"))
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads every entry up to the trailer.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        if out.len() > MAX_ENTRIES {
            return Err(Malformed("more entries than allowed"));
        }
        let h = archive
            .get(off..off + HEADER)
            .ok_or(Malformed("truncated header (no trailer)"))?;
        if &h[..6] != MAGIC {
            return Err(Malformed("not a newc header (magic 070701)"));
        }
        let field = |i: usize| hex8(&h[6 + 8 * i..14 + 8 * i]);
        // Every field hex, even those nobody reads (ino, uid, ..., check).
        for i in 0..13 {
            field(i)?;
        }
        let mode = field(1)?;
        let filesize = field(6)? as usize;
        let namesize = field(11)? as usize;
        if !(2..=4096).contains(&namesize) {
            return Err(Malformed("name size out of range"));
        }
        let name_start = off + HEADER;
        let name_bytes = archive
            .get(name_start..name_start + namesize)
            .ok_or(Malformed("truncated name"))?;
        let (last, name) = name_bytes.split_last().ok_or(Malformed("empty name"))?;
        if *last != 0 || name.contains(&0) {
            return Err(Malformed("name is not NUL-terminated"));
        }
        let name = core::str::from_utf8(name).map_err(|_| Malformed("name is not UTF-8"))?;
        let data_start = off + pad4(HEADER + namesize);
        let data = archive
            .get(
                data_start
                    ..data_start
                        .checked_add(filesize)
                        .ok_or(Malformed("size overflows"))?,
            )
            .ok_or(Malformed("data beyond the archive"))?;
        if name == TRAILER {
            return Ok(out);
        }
        let name = name.trim_start_matches("./").trim_start_matches('/');
        if name.split('/').any(|c| c == "..") {
            return Err(Malformed("a name with .."));
        }
        let kind = mode & S_IFMT;
        if kind != S_IFREG && kind != S_IFDIR {
            return Err(Malformed("an entry that is neither a file nor a directory"));
        }
        if kind == S_IFDIR && filesize != 0 {
            return Err(Malformed("a directory with data"));
        }
        out.push(Entry { name, mode, data });
        off = data_start + pad4(filesize);
    }
}

/// Writes an archive of `files` (path, mode, contents) and its trailer.
pub fn write(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: usize, name: &str, mode: u32, data: &[u8]| {
        let mut h = String::from("070701");
        let fields = [
            ino as u32,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            (name.len() + 1) as u32,
            0,
        ];
        for f in fields {
            h.push_str(&alloc::format!("{f:08x}"));
        }
        let start = out.len();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while (out.len() - start) % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, mode, data)) in files.iter().enumerate() {
        entry(i + 1, name, *mode, data);
    }
    entry(0, TRAILER, 0, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use alloc::vec;

    #[test]
    fn what_is_written_reads_back() {
        let a = write(&[
            ("bin", S_IFDIR | 0o755, &[]),
            ("bin/init", S_IFREG | 0o755, b"\x7fELF..."),
            ("etc/motd", S_IFREG | 0o644, b"catena\n"),
        ]);
        assert_eq!(a.len() % 4, 0);
        let e = parse(&a).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].name, "bin/init");
        assert!(e[1].is_file() && !e[0].is_file());
        assert_eq!(e[2].data, b"catena\n");
    }

    #[test]
    fn linux_s_gen_init_cpio_layout_is_read() {
        // One file "a" with "hi" (name size 2 -> header+name 112, padded to 112; data 2 -> 4).
        let mut a = std::vec::Vec::new();
        a.extend_from_slice(b"070701");
        for f in [1u32, 0o100644, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2, 0] {
            a.extend_from_slice(std::format!("{f:08X}").as_bytes());
        }
        a.extend_from_slice(b"a\0");
        a.extend_from_slice(b"hi\0\0");
        a.extend_from_slice(&write(&[])); // the trailer
        let e = parse(&a).unwrap();
        assert_eq!((e[0].name, e[0].data), ("a", &b"hi"[..]));
    }

    #[test]
    fn every_damage_is_refused() {
        let good = write(&[("init", S_IFREG | 0o755, b"0123456789")]);
        // Every truncation (no trailer), every corrupted header byte.
        for cut in 0..good.len() - 1 {
            assert!(parse(&good[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..HEADER {
            let mut b = good.clone();
            b[i] = b'z';
            assert!(parse(&b).is_err(), "byte {i}");
        }
        let bad_name = write(&[("../etc/passwd", S_IFREG, b"x")]);
        assert_eq!(parse(&bad_name), Err(Malformed("a name with ..")));
        let dev = write(&[("dev/tty", 0o020666, &[])]);
        assert!(parse(&dev).is_err());
        let dir_data = write(&[("d", S_IFDIR, b"x")]);
        assert!(parse(&dir_data).is_err());
        // A file size that points past the archive.
        let mut big = good.clone();
        big[6 + 8 * 6..6 + 8 * 7].copy_from_slice(b"7fffffff");
        assert!(parse(&big).is_err());
        let many: vec::Vec<(std::string::String, u32, &[u8])> = (0..MAX_ENTRIES + 2)
            .map(|i| (std::format!("f{i}"), S_IFREG, &b""[..]))
            .collect();
        let refs: vec::Vec<(&str, u32, &[u8])> =
            many.iter().map(|(n, m, d)| (n.as_str(), *m, *d)).collect();
        assert!(parse(&write(&refs)).is_err());
    }
}
