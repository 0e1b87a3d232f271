//! The persistent secure flash of scenarios with `flash = true`: QEMU virt's flash0 as a
//! 64 MiB image file per state directory, holding the firmware at its start (rewritten each
//! run, so the newest build boots) and the variable store in its last MiB (kept).

use anyhow::{Context, Result, bail};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// flash0's size: QEMU requires the drive to match the device (64 MiB on virt).
pub const SIZE: u64 = 64 * 1024 * 1024;
/// Where the variable store starts (the firmware's `platform::VARSTORE`): the firmware must
/// end below it.
pub const VARSTORE: u64 = 0x03F0_0000;

/// Prepares `dir/flash0.img`: `fresh` deletes it first; a missing image is made erased (all
/// ones, as NOR leaves the factory); the firmware is written at offset 0 either way. A file
/// of the wrong size is refused rather than silently repaired.
pub fn prepare(dir: &Path, firmware: &Path, fresh: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let img = dir.join("flash0.img");
    if fresh && img.exists() {
        std::fs::remove_file(&img).with_context(|| format!("removing {}", img.display()))?;
    }
    if !img.exists() {
        let mut f = std::fs::File::create(&img)?;
        let block = vec![0xffu8; 1 << 20];
        for _ in 0..SIZE / block.len() as u64 {
            f.write_all(&block)?;
        }
    }
    let len = std::fs::metadata(&img)?.len();
    if len != SIZE {
        bail!(
            "{} is {len} bytes, not flash0's {SIZE}: remove it or run with --fresh-state",
            img.display()
        );
    }
    let fw = std::fs::read(firmware).with_context(|| format!("reading {}", firmware.display()))?;
    if fw.len() as u64 > VARSTORE {
        bail!(
            "the firmware ({} bytes) would overlap the variable store",
            fw.len()
        );
    }
    let mut f = std::fs::OpenOptions::new().write(true).open(&img)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&fw)?;
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_made_kept_and_started_over() {
        let dir = std::env::temp_dir().join(format!("catena-flash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fw = dir.join("fw.bin");
        std::fs::write(&fw, b"firmware").unwrap();
        let img = prepare(&dir.join("s"), &fw, false).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes.len() as u64, SIZE);
        assert_eq!(&bytes[..8], b"firmware");
        assert!(bytes[8..].iter().all(|&b| b == 0xff));
        // The store region survives the next run; the firmware is rewritten.
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.seek(SeekFrom::Start(VARSTORE)).unwrap();
        f.write_all(b"vars").unwrap();
        drop(f);
        std::fs::write(&fw, b"newer fw").unwrap();
        prepare(&dir.join("s"), &fw, false).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(&bytes[..8], b"newer fw");
        assert_eq!(&bytes[VARSTORE as usize..VARSTORE as usize + 4], b"vars");
        // Fresh: erased again.
        prepare(&dir.join("s"), &fw, true).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes[VARSTORE as usize], 0xff);
        // A file of another size is refused.
        std::fs::write(&img, b"short").unwrap();
        assert!(prepare(&dir.join("s"), &fw, false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
