//! Booting through U-Boot: the files a U-Boot path needs, made or fetched here.
//!
//! - QEMU virt: our firmware loads Debian's `u-boot-qemu` build as BL33 from fw_cfg
//!   (`opt/catena/bl33`); U-Boot's environment comes from an image in flash1 (`mkenvimage`),
//!   whose `bootcmd` loads the Image over fw_cfg (`qfw load`) and `booti`s it, or loads a FIT
//!   (`mkimage`) and `bootm`s it.
//! - Raspberry Pi 3 Model B (QEMU `raspi3b`): Debian's `u-boot-rpi` rpi_3 build and the board DT
//!   from Debian's arm64 Linux image package, both arm64-only packages fetched with `apt-get
//!   download` and a private apt configuration (never installed); an SD card image with an MBR,
//!   one FAT32 partition holding the Image and `uboot.env` (U-Boot's FAT environment).
//!
//! docs/boards.md tells the same story for a person with a board.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Raspberry Pi files taken from Debian's arm64 packages.
#[derive(Clone, Debug)]
pub struct RpiFiles {
    /// `usr/lib/u-boot/rpi_3/u-boot.bin` of `u-boot-rpi`.
    pub uboot: PathBuf,
    /// `broadcom/bcm2837-rpi-3-b.dtb` of `linux-image-*-arm64`.
    pub dtb: PathBuf,
}

/// Where the fetched files are kept (`target/`, so `cargo clean` forgets them).
fn arm64_dir(root: &Path) -> PathBuf {
    root.join("target/catena/host/arm64")
}

/// The Raspberry Pi files if they were fetched before.
pub fn rpi_files_present(root: &Path) -> Option<RpiFiles> {
    let dir = arm64_dir(root).join("files");
    let f = RpiFiles {
        uboot: dir.join("rpi_3-u-boot.bin"),
        dtb: dir.join("bcm2837-rpi-3-b.dtb"),
    };
    (f.uboot.is_file() && f.dtb.is_file()).then_some(f)
}

/// The Raspberry Pi files, fetched from Debian's arm64 archive the first time.
pub fn rpi_files(root: &Path) -> Result<RpiFiles> {
    if let Some(f) = rpi_files_present(root) {
        return Ok(f);
    }
    fetch_rpi_files(root)?;
    rpi_files_present(root).context("the fetched packages lacked the expected files")
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The versioned package `linux-image-arm64` depends on, from `apt-cache depends` output.
pub fn linux_image_package(depends: &str) -> Option<String> {
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-arm64"))
        .map(String::from)
}

/// A private apt for Debian's arm64 packages: every apt state file under `dir` (nothing
/// installed, the host's apt state untouched), the host's Debian sources or the ones given.
pub(crate) struct Arm64Apt {
    conf: PathBuf,
    debs: PathBuf,
}

impl Arm64Apt {
    /// `sources`: a sources.list text (else the host's); `release`: apt's default release
    /// (the suite whose versions win, e.g. a backports suite).
    pub fn new(dir: &Path, sources: Option<&str>, release: Option<&str>) -> Result<Arm64Apt> {
        let apt_dir = dir.join("apt");
        for d in ["lists/partial", "cache/archives/partial", "debs"] {
            std::fs::create_dir_all(apt_dir.join(d))?;
        }
        let status = apt_dir.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let a = apt_dir.display();
        let mut conf = format!(
            "APT::Architecture \"arm64\";\nAPT::Architectures {{ \"arm64\"; }};\n\
             Dir::State \"{a}\";\nDir::State::Lists \"{a}/lists\";\n\
             Dir::State::status \"{a}/status\";\nDir::Cache \"{a}/cache\";\n\
             APT::Sandbox::User \"root\";\n"
        );
        if let Some(text) = sources {
            let list = apt_dir.join("sources.list");
            std::fs::write(&list, text)?;
            conf.push_str(&format!(
                "Dir::Etc::SourceList \"{}\";\nDir::Etc::SourceParts \"{a}/no-parts\";\n",
                list.display()
            ));
        }
        if let Some(r) = release {
            conf.push_str(&format!("APT::Default-Release \"{r}\";\n"));
        }
        let path = apt_dir.join("apt.conf");
        std::fs::write(&path, conf)?;
        Ok(Arm64Apt {
            conf: path,
            debs: apt_dir.join("debs"),
        })
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("APT_CONFIG", &self.conf)
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    }

    /// `apt-get update`.
    pub fn update(&self) -> Result<()> {
        run(self
            .cmd("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null()))
    }

    /// `apt-cache depends PACKAGE`.
    pub fn depends(&self, package: &str) -> Result<String> {
        output(self.cmd("apt-cache").args(["depends", package]))
    }

    /// `apt-get download` of `packages` into an emptied folder.
    pub fn download(&self, packages: &[&str]) -> Result<()> {
        for e in std::fs::read_dir(&self.debs)?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        run(self
            .cmd("apt-get")
            .args(["download", "-q"])
            .args(packages)
            .current_dir(&self.debs)
            .stdout(Stdio::null()))
    }

    /// The downloaded .deb whose name starts with `prefix`.
    pub fn deb(&self, prefix: &str) -> Result<PathBuf> {
        std::fs::read_dir(&self.debs)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".deb"))
            })
            .with_context(|| format!("apt-get download left no {prefix}*.deb"))
    }

    /// Removes the downloaded .debs (their files are taken out).
    pub fn clean(&self) {
        if let Ok(d) = std::fs::read_dir(&self.debs) {
            for e in d.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Debian's u-boot-rpi and the Raspberry Pi 3 DT out of the host suite's arm64 packages.
fn fetch_rpi_files(root: &Path) -> Result<()> {
    let dir = arm64_dir(root);
    let apt = Arm64Apt::new(&dir, None, None)?;
    eprintln!(
        "xtask: fetching Debian's arm64 u-boot-rpi and the Raspberry Pi 3 DT (not installed)"
    );
    apt.update()?;
    let deps = apt.depends("linux-image-arm64")?;
    let linux = linux_image_package(&deps)
        .with_context(|| format!("no linux-image-*-arm64 in `apt-cache depends`: {deps}"))?;
    apt.download(&["u-boot-rpi", &linux])?;
    let find = |prefix: &str| apt.deb(prefix);
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let version = linux.trim_start_matches("linux-image-");
    for (deb, inner, out) in [
        (
            find("u-boot-rpi_")?,
            "./usr/lib/u-boot/rpi_3/u-boot.bin".to_string(),
            "rpi_3-u-boot.bin",
        ),
        (
            find(&format!("{linux}_"))?,
            format!("./usr/lib/linux-image-{version}/broadcom/bcm2837-rpi-3-b.dtb"),
            "bcm2837-rpi-3-b.dtb",
        ),
    ] {
        let bytes = extract(&deb, &inner)?;
        std::fs::write(files.join(out), bytes)?;
    }
    Ok(())
}

/// One file out of a .deb: `dpkg-deb --fsys-tarfile DEB | tar -xO FILE`.
pub(crate) fn extract(deb: &Path, inner: &str) -> Result<Vec<u8>> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dpkg-deb")?;
    let tar_in = dpkg.stdout.take().context("dpkg-deb's stdout")?;
    let out = Command::new("tar")
        .args(["-xO", inner])
        .stdin(tar_in)
        .output()
        .context("starting tar")?;
    let _ = dpkg.wait();
    if !out.status.success() || out.stdout.is_empty() {
        bail!("{} has no {inner}", deb.display());
    }
    Ok(out.stdout)
}

/// A U-Boot environment (`name=value` lines) for `mkenvimage`: it replaces U-Boot's default
/// environment, so it names every address its commands use.
pub fn env_text(vars: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in vars {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// `mkenvimage -s SIZE` of `text` into `out` (with its CRC, as U-Boot checks it).
fn mkenvimage(text: &str, size: u32, dir: &Path, out: &Path) -> Result<()> {
    let txt = dir.join("env.txt");
    std::fs::write(&txt, text)?;
    run(Command::new("mkenvimage")
        .arg("-s")
        .arg(format!("{size:#x}"))
        .arg("-o")
        .arg(out)
        .arg(&txt))
}

/// How the virt U-Boot boots Catena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtBoot {
    /// `qfw load` (the Image from fw_cfg) and `booti`.
    Booti,
    /// `qfw load` of a FIT (kernel + DT, SHA-256 hashes) and `bootm`.
    Fit,
}

/// QEMU virt's flash1 (64 MiB, where Debian's qemu_arm64 U-Boot keeps its environment at
/// offset 0, 0x40000 bytes): an environment whose `bootcmd` boots Catena at once. With
/// `initrd` (its size), `qfw load` also loads QEMU's `-initrd` at `ramdisk_addr_r` and booti
/// hands it over as a raw ramdisk (`addr:size`, U-Boot's form for a ramdisk without a
/// uImage header), which U-Boot names in `/chosen` `linux,initrd-start/end`.
pub fn virt_flash1(
    dir: &Path,
    cmdline: &str,
    how: VirtBoot,
    initrd: Option<u64>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let ramdisk = initrd.map_or(String::from("-"), |n| format!("${{ramdisk_addr_r}}:{n:#x}"));
    let boot = match how {
        VirtBoot::Booti => format!(
            "qfw load ${{kernel_addr_r}} ${{ramdisk_addr_r}}; \
             booti ${{kernel_addr_r}} {ramdisk} ${{fdtcontroladdr}}"
        ),
        // U-Boot checks every hash of the configuration before it boots it.
        VirtBoot::Fit => "qfw load ${loadaddr} ${ramdisk_addr_r}; bootm ${loadaddr}#conf-1".into(),
    };
    let text = env_text(&[
        ("bootdelay", "0".into()),
        ("bootcmd", boot),
        ("bootargs", cmdline.into()),
        ("fdt_addr", "0x40000000".into()),
        ("kernel_addr_r", "0x40400000".into()),
        ("loadaddr", "0x48000000".into()),
        ("ramdisk_addr_r", "0x44000000".into()),
        ("stdin", "serial".into()),
        ("stdout", "serial".into()),
        ("stderr", "serial".into()),
    ]);
    let env = dir.join("env.bin");
    mkenvimage(&text, 0x40000, dir, &env)?;
    let mut bytes = std::fs::read(&env)?;
    bytes.resize(64 << 20, 0xff);
    let out = dir.join("flash1.img");
    std::fs::write(&out, bytes)?;
    Ok(out)
}

/// The FIT's source (`mkimage -f`): the Image and a DT, each with a SHA-256 hash that U-Boot
/// checks before it boots configuration `conf-1`.
pub fn its(image: &Path, dtb: &Path, load: u64) -> String {
    format!(
        r#"/dts-v1/;
/ {{
    description = "Catena kernel and QEMU virt DT";
    #address-cells = <1>;
    images {{
        kernel-1 {{
            description = "Catena";
            data = /incbin/("{image}");
            type = "kernel";
            arch = "arm64";
            os = "linux";
            compression = "none";
            load = <{load:#x}>;
            entry = <{load:#x}>;
            hash-1 {{ algo = "sha256"; }};
        }};
        fdt-1 {{
            description = "QEMU virt (secure=on) with the firmware's edits";
            data = /incbin/("{dtb}");
            type = "flat_dt";
            arch = "arm64";
            compression = "none";
            hash-1 {{ algo = "sha256"; }};
        }};
    }};
    configurations {{
        default = "conf-1";
        conf-1 {{
            description = "Catena on QEMU virt";
            kernel = "kernel-1";
            fdt = "fdt-1";
        }};
    }};
}};
"#,
        image = image.display(),
        dtb = dtb.display(),
    )
}

/// The FIT for the virt U-Boot: the Image and `dtb` (QEMU's DT for the machine, edited as the
/// firmware edits it when it runs without a TPM: `/psci`, the CPUs' `enable-method`,
/// `bootargs`, the variable partition's MM buffer), made with `mkimage -f`.
pub fn fit(dir: &Path, image: &Path, qemu_dtb: &[u8], cmdline: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut slot = qemu_dtb.to_vec();
    slot.resize(qemu_dtb.len() + 4096, 0);
    fw_dt::edit(&mut slot, Some(cmdline), None, Some(fw_dt::VIRT_MM_BUFFER))
        .map_err(|e| anyhow::anyhow!("editing QEMU's DT as the firmware does: {e}"))?;
    let total = u32::from_be_bytes(slot[4..8].try_into()?) as usize;
    let dtb = dir.join("virt.dtb");
    std::fs::write(&dtb, &slot[..total])?;
    let src = dir.join("catena.its");
    std::fs::write(&src, its(image, &dtb, 0x4040_0000))?;
    let out = dir.join("catena.itb");
    run(Command::new("mkimage")
        .arg("-f")
        .arg(&src)
        .arg(&out)
        .stdout(Stdio::null()))?;
    Ok(out)
}

/// The MBR of a disk with one FAT32 (LBA) partition from sector 2048 to the end.
pub fn mbr(disk_bytes: u64) -> [u8; 512] {
    let mut m = [0u8; 512];
    let start: u32 = 2048;
    let count = u32::try_from(disk_bytes / 512).unwrap_or(u32::MAX) - start;
    let e = &mut m[446..462];
    e[4] = 0x0c; // FAT32 with LBA addressing
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    m
}

/// The Raspberry Pi's SD card: MBR, FAT32 partition (`mkfs.vfat --offset`), the Image and
/// `uboot.env` (rpi_3's environment: FAT, mmc 0:1, 16 KiB) copied in with mtools.
pub fn rpi_sd(dir: &Path, image: &Path, cmdline: &str) -> Result<PathBuf> {
    const SIZE: u64 = 64 << 20;
    std::fs::create_dir_all(dir)?;
    let sd = dir.join("sd.img");
    let mut disk = vec![0u8; SIZE as usize];
    disk[..512].copy_from_slice(&mbr(SIZE));
    std::fs::write(&sd, &disk)?;
    let part_kib = (SIZE / 512 - 2048) / 2;
    run(Command::new(crate::prereq::program("mkfs.vfat")?.path)
        .args(["-F", "32", "--offset", "2048", "-n", "CATENA"])
        .arg(&sd)
        .arg(part_kib.to_string())
        .stdout(Stdio::null()))?;
    // The DT stays where the board put it (U-Boot's fdt_addr, set from what it was given).
    let text = env_text(&[
        ("bootdelay", "0".into()),
        ("kernel_addr_r", "0x02000000".into()),
        ("bootargs", cmdline.into()),
        (
            "bootcmd",
            "fatload mmc 0:1 ${kernel_addr_r} Image; booti ${kernel_addr_r} - ${fdt_addr}".into(),
        ),
    ]);
    let env = dir.join("uboot.env");
    mkenvimage(&text, 0x4000, dir, &env)?;
    let target = format!("{}@@1M", sd.display());
    run(Command::new("mcopy")
        .args(["-o", "-i", &target])
        .arg(image)
        .arg("::/Image"))?;
    run(Command::new("mcopy")
        .args(["-o", "-i", &target])
        .arg(&env)
        .arg("::/uboot.env"))?;
    Ok(sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's fixed addresses (hw/arm/virt.c's memory map): none may appear in the
    /// kernel or its drivers, which learn every address from the DT (both boards' DTs walk
    /// through the same discovery: lib/dtinfo's tests).
    const VIRT_ADDRESSES: [u64; 12] = [
        0x0400_0000, // flash1
        0x0800_0000, // GIC distributor
        0x080a_0000, // GICv3 redistributors
        0x0900_0000, // PL011
        0x0901_0000, // PL031
        0x0902_0000, // fw_cfg
        0x0903_0000, // PL061
        0x0904_0000, // secure PL011
        0x0a00_0000, // virtio-mmio
        0x0c00_0000, // platform bus
        0x0e00_0000, // secure RAM
        0x4000_0000, // RAM
    ];

    fn hex_literals(text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("0x") {
            let digits: String = rest[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '_')
                .filter(|c| *c != '_')
                .collect();
            if let Ok(v) = u64::from_str_radix(&digits, 16) {
                out.push(v);
            }
            rest = &rest[i + 2..];
        }
        out
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn no_qemu_virt_address_in_the_kernel_or_its_drivers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for d in ["kernel/src", "drivers/src"] {
            rust_files(&root.join(d), &mut files);
        }
        assert!(files.len() > 20, "found the sources");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for v in hex_literals(&text) {
                assert!(
                    !VIRT_ADDRESSES.contains(&v),
                    "{}: QEMU virt address {v:#x}; take it from the DT",
                    f.display()
                );
            }
        }
        assert_eq!(hex_literals("a 0x0900_0000 b 0xd8"), [0x0900_0000, 0xd8]);
    }

    #[test]
    fn the_versioned_linux_package_is_read_from_apt_cache() {
        let out = "linux-image-arm64\n  Depends: linux-image-6.1.0-57-arm64\n";
        assert_eq!(
            linux_image_package(out).as_deref(),
            Some("linux-image-6.1.0-57-arm64")
        );
        assert_eq!(linux_image_package("linux-image-arm64\n"), None);
    }

    #[test]
    fn the_sd_card_mbr_has_one_fat32_partition_from_1_mib() {
        let m = mbr(64 << 20);
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(m[446 + 4], 0x0c);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 2048);
        assert_eq!(
            u32::from_le_bytes(m[458..462].try_into().unwrap()),
            (64 << 20) / 512 - 2048
        );
        assert!(m[462..510].iter().all(|b| *b == 0), "one partition only");
    }

    #[test]
    fn an_environment_is_one_line_per_variable() {
        assert_eq!(
            env_text(&[("bootdelay", "0".into()), ("bootcmd", "a; b".into())]),
            "bootdelay=0\nbootcmd=a; b\n"
        );
    }
}
