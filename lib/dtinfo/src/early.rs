//! What the kernel reads from the DT before it has a heap: no allocation here.
//!
//! The boot CPU needs RAM, reserved ranges and device MMIO regions to build its first page
//! table and place its heap, and the stdout UART to print. [`Platform`](crate::Platform) reads
//! the rest once the heap exists.

use crate::{Cells, DtError, Range, bus_windows, cells_of, prop_str, reg_iter};
use fdt::Fdt;
use fdt::node::FdtNode;

/// What a region is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// RAM (a `memory` node).
    Memory,
    /// Reserved RAM (`/memreserve/` or a `/reserved-memory` child).
    Reserved,
    /// MMIO of a device node (children of `/` and of `simple-bus` nodes).
    Device,
}

/// Validates `blob` and calls `f` for every memory, reserved and device region.
pub fn for_each_region(blob: &[u8], f: &mut dyn FnMut(RegionKind, Range)) -> Result<(), DtError> {
    let blob = crate::validate(blob)?;
    let fdt = Fdt::new(blob).map_err(|_| DtError::BadHeader("rejected by fdt"))?;
    for r in fdt.memory_reservations() {
        if r.size() != 0 {
            f(
                RegionKind::Reserved,
                Range {
                    base: r.address() as u64,
                    size: r.size() as u64,
                },
            );
        }
    }
    let root = fdt.find_node("/").ok_or(DtError::Missing("a root node"))?;
    let root_cells = cells_of(root);
    for node in root.children() {
        let base_name = node.name.split('@').next().unwrap_or("");
        if prop_str(node, "device_type") == Some("memory") {
            if !crate::is_enabled(node) {
                continue; // secure-only memory is not the normal world's RAM
            }
            reg_iter(node, root_cells, None)
                .filter(|r| r.size != 0)
                .for_each(|r| f(RegionKind::Memory, r));
        } else if base_name == "reserved-memory" {
            let cells = cells_of(node);
            for child in node.children() {
                reg_iter(child, cells, None).for_each(|r| f(RegionKind::Reserved, r));
            }
        } else if base_name == "chosen" {
            // The initramfs is RAM the kernel must not allocate before it has read it.
            if let Some(r) = crate::initrd_of(node) {
                f(RegionKind::Reserved, r);
            }
        } else if base_name != "cpus" {
            reg_iter(node, root_cells, None).for_each(|r| f(RegionKind::Device, r));
            if has_compatible(node, "simple-bus")
                && let Some((windows, n)) = bus_windows(node, root_cells.addr)
            {
                let cells: Cells = cells_of(node);
                for child in node.children() {
                    reg_iter(child, cells, Some(&windows[..n]))
                        .for_each(|r| f(RegionKind::Device, r));
                }
            }
        }
    }
    Ok(())
}

/// Whether `node`'s `compatible` list holds `compat` (without allocating).
fn has_compatible(node: FdtNode<'_, '_>, compat: &str) -> bool {
    node.property("compatible")
        .is_some_and(|p| p.value.split(|b| *b == 0).any(|s| s == compat.as_bytes()))
}

/// The UARTs the kernel's emergency console can drive.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PL011 (`arm,pl011`): DR at 0x00, FR at 0x18 (PL011 TRM 3.3).
    Pl011,
    /// The BCM2835 auxiliary mini-UART (`brcm,bcm2835-aux-uart`): the DT's region starts at
    /// AUX_MU_IO_REG; AUX_MU_LSR_REG is 0x14 further (BCM2835 ARM Peripherals, 2.2.2).
    Bcm2835Aux,
}

impl UartKind {
    /// The kind a `compatible` list names, if it is one of ours.
    pub fn of(compat: &[&str]) -> Option<UartKind> {
        compat.iter().find_map(|c| match *c {
            "arm,pl011" => Some(UartKind::Pl011),
            "brcm,bcm2835-aux-uart" => Some(UartKind::Bcm2835Aux),
            _ => None,
        })
    }

    /// Bytes of registers the console uses from the region's start.
    pub fn span(self) -> u64 {
        match self {
            UartKind::Pl011 => 0x1c,
            UartKind::Bcm2835Aux => 0x18,
        }
    }
}

/// The console UART `/chosen/stdout-path` names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StdoutUart {
    /// Its first MMIO region, in CPU addresses.
    pub region: Range,
    /// What it is.
    pub kind: UartKind,
}

/// The `/chosen/stdout-path` UART, if it is one the console can drive and its region holds
/// the registers it uses. Devices directly under `/` and under a `simple-bus` child of `/`
/// (translated through its `ranges`) are found.
pub fn stdout_uart(blob: &[u8]) -> Option<StdoutUart> {
    let blob = crate::validate(blob).ok()?;
    let fdt = Fdt::new(blob).ok()?;
    let chosen = fdt.find_node("/chosen")?;
    let path = prop_str(chosen, "stdout-path")?;
    let path = path.split(':').next().unwrap_or(path);
    let path = if path.starts_with('/') {
        path
    } else {
        prop_str(fdt.find_node("/aliases")?, path)?
    };
    let node = fdt.find_node(path)?;
    let kind = node
        .property("compatible")?
        .value
        .split(|b| *b == 0)
        .filter_map(|c| core::str::from_utf8(c).ok())
        .find_map(|c| UartKind::of(&[c]))?;
    let root = fdt.find_node("/")?;
    let root_cells = cells_of(root);
    let parent_path = &path[..path.rfind('/')?];
    let region = if parent_path.is_empty() {
        reg_iter(node, root_cells, None).next()?
    } else {
        let parent = fdt.find_node(parent_path)?;
        if parent_path[1..].contains('/') || !has_compatible(parent, "simple-bus") {
            return None; // deeper buses are not decoded this early
        }
        let (windows, n) = bus_windows(parent, root_cells.addr)?;
        reg_iter(node, cells_of(parent), Some(&windows[..n])).next()?
    };
    (region.size >= kind.span()).then_some(StdoutUart { region, kind })
}

/// The largest free range: `memory` minus `holes`, found without allocating.
pub fn largest_free(memory: &[Range], holes: &[Range]) -> Option<Range> {
    let mut best: Option<Range> = None;
    for m in memory {
        // Candidate starts: the region start and every hole end inside it.
        let starts = core::iter::once(m.base).chain(holes.iter().map(|h| h.end()));
        for start in starts.filter(|s| *s >= m.base && *s < m.end()) {
            if holes.iter().any(|h| h.base <= start && start < h.end()) {
                continue;
            }
            let end = holes
                .iter()
                .filter(|h| h.base > start)
                .map(|h| h.base)
                .fold(m.end(), u64::min);
            let r = Range {
                base: start,
                size: end - start,
            };
            if best.is_none_or(|b| r.size > b.size) {
                best = Some(r);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    const EL2_V3: &[u8] = include_bytes!("../../../testdata/qemu-virt/el2-gicv3.dtb");
    const SECURE_TPM: &[u8] = include_bytes!("../../../testdata/qemu-virt/secure-gicv3-tpm.dtb");

    #[test]
    fn regions_of_qemu_virt() {
        let mut seen = Vec::new();
        for_each_region(EL2_V3, &mut |k, r| seen.push((k, r))).unwrap();
        assert!(seen.contains(&(
            RegionKind::Memory,
            Range {
                base: 0x4000_0000,
                size: 0x4000_0000
            }
        )));
        assert!(seen.contains(&(
            RegionKind::Device,
            Range {
                base: 0x900_0000,
                size: 0x1000
            }
        )));
        assert!(seen.contains(&(
            RegionKind::Device,
            Range {
                base: 0x80a_0000,
                size: 0xf6_0000
            }
        )));
        assert!(!seen.iter().any(|(k, _)| *k == RegionKind::Reserved));
        let mut tpm = false;
        for_each_region(SECURE_TPM, &mut |k, r| {
            tpm |= k == RegionKind::Device
                && r == Range {
                    base: 0xc00_0000,
                    size: 0x5000,
                }
        })
        .unwrap();
        assert!(tpm, "platform-bus child translated through ranges");
        assert_eq!(
            stdout_uart(EL2_V3),
            Some(StdoutUart {
                region: Range {
                    base: 0x900_0000,
                    size: 0x1000
                },
                kind: UartKind::Pl011
            })
        );
        assert!(for_each_region(&EL2_V3[..100], &mut |_, _| {}).is_err());
    }

    #[test]
    fn largest_free_picks_the_biggest_gap() {
        let mem = [Range {
            base: 0x4000_0000,
            size: 0x4000_0000,
        }];
        let holes = [
            Range {
                base: 0x4020_0000,
                size: 0x20_0000,
            }, // kernel
            Range {
                base: 0x4800_0000,
                size: 0x10_0000,
            }, // dtb
        ];
        assert_eq!(
            largest_free(&mem, &holes),
            Some(Range {
                base: 0x4810_0000,
                size: 0x8000_0000 - 0x4810_0000
            })
        );
        assert_eq!(
            largest_free(
                &mem,
                &[Range {
                    base: 0,
                    size: u64::MAX
                }]
            ),
            None
        );
        assert_eq!(largest_free(&[], &holes), None);
    }
}
