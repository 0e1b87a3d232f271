//! The arm64 Linux `Image` header (Linux `Documentation/arch/arm64/booting.rst`, "Call the
//! kernel image"): validation and where a loader must put the image.
//!
//! Owns the checks a loader makes before jumping to an outside image; it reads bytes only.
#![no_std]
#![forbid(unsafe_code)]

/// Header size.
pub const HEADER_LEN: usize = 64;
/// "ARM\x64" at offset 0x38.
pub const MAGIC: [u8; 4] = *b"ARM\x64";
/// Images are placed on a 2 MiB boundary plus text_offset.
pub const ALIGN: u64 = 2 << 20;

/// A validated header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Offset from the 2 MiB-aligned base at which the image must be loaded.
    pub text_offset: u64,
    /// Bytes the image occupies once running (at least the file size).
    pub image_size: u64,
    /// Header flags (bit 0 big-endian, bits 1-2 page size, bit 3 placement anywhere).
    pub flags: u64,
}

/// Why an image was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the header.
    TooShort,
    /// No "ARM\x64" magic.
    BadMagic,
    /// A big-endian kernel (flags bit 0).
    BigEndian,
    /// text_offset not a multiple of 4 KiB, or ≥ 2 MiB.
    BadTextOffset,
    /// image_size smaller than the file.
    BadImageSize,
    /// No room for it in the given RAM.
    DoesNotFit,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ImageError::TooShort => "shorter than the 64-byte Image header",
            ImageError::BadMagic => "no arm64 Image magic",
            ImageError::BigEndian => "big-endian kernel",
            ImageError::BadTextOffset => "text_offset not 4 KiB aligned below 2 MiB",
            ImageError::BadImageSize => "image_size smaller than the file",
            ImageError::DoesNotFit => "does not fit in RAM after the reserved start",
        })
    }
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Header {
    /// Validates the first bytes of an image of `file_len` bytes.
    pub fn parse(head: &[u8], file_len: u64) -> Result<Header, ImageError> {
        if head.len() < HEADER_LEN || file_len < HEADER_LEN as u64 {
            return Err(ImageError::TooShort);
        }
        if head[0x38..0x3c] != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let h = Header {
            text_offset: le64(head, 0x08),
            image_size: le64(head, 0x10),
            flags: le64(head, 0x18),
        };
        if h.flags & 1 != 0 {
            return Err(ImageError::BigEndian);
        }
        if !h.text_offset.is_multiple_of(4096) || h.text_offset >= ALIGN {
            return Err(ImageError::BadTextOffset);
        }
        // image_size 0 means "unknown" (kernels before 3.17): use the file size.
        let image_size = if h.image_size == 0 {
            file_len
        } else {
            h.image_size
        };
        if image_size < file_len {
            return Err(ImageError::BadImageSize);
        }
        Ok(Header { image_size, ..h })
    }

    /// The load address: the first 2 MiB boundary at or above `from`, plus text_offset, if the
    /// image then ends at or before `ram_end`.
    pub fn load_address(&self, from: u64, ram_end: u64) -> Result<u64, ImageError> {
        let base = from
            .checked_next_multiple_of(ALIGN)
            .ok_or(ImageError::DoesNotFit)?;
        let start = base
            .checked_add(self.text_offset)
            .ok_or(ImageError::DoesNotFit)?;
        let end = start
            .checked_add(self.image_size)
            .ok_or(ImageError::DoesNotFit)?;
        if end > ram_end {
            return Err(ImageError::DoesNotFit);
        }
        Ok(start)
    }
}

/// A load address a user wrote as text (`0x48000000` or `1207959552`, with optional trailing
/// NULs or newline, as fw_cfg strings and files carry them). `None` for anything else.
pub fn parse_address(text: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(text)
        .ok()?
        .trim_end_matches(['\0', '\n'])
        .trim();
    match text.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()
        }
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        h[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(&MAGIC);
        h
    }

    #[test]
    fn catena_and_linux_style_headers() {
        let h = Header::parse(&header(0, 0x4_0000, 0xa), 0x3_0000).unwrap();
        assert_eq!(h.load_address(0x4010_0000, 0x8000_0000), Ok(0x4020_0000));
        // Old kernels: text_offset 0x80000, image_size 0 (use the file size).
        let h = Header::parse(&header(0x8_0000, 0, 0), 0x10_0000).unwrap();
        assert_eq!(h.image_size, 0x10_0000);
        assert_eq!(h.load_address(0x4000_0000, 0x8000_0000), Ok(0x4008_0000));
    }

    #[test]
    fn refusals() {
        assert_eq!(Header::parse(&[0; 10], 10), Err(ImageError::TooShort));
        let mut bad = header(0, 0x1000, 0);
        bad[0x38] = b'X';
        assert_eq!(Header::parse(&bad, 0x1000), Err(ImageError::BadMagic));
        assert_eq!(
            Header::parse(&header(0, 0x1000, 1), 0x1000),
            Err(ImageError::BigEndian)
        );
        assert_eq!(
            Header::parse(&header(0x100, 0x1000, 0), 0x1000),
            Err(ImageError::BadTextOffset)
        );
        assert_eq!(
            Header::parse(&header(2 << 20, 0x1000, 0), 0x1000),
            Err(ImageError::BadTextOffset)
        );
        assert_eq!(
            Header::parse(&header(0, 0x1000, 0), 0x2000),
            Err(ImageError::BadImageSize)
        );
        let h = Header::parse(&header(0, 0x100_0000, 0), 0x1000).unwrap();
        assert_eq!(
            h.load_address(0x4000_0000, 0x4080_0000),
            Err(ImageError::DoesNotFit)
        );
        assert_eq!(
            h.load_address(u64::MAX - 10, u64::MAX),
            Err(ImageError::DoesNotFit)
        );
    }

    #[test]
    fn addresses_from_text() {
        assert_eq!(parse_address(b"0x48000000"), Some(0x4800_0000));
        assert_eq!(parse_address(b"0x48000000\0"), Some(0x4800_0000));
        assert_eq!(parse_address(b"1207959552\n"), Some(0x4800_0000));
        for bad in [
            &b""[..],
            b"0x",
            b"0xzz",
            b"+12",
            b"0x+1",
            b"12abc",
            b"0x10000000000000000",
            b"\xff",
        ] {
            assert_eq!(parse_address(bad), None, "{bad:?}");
        }
    }
}
