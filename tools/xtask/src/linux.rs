//! A distribution's Linux in Catena's place, on Catena's firmware: Debian's arm64 kernel
//! (a release with the FF-A core as a platform driver and `tpm_crb_ffa`, 7.2 or later, from
//! trixie-backports), its FF-A and TPM-over-FF-A modules, and a busybox initramfs whose
//! `/init` loads them and reports what Linux made of the firmware's partitions as `@event
//! linux ...` lines (read from sysfs and the kernel log; the scenario judges them).
//!
//! The packages are fetched with `apt-get download` and a private apt configuration (like the
//! Raspberry Pi's files, `boards.rs`) into `target/catena/host/linux/`, never installed; only
//! the kernel Image, three modules and busybox are kept. docs/tpm.md tells what was run.

use crate::boards::{Arm64Apt, extract};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The suites: the kernel from trixie-backports (apt's default release), busybox from trixie.
const SOURCES: &str = "deb http://deb.debian.org/debian trixie-backports main\n\
                       deb http://deb.debian.org/debian trixie main\n";
const RELEASE: &str = "trixie-backports";

/// The oldest Linux whose FF-A core probes as a platform driver (7.2, docs/ffa.md) and whose
/// `tpm_crb_ffa` speaks DIRECT_REQ2.
pub const MIN_RELEASE: (u32, u32) = (7, 2);

/// The modules `/init` loads, in order (the bus, the FF-A driver, the TPM service's client),
/// and where each lies under `usr/lib/modules/RELEASE/kernel/`.
pub const MODULES: [(&str, &str); 3] = [
    ("ffa-core", "drivers/firmware/arm_ffa/ffa-core.ko.xz"),
    ("ffa-module", "drivers/firmware/arm_ffa/ffa-module.ko.xz"),
    ("tpm_crb_ffa", "drivers/char/tpm/tpm_crb_ffa.ko.xz"),
];

/// What a Linux scenario boots.
#[derive(Clone, Debug)]
pub struct LinuxFiles {
    /// The kernel Image (`-kernel`).
    pub image: PathBuf,
    /// The initramfs (`-initrd`).
    pub initramfs: PathBuf,
    /// The kernel's release (`uname -r`).
    pub release: String,
}

fn dir(root: &Path) -> PathBuf {
    root.join("target/catena/host/linux")
}

/// The files, if fetched before.
pub fn present(root: &Path) -> Option<LinuxFiles> {
    let files = dir(root).join("files");
    let release = std::fs::read_to_string(files.join("release")).ok()?;
    let f = LinuxFiles {
        image: files.join("Image"),
        initramfs: files.join("initramfs.cpio"),
        release: release.trim().to_string(),
    };
    (f.image.is_file() && f.initramfs.is_file()).then_some(f)
}

/// The files, fetched from Debian's arm64 archive the first time.
pub fn files(root: &Path) -> Result<LinuxFiles> {
    if let Some(f) = present(root) {
        return Ok(f);
    }
    fetch(root)?;
    present(root).context("the fetched packages lacked the expected files")
}

/// `(major, minor)` of a release string such as `7.3.4+deb13-arm64`.
pub fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The release `linux-image-RELEASE` names, from `apt-cache depends linux-image-arm64`.
fn release_of(depends: &str) -> Option<String> {
    crate::boards::linux_image_package(depends)
        .map(|p| p.trim_start_matches("linux-image-").to_string())
}

fn fetch(root: &Path) -> Result<()> {
    let dir = dir(root);
    let apt = Arm64Apt::new(&dir, Some(SOURCES), Some(RELEASE))?;
    eprintln!(
        "xtask: fetching Debian's arm64 Linux ({RELEASE}) and busybox-static (not installed)"
    );
    apt.update()?;
    let deps = apt.depends("linux-image-arm64")?;
    let release = release_of(&deps)
        .with_context(|| format!("no linux-image-*-arm64 in `apt-cache depends`: {deps}"))?;
    match release_version(&release) {
        Some(v) if v >= MIN_RELEASE => {}
        _ => bail!(
            "Debian's {RELEASE} offers Linux {release}; the FF-A scenarios need {}.{} or later",
            MIN_RELEASE.0,
            MIN_RELEASE.1
        ),
    }
    // Since 7.x Debian splits the image package: the kernel in linux-binary-*, the modules in
    // linux-modules-*.
    let binary = format!("linux-binary-{release}");
    let modules = format!("linux-modules-{release}");
    apt.download(&[&binary, &modules, "busybox-static"])?;
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    let lib = format!("./usr/lib/modules/{release}");
    let image = extract(&apt.deb(&format!("{binary}_"))?, &format!("{lib}/vmlinuz"))?;
    let modules_deb = apt.deb(&format!("{modules}_"))?;
    let mut kos = Vec::new();
    for (name, path) in MODULES {
        let xz = extract(&modules_deb, &format!("{lib}/kernel/{path}"))?;
        let mut ko = Vec::new();
        lzma_rs::xz_decompress(&mut &xz[..], &mut ko)
            .map_err(|e| anyhow::anyhow!("{path}: not xz: {e}"))?;
        kos.push((name, ko));
    }
    let busybox = extract(&apt.deb("busybox-static_")?, "./usr/bin/busybox")?;
    std::fs::write(files.join("Image"), &image)?;
    std::fs::write(files.join("initramfs.cpio"), initramfs(&busybox, &kos))?;
    std::fs::write(files.join("release"), format!("{release}\n"))?;
    apt.clean();
    Ok(())
}

/// The initramfs: busybox, the modules, and [`INIT`].
pub fn initramfs(busybox: &[u8], modules: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let names: Vec<String> = modules
        .iter()
        .map(|(n, _)| format!("lib/modules/{n}.ko"))
        .collect();
    let mut entries: Vec<(&str, u32, &[u8])> = vec![
        ("bin", cpio::S_IFDIR | 0o755, &[]),
        ("bin/busybox", cpio::S_IFREG | 0o755, busybox),
        ("dev", cpio::S_IFDIR | 0o755, &[]),
        ("proc", cpio::S_IFDIR | 0o755, &[]),
        ("sys", cpio::S_IFDIR | 0o755, &[]),
        ("lib", cpio::S_IFDIR | 0o755, &[]),
        ("lib/modules", cpio::S_IFDIR | 0o755, &[]),
        ("init", cpio::S_IFREG | 0o755, INIT.as_bytes()),
    ];
    for (name, (_, ko)) in names.iter().zip(modules) {
        entries.push((name, cpio::S_IFREG | 0o644, ko));
    }
    cpio::write(&entries)
}

/// `/init`: load the modules, then report, as event lines, what Linux did: its release and
/// KVM's mode (pKVM is `protected`), each module's load, the FF-A version the driver found,
/// every FF-A device (partition ID, UUID, bound driver) from sysfs, and what `tpm_crb_ffa`
/// logged of the TPM service's interface version (or of its failure); then `done` and power
/// off (PSCI SYSTEM_OFF, our firmware).
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
ev() { echo "@event linux $*"; }
case "$(dmesg | grep 'mode initialized successfully')" in
    *"Protected nVHE"*) kvm=protected ;;
    *nVHE*) kvm=nvhe ;;
    *VHE*) kvm=vhe ;;
    *) kvm=none ;;
esac
ev state=init release=$(uname -r) kvm=$kvm
for m in ffa-core ffa-module tpm_crb_ffa; do
    if insmod /lib/modules/$m.ko; then r=ok; else r=error; fi
    ev module=$m result=$r
done
v=$(dmesg | sed -n 's/.*ARM FF-A: Firmware version \([0-9.]*\) found.*/\1/p')
ev ffa=${v:-none}
for d in /sys/bus/arm_ffa/devices/*; do
    [ -e "$d/partition_id" ] || continue
    drv=none
    [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    ev ffa-device=$(basename "$d") id=$(cat "$d/partition_id") uuid=$(cat "$d/uuid") driver=$drv
done
dmesg | sed -n 's/.*ffa-crb \(arm-ffa-[0-9]*\): ABI version \([0-9.]*\).*/\1 \2/p' |
    while read dev abi; do ev tpm-crb-ffa=$dev abi=$abi; done
dmesg | sed -n 's/.*ffa-crb \(arm-ffa-[0-9]*\): failed to get crb interface version\. rc:\(-*[0-9]*\).*/\1 \2/p' |
    while read dev rc; do ev tpm-crb-ffa=$dev result=error rc=$rc; done
echo "@event done status=ok"
poweroff -f
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_and_compared() {
        assert_eq!(release_version("7.3.4+deb13-arm64"), Some((7, 3)));
        assert_eq!(release_version("6.12.117-arm64"), Some((6, 12)));
        assert!(release_version("7.3.4+deb13-arm64").unwrap() >= MIN_RELEASE);
        assert!(release_version("6.12.117-arm64").unwrap() < MIN_RELEASE);
        assert_eq!(release_version("arm64"), None);
        let deps = "linux-image-arm64\n  Depends: linux-base-arm64\n  \
                    Depends: linux-image-7.3.4+deb13-arm64\n  Depends: linux-modules-arm64\n";
        assert_eq!(release_of(deps).as_deref(), Some("7.3.4+deb13-arm64"));
    }

    #[test]
    fn the_initramfs_holds_init_busybox_and_the_modules_in_load_order() {
        let mods = vec![
            ("ffa-core", b"a".to_vec()),
            ("ffa-module", b"b".to_vec()),
            ("tpm_crb_ffa", b"c".to_vec()),
        ];
        let blob = initramfs(b"BB", &mods);
        let entries = cpio::parse(&blob).unwrap();
        let get = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.data);
        assert_eq!(get("init"), Some(INIT.as_bytes()));
        assert_eq!(get("bin/busybox"), Some(&b"BB"[..]));
        assert_eq!(get("lib/modules/tpm_crb_ffa.ko"), Some(&b"c"[..]));
        // /init loads what MODULES names, in that order.
        let order: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
        assert!(INIT.contains(&format!("for m in {}; do", order.join(" "))));
    }
}
