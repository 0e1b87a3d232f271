//! The hyp's policy: what the host may touch once the hyp is finalised.
//!
//! Owns: the split of the DT's devices and memory into the host's MMIO and the regions only
//! the secure world (or the hyp) may use ([`host_view`]), and the host stage-2 as a list of
//! mappings ([`stage2_layout`]) — Linux pKVM's `host_stage2_idmap` decisions, here as data the
//! hyp turns into page tables. Must not: touch page tables or hardware (`hyp/src/stage2.rs`
//! does), or trust the DT to be sensible (overflowing and empty ranges are refused).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use dtinfo::{Gic, Platform};

/// A physical range (base, size).
pub type Range = (u64, u64);

/// The host's devices and what it must never reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostView {
    /// MMIO the host may use (enabled devices outside RAM, the GIC).
    pub mmio: Vec<Range>,
    /// Secure-only memory, DT-reserved RAM, and the MMIO of secure devices.
    pub secure: Vec<Range>,
}

fn overlaps(a: Range, b: Range) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// Splits the platform into the host's MMIO and the secure-only regions.
pub fn host_view(p: &Platform) -> HostView {
    let mut v = HostView::default();
    // Secure-only memory, and RAM the DT reserves with /memreserve/ or a `no-map`
    // /reserved-memory child: neither is the host's after finalise. A reserved child without
    // `no-map` is a buffer the host shares with firmware (the TPM's CRB): host RAM, which the
    // host must not allocate but reaches; the firmware validates everything it reads there.
    // The initramfs is the exception: U-Boot's booti reserves it with /memreserve/ (as it does
    // for Linux), and the kernel keeps reading its programs after finalise.
    let in_initrd = |r: &&dtinfo::Range| {
        p.initrd
            .is_some_and(|i| i.base <= r.base && r.base.saturating_add(r.size) <= i.end())
    };
    v.secure.extend(
        p.secure_memory
            .iter()
            .chain(
                p.reserved
                    .iter()
                    .filter(|r| !p.reserved_mapped.contains(r) && !in_initrd(r)),
            )
            .map(|r| (r.base, r.size)),
    );
    // Spin-table release addresses: a CPU still in the board's spin loop after finalise would
    // enter EL2 wherever the (then untrusted) host wrote there. Their pages leave the host
    // whatever kind of reserved memory they are in.
    for c in &p.cpus {
        if let Ok(a) = p.spin_release_addr(c) {
            let page = (a & !0xfff, 0x1000);
            if !v
                .secure
                .iter()
                .any(|r| r.0 <= page.0 && page.0 + page.1 <= r.0 + r.1)
            {
                v.secure.push(page);
            }
        }
    }
    for d in &p.devices {
        // A device the DT gives to the secure world (`status = "disabled"`,
        // `secure-status = "okay"`): the firmware marks the TPM's TIS so when its TPM service
        // owns it (the host reaches that TPM through FF-A, DEN0138). Without secure firmware
        // the TIS stays enabled and is the host's (the `tpm-tis` driver).
        let hidden = !d.enabled && d.secure_enabled;
        for r in &d.regions {
            let r = (r.base, r.size);
            let in_ram = p.memory.iter().any(|m| overlaps(r, (m.base, m.size)));
            if hidden {
                v.secure.push(r);
            } else if d.enabled && !in_ram {
                v.mmio.push(r);
            }
        }
    }
    match p.gic {
        Some(Gic::V3 { dist, redist }) => v
            .mmio
            .extend([(dist.base, dist.size), (redist.base, redist.size)]),
        Some(Gic::V2 { dist, cpu }) => v
            .mmio
            .extend([(dist.base, dist.size), (cpu.base, cpu.size)]),
        None => {}
    }
    v
}

/// How the host stage-2 maps a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Normal memory, read-write (host RAM).
    RamRw,
    /// Normal memory, read-only (the kernel's text and read-only data: after finalise the host
    /// cannot rewrite its own code).
    RamRo,
    /// Device-nGnRE, read-write, never executable (host MMIO).
    Device,
}

/// One mapping of the host stage-2 (identity: IPA = PA), page-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First byte.
    pub base: u64,
    /// One past the last byte.
    pub end: u64,
    /// How.
    pub access: Access,
}

/// Why a layout cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A range ends past the IPA space.
    BeyondIpa,
}

/// Pages containing `[b, b + s)`.
fn pages(b: u64, s: u64) -> (u64, u64) {
    (
        b & !0xfff,
        b.saturating_add(s).saturating_add(0xfff) & !0xfff,
    )
}

/// The host stage-2, in the order the hyp maps it (later mappings win where they overlap):
/// host RAM (`host_ram`: RAM minus the hyp's memory and secure carve-outs, as page ownership
/// computed it) read-write; the kernel's text and read-only data read-only; every host MMIO
/// range that touches no secure range, as device memory. Anything else — the hyp's memory,
/// secure memory and devices — is absent and faults.
pub fn stage2_layout(
    host_ram: &[Range],
    kernel_ro: Range,
    view: &HostView,
    ipa_bits: u32,
) -> Result<Vec<Mapping>, LayoutError> {
    let limit = 1u64.checked_shl(ipa_bits).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    let mut put = |r: Range, access| -> Result<(), LayoutError> {
        if r.1 == 0 {
            return Ok(());
        }
        if r.0.checked_add(r.1).is_none_or(|e| e > limit) {
            return Err(LayoutError::BeyondIpa);
        }
        let (base, end) = pages(r.0, r.1);
        out.push(Mapping { base, end, access });
        Ok(())
    };
    for &r in host_ram {
        put(r, Access::RamRw)?;
    }
    put(kernel_ro, Access::RamRo)?;
    for &r in &view.mmio {
        if !view.secure.iter().any(|&s| overlaps(r, s)) {
            put(r, Access::Device)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECURE_TPM: &[u8] = include_bytes!("../../../testdata/qemu-virt/secure-gicv3-tpm.dtb");
    const EL2_V3: &[u8] = include_bytes!("../../../testdata/qemu-virt/el2-gicv3.dtb");
    const RPI3B: &[u8] = include_bytes!("../../../testdata/raspi3b/bcm2837-rpi-3-b.dtb");

    #[test]
    fn spin_table_release_pages_leave_the_host() {
        let mut p = Platform::parse(RPI3B).unwrap();
        // RAM as U-Boot passes it on (the GPU's share cut off below the peripherals at
        // 0x3f00_0000); the file says 1 GiB.
        p.memory = alloc::vec![dtinfo::Range {
            base: 0,
            size: 0x3c00_0000
        }];
        // Here /memreserve/ already hides page 0; make it a mapped reservation (a buffer the
        // host may reach) to see the release rule on its own.
        let page0 = p.reserved[0];
        p.reserved_mapped.push(page0);
        let v = host_view(&p);
        assert!(v.secure.contains(&(0, 0x1000)), "{:?}", v.secure);
        // The Pi's controllers and peripherals stay the host's MMIO.
        assert!(v.mmio.contains(&(0x4000_0000, 0x100)));
        assert!(v.mmio.contains(&(0x3f21_5040, 0x40)));
    }

    fn covers(v: &[Range], addr: u64) -> bool {
        v.iter().any(|&(b, s)| addr >= b && addr < b + s)
    }

    #[test]
    fn the_tpm_and_secure_memory_are_never_the_host_s() {
        let mut p = Platform::parse(SECURE_TPM).unwrap();
        // QEMU's tree leaves the TIS enabled: the host's, until the firmware claims it.
        let find = |p: &Platform| {
            p.devices
                .iter()
                .position(|d| d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"))
                .expect("the fixture has a TPM")
        };
        let i = find(&p);
        let t = p.devices[i].regions[0].base;
        assert!(
            covers(&host_view(&p).mmio, t),
            "an unclaimed TIS is host MMIO"
        );
        // As the firmware leaves it (lib/fw-dt): disabled, secure-status okay.
        p.devices[i].enabled = false;
        p.devices[i].secure_enabled = true;
        let v = host_view(&p);
        assert!(covers(&v.secure, t), "TPM MMIO is secure-only");
        assert!(!covers(&v.mmio, t), "TPM MMIO is not host MMIO");
        for s in &p.secure_memory {
            assert!(covers(&v.secure, s.base));
            assert!(!covers(&v.mmio, s.base));
        }
        // The host keeps its UART and the GIC; no host MMIO lies in RAM.
        assert!(covers(&v.mmio, 0x0900_0000), "pl011");
        let Some(Gic::V3 { dist, redist }) = p.gic else {
            panic!("GICv3 fixture")
        };
        assert!(covers(&v.mmio, dist.base) && covers(&v.mmio, redist.base));
        for m in &v.mmio {
            assert!(!p.memory.iter().any(|r| overlaps(*m, (r.base, r.size))));
        }
    }

    #[test]
    fn a_reserved_initramfs_stays_the_host_s_and_nothing_more() {
        let mut p = Platform::parse(EL2_V3).unwrap();
        let before = host_view(&p).secure.len();
        // What U-Boot's booti leaves: the ramdisk in /chosen and in /memreserve/.
        let rd = dtinfo::Range {
            base: 0x7dcb_4000,
            size: 0x1f_b738,
        };
        p.initrd = Some(rd);
        p.reserved.push(rd);
        assert_eq!(host_view(&p).secure.len(), before);
        // A reservation reaching past the initramfs is still hidden.
        p.reserved.push(dtinfo::Range {
            base: 0x7dcb_4000,
            size: 0x40_0000,
        });
        assert_eq!(host_view(&p).secure.len(), before + 1);
    }

    #[test]
    fn a_normal_world_machine_hides_only_what_its_dt_reserves() {
        let p = Platform::parse(EL2_V3).unwrap();
        let v = host_view(&p);
        assert!(p.secure_memory.is_empty());
        assert_eq!(v.secure.len(), p.reserved.len());
        assert!(covers(&v.mmio, 0x0900_0000));
    }

    /// The secure fixture as the firmware hands it over: the TIS claimed by the secure world.
    fn claimed() -> Platform {
        let mut p = Platform::parse(SECURE_TPM).unwrap();
        for d in &mut p.devices {
            if d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio") {
                d.enabled = false;
                d.secure_enabled = true;
            }
        }
        p
    }

    #[test]
    fn the_stage2_maps_host_ram_kernel_text_and_host_mmio_only() {
        let p = claimed();
        let v = host_view(&p);
        let ram = [(0x4000_0000, 0x0200_0000), (0x4300_0000, 0x3d00_0000)];
        let kernel_ro = (0x4020_0000, 0x0005_0123);
        let l = stage2_layout(&ram, kernel_ro, &v, 39).unwrap();
        let find = |a: u64| {
            l.iter()
                .rev()
                .find(|m| a >= m.base && a < m.end)
                .map(|m| m.access)
        };
        assert_eq!(find(0x4000_1000), Some(Access::RamRw));
        assert_eq!(
            find(0x4200_0000),
            None,
            "the carved-out hyp range is absent"
        );
        assert_eq!(
            find(0x4024_0000),
            Some(Access::RamRo),
            "kernel text, page-rounded"
        );
        assert_eq!(find(0x4025_0fff), Some(Access::RamRo));
        assert_eq!(find(0x0900_0000), Some(Access::Device));
        let tpm = p
            .devices
            .iter()
            .find(|d| d.compatible.iter().any(|c| c == "tcg,tpm-tis-mmio"))
            .unwrap()
            .regions[0]
            .base;
        assert_eq!(find(tpm), None, "the TPM is absent");
        for s in &p.secure_memory {
            assert_eq!(find(s.base), None, "secure memory is absent");
        }
        assert!(l.iter().all(|m| m.base % 4096 == 0 && m.end % 4096 == 0));
    }

    #[test]
    fn host_mmio_touching_a_secure_range_is_left_out_and_the_ipa_space_is_enforced() {
        let v = HostView {
            mmio: alloc::vec![(0x0c00_0000, 0x1000), (0x0900_0000, 0x1000)],
            secure: alloc::vec![(0x0c00_0800, 0x10)],
        };
        let l = stage2_layout(&[], (0x4000_0000, 0x1000), &v, 39).unwrap();
        assert!(!l.iter().any(|m| m.base == 0x0c00_0000));
        assert!(l.iter().any(|m| m.base == 0x0900_0000));
        assert_eq!(
            stage2_layout(&[(1 << 39, 0x1000)], (0, 0), &v, 39),
            Err(LayoutError::BeyondIpa)
        );
        assert_eq!(
            stage2_layout(&[(u64::MAX - 10, 100)], (0, 0), &v, 39),
            Err(LayoutError::BeyondIpa)
        );
    }
}
