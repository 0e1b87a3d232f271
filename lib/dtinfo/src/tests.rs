extern crate std;

use super::*;
use alloc::vec;

const EL2_V3: &[u8] = include_bytes!("../../../testdata/qemu-virt/el2-gicv3.dtb");
const EL2_V2: &[u8] = include_bytes!("../../../testdata/qemu-virt/el2-gicv2.dtb");
const EL1_V3: &[u8] = include_bytes!("../../../testdata/qemu-virt/el1-gicv3.dtb");
const SECURE_TPM: &[u8] = include_bytes!("../../../testdata/qemu-virt/secure-gicv3-tpm.dtb");
const SECURE: &[u8] = include_bytes!("../../../testdata/qemu-virt/secure-gicv3.dtb");

#[test]
fn reads_qemu_virt_el2_gicv3() {
    let p = Platform::parse(EL2_V3).unwrap();
    assert_eq!(p.model, "linux,dummy-virt");
    assert_eq!(
        p.memory,
        vec![Range {
            base: 0x4000_0000,
            size: 0x4000_0000
        }]
    );
    assert_eq!(p.memory_size(), 1 << 30);
    assert_eq!(p.psci, Some(PsciMethod::Smc));
    assert_eq!(
        p.gic,
        Some(Gic::V3 {
            dist: Range {
                base: 0x800_0000,
                size: 0x1_0000
            },
            redist: Range {
                base: 0x80a_0000,
                size: 0xf6_0000
            },
        })
    );
    // PPIs 13, 14, 11, 10 → INTIDs 29, 30, 27, 26.
    assert_eq!(
        p.timer,
        Some(Timer {
            sec_phys: 29,
            phys: 30,
            virt: 27,
            hyp: Some(26)
        })
    );
    assert_eq!(p.cpus.len(), 2);
    assert_eq!(p.cpus[1].mpidr, 1);
    assert_eq!(p.cpus[0].enable_method.as_deref(), Some("psci"));
    assert_eq!(p.stdout_path.as_deref(), Some("/pl011@9000000"));
    let uart = p.stdout().unwrap();
    assert_eq!(
        uart.regions,
        vec![Range {
            base: 0x900_0000,
            size: 0x1000
        }]
    );
    // SPI 1 → INTID 33, through the interrupt-parent inherited from `/`.
    assert_eq!(uart.irqs, vec![33]);
    assert_eq!(uart.compatible, vec!["arm,pl011", "arm,primecell"]);
    assert_eq!(
        p.devices
            .iter()
            .filter(|d| d.compatible[0] == "virtio,mmio")
            .count(),
        32
    );
    assert!(p.bootargs.is_none());
}

#[test]
fn reads_gicv2_and_hvc_psci() {
    let p = Platform::parse(EL2_V2).unwrap();
    assert!(matches!(
        p.gic,
        Some(Gic::V2 {
            dist: Range {
                base: 0x800_0000,
                ..
            },
            cpu: Range {
                base: 0x801_0000,
                ..
            }
        })
    ));
    let p1 = Platform::parse(EL1_V3).unwrap();
    assert_eq!(p1.psci, Some(PsciMethod::Hvc));
}

#[test]
fn secure_machine_has_no_psci_and_translates_platform_bus() {
    let p = Platform::parse(SECURE).unwrap();
    assert_eq!(p.psci, None);
    // secram@e000000 is a memory node for the secure world only.
    assert_eq!(
        p.memory,
        vec![Range {
            base: 0x4000_0000,
            size: 0x4000_0000
        }]
    );
    assert_eq!(
        p.secure_memory,
        vec![Range {
            base: 0xe00_0000,
            size: 0x100_0000
        }]
    );
    let mut early_mem = vec![];
    early::for_each_region(SECURE, &mut |k, r| {
        if k == early::RegionKind::Memory {
            early_mem.push(r)
        }
    })
    .unwrap();
    assert_eq!(early_mem, p.memory);
    // Secure-only devices: disabled for the normal world, usable by the secure world.
    let uart = p.device_at("/pl011@9040000").unwrap();
    assert!(!uart.enabled && uart.secure_enabled);
    assert!(
        p.compatible("arm,pl011")
            .is_some_and(|u| u.path == "/pl011@9000000")
    );
    // gpio-poweroff → the secure PL061 by phandle, pin 0.
    let off = p.secure_compatible("gpio-poweroff").unwrap();
    let (ph, pin) = off.gpio.unwrap();
    assert_eq!(pin, 0);
    let gpio = p.by_phandle(ph).unwrap();
    assert!(gpio.compatible.iter().any(|c| c == "arm,pl061"));
    assert!(gpio.secure_enabled);
    let p = Platform::parse(SECURE_TPM).unwrap();
    let tpm = p.compatible("tcg,tpm-tis-mmio").unwrap();
    assert_eq!(tpm.path, "/platform-bus@c000000/tpm_tis@0");
    // reg <0 0x5000> on a bus with ranges <0 0 0xc000000 0x2000000>.
    assert_eq!(
        tpm.regions,
        vec![Range {
            base: 0xc00_0000,
            size: 0x5000
        }]
    );
}

#[test]
fn subtract_carves_holes() {
    let mem = [Range {
        base: 0x4000_0000,
        size: 0x4000_0000,
    }];
    let holes = [
        Range {
            base: 0x4020_0000,
            size: 0x10_0000,
        },
        Range {
            base: 0x3000_0000,
            size: 0x1000_1000,
        }, // overlaps the start
        Range {
            base: 0x7fff_f000,
            size: 0x10_0000,
        }, // overlaps the end
    ];
    assert_eq!(
        subtract(&mem, &holes),
        vec![
            Range {
                base: 0x4000_1000,
                size: 0x1f_f000
            },
            Range {
                base: 0x4030_0000,
                size: 0x3fcf_f000
            },
        ]
    );
    assert!(
        subtract(
            &mem,
            &[Range {
                base: 0,
                size: u64::MAX
            }]
        )
        .is_empty()
    );
}

#[test]
fn refuses_bad_headers() {
    assert_eq!(
        Platform::parse(&[]),
        Err(DtError::BadHeader("shorter than a header"))
    );
    let mut b = EL2_V3.to_vec();
    b[0] = 0;
    assert_eq!(Platform::parse(&b), Err(DtError::BadHeader("bad magic")));
    assert_eq!(
        Platform::parse(&EL2_V3[..EL2_V3.len() - 1]),
        Err(DtError::BadHeader("totalsize larger than the blob"))
    );
    // Version 16 headers end before size_dt_struct: what would be read there is not it.
    let mut b = EL2_V3.to_vec();
    b[20..24].copy_from_slice(&16u32.to_be_bytes());
    let before = b.clone();
    assert_eq!(
        Platform::parse(&b),
        Err(DtError::BadHeader("version older than 17"))
    );
    assert!(strip_nops(&mut b).is_err());
    assert_eq!(b, before);
}

/// A tiny deterministic generator, so the mutation test is the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn mutated_blobs_never_panic() {
    let mut rng = Lcg(0x5eed);
    let mut accepted = 0;
    for blob in [EL2_V3, SECURE_TPM] {
        for _ in 0..1500 {
            let mut b = blob.to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % b.len();
                b[i] = rng.next() as u8;
            }
            if Platform::parse(&b).is_ok() {
                accepted += 1;
            }
        }
        for cut in (0..blob.len()).step_by(97) {
            let _ = Platform::parse(&blob[..cut]);
        }
    }
    // Most single-byte changes land in property values and are still valid trees.
    assert!(accepted > 0);
}

use crate::testing::add_nops;

#[test]
fn nops_before_every_token_are_stripped_and_change_nothing() {
    for blob in [EL2_V3, SECURE_TPM] {
        let mut b = add_nops(blob, 2, None).unwrap();
        let added = (be32_at(&b, 36) - be32_at(blob, 36)) / 4;
        assert!(
            matches!(validate(&b), Err(DtError::BadStructure(w, _)) if w.contains("NOP")),
            "the reader is never given NOPs"
        );
        assert_eq!(strip_nops(&mut b), Ok(added));
        // Byte for byte the original structure block, with the original size.
        let field = |d: &[u8], o: usize| u32::from_be_bytes(d[o..o + 4].try_into().unwrap());
        assert_eq!(field(&b, 36), field(blob, 36));
        let (ob, oo, n) = (
            field(&b, 8) as usize,
            field(blob, 8) as usize,
            field(blob, 36) as usize,
        );
        assert_eq!(b[ob..ob + n], blob[oo..oo + n]);
        assert!(
            b[ob + n..ob + n + 4 * added].iter().all(|x| *x == 0),
            "freed bytes zeroed"
        );
        assert_eq!(Platform::parse(&b).unwrap(), Platform::parse(blob).unwrap());
        let regions = |d: &[u8]| {
            let mut v = Vec::new();
            early::for_each_region(d, &mut |k, r| v.push((k, r))).unwrap();
            v
        };
        assert_eq!(regions(&b), regions(blob));
        assert_eq!(early::stdout_uart(&b), early::stdout_uart(blob));
        // Stripped once, there is nothing left to strip.
        let before = b.clone();
        assert_eq!(strip_nops(&mut b), Ok(0));
        assert_eq!(b, before);
    }
}

#[test]
fn a_node_nopped_out_is_gone_and_the_rest_stays() {
    // libfdt's fdt_nop_node: every word of the node, BEGIN_NODE to END_NODE, becomes a NOP.
    let mut b = add_nops(SECURE_TPM, 0, Some("tpm_tis@0")).unwrap();
    assert!(strip_nops(&mut b).unwrap() > 0);
    let before = Platform::parse(SECURE_TPM).unwrap();
    let after = Platform::parse(&b).unwrap();
    assert!(before.compatible("tcg,tpm-tis-mmio").is_some());
    assert!(after.compatible("tcg,tpm-tis-mmio").is_none());
    assert_eq!(after.devices.len() + 1, before.devices.len());
    assert_eq!((after.memory, after.cpus), (before.memory, before.cpus));
}

#[test]
fn a_bad_blob_with_nops_is_refused_and_left_alone() {
    let mut b = add_nops(EL2_V3, 1, None).unwrap();
    // The root's END_NODE (the word before END's NOP and END) goes: END comes while a node is
    // open.
    let end = b.len() - be32_at(&b, 32) - 4;
    assert_eq!(b[end - 8..end], [0, 0, 0, 2, 0, 0, 0, 4]);
    b[end - 8..end - 4].copy_from_slice(&[0, 0, 0, 4]);
    let before = b.clone();
    assert!(matches!(strip_nops(&mut b), Err(DtError::BadStructure(..))));
    assert_eq!(b, before, "nothing written");
    let mut short = EL2_V3[..64].to_vec();
    assert!(strip_nops(&mut short).is_err());
}

fn be32_at(b: &[u8], off: usize) -> usize {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap()) as usize
}

/// Debian's Raspberry Pi 3 Model B DT (testdata/raspi3b/README.md): one address cell, no GIC,
/// everything behind `/soc`'s `ranges`.
const RPI3B: &[u8] = include_bytes!("../../../testdata/raspi3b/bcm2837-rpi-3-b.dtb");

#[test]
fn the_raspberry_pi_3_is_found_without_a_gic() {
    let p = Platform::parse(RPI3B).unwrap();
    assert_eq!(p.gic, None);
    assert_eq!(p.psci, None);
    assert_eq!(
        p.memory,
        [Range {
            base: 0,
            size: 0x4000_0000
        }]
    );
    // /memreserve/ keeps the spin-table page (QEMU's and the Pi firmware's stub).
    assert!(p.reserved.contains(&Range {
        base: 0,
        size: 0x1000
    }));
    // Both controllers, translated through /soc's ranges (0x7e00_0000 -> 0x3f00_0000;
    // 0x4000_0000 identity).
    assert_eq!(
        p.bcm2836,
        Some(Bcm2836Intc {
            local: Range {
                base: 0x4000_0000,
                size: 0x100
            },
            armctrl: Some(Range {
                base: 0x3f00_b200,
                size: 0x200
            }),
        })
    );
    // The armv7-timer node, its interrupts in the local controller's numbering: secure phys,
    // non-secure phys, virtual, hyp.
    assert_eq!(
        p.timer,
        Some(Timer {
            sec_phys: 0,
            phys: 1,
            virt: 3,
            hyp: Some(2)
        })
    );
    // Four spin-table CPUs with their release addresses.
    let cpus: Vec<(u64, Option<&str>, Option<u64>)> = p
        .cpus
        .iter()
        .map(|c| (c.mpidr, c.enable_method.as_deref(), c.release_addr))
        .collect();
    assert_eq!(
        cpus,
        [
            (0, Some("spin-table"), Some(0xd8)),
            (1, Some("spin-table"), Some(0xe0)),
            (2, Some("spin-table"), Some(0xe8)),
            (3, Some("spin-table"), Some(0xf0)),
        ]
    );
    for c in &p.cpus {
        assert_eq!(p.spin_release_addr(c), Ok(c.release_addr.unwrap()));
    }
    let bad = |release_addr: Option<u64>, method: &str| Cpu {
        mpidr: 1,
        enable_method: Some(method.into()),
        release_addr,
    };
    assert!(p.spin_release_addr(&bad(Some(0xd8), "psci")).is_err());
    assert!(p.spin_release_addr(&bad(None, "spin-table")).is_err());
    assert!(
        p.spin_release_addr(&bad(Some(0xdc), "spin-table")).is_err(),
        "misaligned"
    );
    assert!(
        p.spin_release_addr(&bad(Some(0x10_0000), "spin-table"))
            .is_err(),
        "RAM the kernel may allocate"
    );
    assert!(
        p.spin_release_addr(&bad(Some(0x4000_0000), "spin-table"))
            .is_err(),
        "outside RAM"
    );
    assert!(
        p.spin_release_addr(&bad(Some(0xff8), "spin-table")).is_ok(),
        "last word of the reserved page"
    );
    // ARMCTRL specifiers (bank, n): the mini-UART is GPU interrupt 29 (bank 1).
    let aux = p.device_at("/soc/serial@7e215040").unwrap();
    assert_eq!(aux.irqs, [bcm_irq::ARMCTRL_BASE + 32 + 29]);
    assert_eq!(
        aux.regions,
        [Range {
            base: 0x3f21_5040,
            size: 0x40
        }]
    );
    // The console: the mini-UART (serial1), found before any allocation.
    assert_eq!(
        early::stdout_uart(RPI3B),
        Some(early::StdoutUart {
            region: Range {
                base: 0x3f21_5040,
                size: 0x40
            },
            kind: early::UartKind::Bcm2835Aux
        })
    );
    let mut devices = Vec::new();
    early::for_each_region(RPI3B, &mut |k, r| {
        if k == early::RegionKind::Device {
            devices.push(r)
        }
    })
    .unwrap();
    assert!(devices.contains(&Range {
        base: 0x4000_0000,
        size: 0x100
    }));
    assert!(devices.contains(&Range {
        base: 0x3f21_5040,
        size: 0x40
    }));
    // No CPU address is a bus address: nothing left untranslated at 0x7e...
    assert!(devices.iter().all(|r| r.base >> 24 != 0x7e));
}

/// QEMU virt with `-initrd` (5000 bytes): the loader's /chosen names it with one cell each.
const EL2_INITRD: &[u8] = include_bytes!("../../../testdata/qemu-virt/el2-gicv3-initrd.dtb");

#[test]
fn the_initramfs_is_found_and_kept_from_the_heap() {
    let p = Platform::parse(EL2_INITRD).unwrap();
    assert_eq!(
        p.initrd,
        Some(Range {
            base: 0x4800_0000,
            size: 5000
        })
    );
    let mut reserved = Vec::new();
    early::for_each_region(EL2_INITRD, &mut |k, r| {
        if k == early::RegionKind::Reserved {
            reserved.push(r)
        }
    })
    .unwrap();
    assert!(reserved.contains(&p.initrd.unwrap()), "not free RAM");
    assert_eq!(Platform::parse(RPI3B).unwrap().initrd, None);
}

#[test]
fn an_initramfs_outside_ram_or_over_the_kernel_is_refused() {
    let mut p = Platform::parse(EL2_INITRD).unwrap();
    let image = Range {
        base: 0x4020_0000,
        size: 0x20_0000,
    };
    let named = p.initrd.unwrap();
    assert_eq!(p.initrd_in_ram(image), Ok(Some(named)));
    // Past the end of RAM (QEMU virt's RAM starts at 1 GiB).
    let past = Range {
        base: p.memory[0].end() - 100,
        size: 5000,
    };
    p.initrd = Some(past);
    assert_eq!(p.initrd_in_ram(image), Err(("not inside RAM", past)));
    // Below RAM, and a size that would wrap the address space.
    for r in [
        Range {
            base: 0x1000,
            size: 5000,
        },
        Range {
            base: 0x4800_0000,
            size: u64::MAX,
        },
    ] {
        p.initrd = Some(r);
        assert_eq!(p.initrd_in_ram(image), Err(("not inside RAM", r)));
    }
    // Inside RAM but over the kernel's image.
    let over = Range {
        base: 0x4030_0000,
        size: 5000,
    };
    p.initrd = Some(over);
    assert_eq!(p.initrd_in_ram(image), Err(("over the kernel image", over)));
    p.initrd = None;
    assert_eq!(p.initrd_in_ram(image), Ok(None));
}
