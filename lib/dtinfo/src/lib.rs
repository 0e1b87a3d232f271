//! The platform as the device tree describes it, read with the `fdt` crate.
//!
//! Owns turning a DTB from outside (QEMU, firmware, U-Boot) into a typed [`Platform`]: memory,
//! reserved ranges, `/chosen`, the interrupt controller, the timer, PSCI, CPUs and the platform
//! devices with their MMIO regions (translated through `simple-bus` `ranges`) and interrupts.
//!
//! `fdt` 0.1.5 is the design card's reader, but it trusts the blob: malformed structure blocks
//! reach `unwrap`s inside it, and its `interrupts()` helper cannot decode GICv3's 3-cell
//! specifiers. So [`Platform::parse`] first checks the whole blob itself ([`validate`]: header
//! bounds, token stream, name and string-table bounds, the size of cell-count properties), and
//! decodes `interrupts` from the raw property with the inherited `interrupt-parent` and its
//! `#interrupt-cells`. Nothing here panics on any input.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod early;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod validate;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use fdt::Fdt;
use fdt::node::FdtNode;

pub use validate::{strip_nops, validate};

/// A physical address range.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    /// Base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Range {
    /// One past the last byte, saturating.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// Why a DTB was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtError {
    /// Header missing, bad magic, or sizes/offsets outside the blob.
    BadHeader(&'static str),
    /// The structure block is malformed at this byte offset.
    BadStructure(&'static str, usize),
    /// A required node or property is missing or unusable.
    Missing(&'static str),
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtError::BadHeader(w) => write!(f, "bad DTB header: {w}"),
            DtError::BadStructure(w, off) => {
                write!(f, "bad DTB structure at struct offset {off:#x}: {w}")
            }
            DtError::Missing(w) => write!(f, "DT lacks {w}"),
        }
    }
}

/// How PSCI is called.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// SMC conduit.
    Smc,
    /// HVC conduit.
    Hvc,
}

/// The interrupt controller.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Gic {
    /// GICv2: distributor and CPU interface.
    V2 {
        /// GICD.
        dist: Range,
        /// GICC.
        cpu: Range,
    },
    /// GICv3: distributor and the (first) redistributor region.
    V3 {
        /// GICD.
        dist: Range,
        /// GICR region.
        redist: Range,
    },
}

/// The Raspberry Pi's interrupt controllers (no GIC): the BCM2836 per-core "local" controller
/// (`brcm,bcm2836-l1-intc`: the architected timers, mailboxes, the GPU's cascade, the PMU)
/// and the BCM2835 ARMCTRL controller behind it (`brcm,bcm2836-armctrl-ic`: the peripherals).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bcm2836Intc {
    /// The local controller's registers.
    pub local: Range,
    /// The ARMCTRL controller's registers, when the DT has one.
    pub armctrl: Option<Range>,
}

/// Interrupt numbers on a BCM2836 platform: one flat space for both controllers, as the kernel
/// numbers them (the DT's specifiers are per controller).
pub mod bcm_irq {
    /// Local controller interrupts 0..=9 keep their number (0 CNTPSIRQ, 1 CNTPNSIRQ,
    /// 2 CNTHPIRQ, 3 CNTVIRQ, 4..=7 mailboxes, 8 GPU, 9 PMU: BCM2836 ARM-local peripherals,
    /// "Core interrupt sources").
    pub const LOCAL_COUNT: u32 = 10;
    /// ARMCTRL interrupt (bank, n) is `ARMCTRL_BASE + bank * 32 + n` (bank 0: the basic
    /// pending register's ARM interrupts, banks 1 and 2: GPU interrupts 0..=31 and 32..=63,
    /// Linux's bcm2835 binding).
    pub const ARMCTRL_BASE: u32 = 32;
    /// The local controller's GPU interrupt: the ARMCTRL controller's cascade.
    pub const GPU: u32 = 8;
}

/// The architected timer's interrupts (GIC INTIDs, or [`bcm_irq`] numbers), from
/// `arm,armv8-timer` or `arm,armv7-timer` (the same timer in a 64-bit CPU's DT).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Secure physical timer.
    pub sec_phys: u32,
    /// Non-secure physical timer.
    pub phys: u32,
    /// Virtual timer (what EL1 uses).
    pub virt: u32,
    /// Hypervisor timer, when given.
    pub hyp: Option<u32>,
}

/// A CPU node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// MPIDR affinity bits from `reg`.
    pub mpidr: u64,
    /// `enable-method`, if any.
    pub enable_method: Option<String>,
    /// `cpu-release-addr` (spin-table: a 64-bit value whatever the cell count, as Linux
    /// reads it), if any.
    pub release_addr: Option<u64>,
}

/// A device node that becomes a platform device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtDevice {
    /// Node name with unit address (`pl011@9000000`).
    pub name: String,
    /// Full path (`/pl011@9000000`, `/platform-bus@c000000/tpm_tis@0`).
    pub path: String,
    /// `compatible` strings, most specific first.
    pub compatible: Vec<String>,
    /// `reg` regions, in CPU physical addresses.
    pub regions: Vec<Range>,
    /// Interrupts as GIC INTIDs (SPI n → 32+n, PPI n → 16+n).
    pub irqs: Vec<u32>,
    /// `status` is absent, "okay" or "ok".
    pub enabled: bool,
    /// Usable by the secure world: `secure-status` is "okay" (or, when absent, `status` is),
    /// per the DT binding for secure devices (`Documentation/devicetree/bindings/arm/secure.txt`).
    pub secure_enabled: bool,
    /// `phandle`, if the node has one.
    pub phandle: Option<u32>,
    /// The first `gpios` entry as (controller phandle, pin), for `gpio-poweroff`/`gpio-restart`.
    pub gpio: Option<(u32, u32)>,
    /// A TPM's measured-boot log: `linux,sml-base` (u64) and `linux,sml-size` (u32), both
    /// present, the size not zero (tpm-common.yaml; Linux's eventlog/of.c refuses the rest).
    pub sml: Option<Range>,
}

/// Everything the kernel needs from the DT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `model`.
    pub model: String,
    /// RAM from the memory nodes the normal world may use (`status` okay or absent).
    pub memory: Vec<Range>,
    /// Memory nodes for the secure world only (`status = "disabled"`,
    /// `secure-status = "okay"`): never normal-world RAM.
    pub secure_memory: Vec<Range>,
    /// `/memreserve/` entries and `/reserved-memory` children with `reg`.
    pub reserved: Vec<Range>,
    /// The `/reserved-memory` children without `no-map` (also in `reserved`): RAM the OS must
    /// not allocate but may map — buffers it shares with firmware, like the TPM's CRB
    /// (`bindings/reserved-memory/reserved-memory.yaml`).
    pub reserved_mapped: Vec<Range>,
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/stdout-path` resolved to a node path (options after `:` dropped).
    pub stdout_path: Option<String>,
    /// The initramfs the loader put in RAM (`/chosen` `linux,initrd-start` / `-end`), when
    /// both are there, the start below the end.
    pub initrd: Option<Range>,
    /// The interrupt controller.
    pub gic: Option<Gic>,
    /// The Raspberry Pi's interrupt controllers, on a platform without a GIC.
    pub bcm2836: Option<Bcm2836Intc>,
    /// The architected timer.
    pub timer: Option<Timer>,
    /// `/psci` method when the node is compatible with PSCI 0.2 or later.
    pub psci: Option<PsciMethod>,
    /// CPUs.
    pub cpus: Vec<Cpu>,
    /// Devices: children of `/` and of `simple-bus` nodes that have a `compatible`.
    pub devices: Vec<DtDevice>,
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn read_cells(b: &[u8], cells: usize) -> Option<u64> {
    match cells {
        1 => be32(b).map(u64::from),
        2 => Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?)),
        _ => None,
    }
}

fn prop_u32(node: FdtNode<'_, '_>, name: &str) -> Option<u32> {
    node.property(name).and_then(|p| be32(p.value))
}

fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let p = node.property(name)?;
    core::str::from_utf8(p.value)
        .ok()
        .map(|s| s.trim_end_matches('\0'))
}

fn str_list<'a>(node: FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
    node.property(name)
        .and_then(|p| core::str::from_utf8(p.value).ok())
        .map(|s| s.split('\0').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

#[derive(Copy, Clone)]
struct Cells {
    addr: usize,
    size: usize,
}

fn cells_of(node: FdtNode<'_, '_>) -> Cells {
    // Defaults per the DT spec (2 address cells, 1 size cell) when a parent omits them.
    Cells {
        addr: prop_u32(node, "#address-cells").map_or(2, |v| v as usize),
        size: prop_u32(node, "#size-cells").map_or(1, |v| v as usize),
    }
}

/// A `ranges` entry: child bus address → parent bus address.
#[derive(Copy, Clone, Debug)]
struct Window {
    child: u64,
    parent: u64,
    size: u64,
}

/// Decodes `reg` with the parent's cell sizes and translates it through the bus windows
/// (`None`: the parent is `/`, addresses are CPU addresses). Needs no allocation.
fn reg_iter<'a>(
    node: FdtNode<'_, 'a>,
    cells: Cells,
    windows: Option<&'a [Window]>,
) -> impl Iterator<Item = Range> + 'a {
    let stride = (cells.addr + cells.size) * 4;
    let usable = stride != 0 && cells.addr <= 2 && cells.size <= 2;
    let value: &'a [u8] = match node.property("reg") {
        Some(p) if usable => p.value,
        _ => &[],
    };
    value.chunks_exact(stride.max(1)).filter_map(move |c| {
        let base = read_cells(c, cells.addr)?;
        let size = if cells.size == 0 {
            0
        } else {
            read_cells(&c[cells.addr * 4..], cells.size)?
        };
        let base = match windows {
            None => base,
            Some(ws) => {
                let w = ws.iter().find(|w| {
                    base >= w.child && base.saturating_add(size) <= w.child.saturating_add(w.size)
                })?;
                w.parent.checked_add(base - w.child)?
            }
        };
        Some(Range { base, size })
    })
}

fn regions(node: FdtNode<'_, '_>, cells: Cells, windows: Option<&[Window]>) -> Vec<Range> {
    reg_iter(node, cells, windows).collect()
}

/// Most `ranges` windows of one bus that are honoured.
const MAX_WINDOWS: usize = 8;

/// A `simple-bus` node's `ranges` as windows (`None`: no `ranges`, children are not
/// CPU-addressable). The bus's parent is `/`, with `parent_cells` address cells.
fn bus_windows(
    bus: FdtNode<'_, '_>,
    parent_cells: usize,
) -> Option<([Window; MAX_WINDOWS], usize)> {
    let cells = cells_of(bus);
    let r = bus.property("ranges")?;
    let mut out = [Window {
        child: 0,
        parent: 0,
        size: 0,
    }; MAX_WINDOWS];
    let stride = (cells.addr + parent_cells + cells.size) * 4;
    if r.value.is_empty() {
        out[0].size = u64::MAX; // empty `ranges`: identity
        return Some((out, 1));
    }
    let mut n = 0;
    for c in r.value.chunks_exact(stride).take(MAX_WINDOWS) {
        let (Some(child), Some(parent), Some(size)) = (
            read_cells(c, cells.addr),
            read_cells(&c[cells.addr * 4..], parent_cells),
            read_cells(&c[(cells.addr + parent_cells) * 4..], cells.size),
        ) else {
            continue;
        };
        out[n] = Window {
            child,
            parent,
            size,
        };
        n += 1;
    }
    Some((out, n))
}

/// What kind of interrupt controller an `interrupt-parent` is: how its specifiers read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum IrqDomain {
    /// A GIC (or anything else): GIC-style specifiers.
    Gic,
    /// `brcm,bcm2836-l1-intc`: <number flags>.
    Bcm2836Local,
    /// `brcm,bcm2836-armctrl-ic` / `brcm,bcm2835-armctrl-ic`: <bank number>.
    Bcm2835Armctrl,
}

impl IrqDomain {
    fn of(compat: &[&str]) -> IrqDomain {
        if compat.contains(&"brcm,bcm2836-l1-intc") {
            IrqDomain::Bcm2836Local
        } else if compat
            .iter()
            .any(|c| *c == "brcm,bcm2836-armctrl-ic" || *c == "brcm,bcm2835-armctrl-ic")
        {
            IrqDomain::Bcm2835Armctrl
        } else {
            IrqDomain::Gic
        }
    }
}

/// Interrupt specifiers → interrupt numbers: GIC INTIDs for GIC-style 3-cell (and 2-cell:
/// type, number) specifiers, [`bcm_irq`] numbers for the Raspberry Pi's controllers. Anything
/// else yields nothing rather than a guess.
fn decode_irqs(raw: &[u8], cells: usize, domain: IrqDomain) -> Vec<u32> {
    if !(2..=4).contains(&cells) {
        return Vec::new();
    }
    raw.chunks_exact(cells * 4)
        .filter_map(|c| {
            let a = be32(c)?;
            let b = be32(&c[4..])?;
            match (domain, a) {
                (IrqDomain::Gic, 0) if b < 988 => Some(b + 32), // SPI
                (IrqDomain::Gic, 1) if b < 16 => Some(b + 16),  // PPI
                (IrqDomain::Bcm2836Local, n) if n < bcm_irq::LOCAL_COUNT => Some(n),
                (IrqDomain::Bcm2835Armctrl, bank) if bank <= 2 && b < 32 => {
                    Some(bcm_irq::ARMCTRL_BASE + bank * 32 + b)
                }
                _ => None,
            }
        })
        .collect()
}

fn is_enabled(node: FdtNode<'_, '_>) -> bool {
    matches!(prop_str(node, "status"), None | Some("okay") | Some("ok"))
}

fn is_secure_enabled(node: FdtNode<'_, '_>) -> bool {
    match prop_str(node, "secure-status") {
        Some(s) => matches!(s, "okay" | "ok"),
        None => is_enabled(node),
    }
}

/// `/chosen`'s `linux,initrd-start` and `-end`: each one or two cells (Linux reads either,
/// `drivers/of/fdt.c`), the end after the start.
fn initrd_of(chosen: FdtNode<'_, '_>) -> Option<Range> {
    let read = |name: &str| {
        let v = chosen.property(name)?.value;
        match v.len() {
            4 => read_cells(v, 1),
            8 => read_cells(v, 2),
            _ => None,
        }
    };
    let (start, end) = (read("linux,initrd-start")?, read("linux,initrd-end")?);
    (end > start).then_some(Range {
        base: start,
        size: end - start,
    })
}

fn sml_of(node: FdtNode<'_, '_>) -> Option<Range> {
    let b = node.property("linux,sml-base")?.value;
    let s = node.property("linux,sml-size")?.value;
    if b.len() != 8 || s.len() != 4 {
        return None;
    }
    let base = u64::from(be32(b)?) << 32 | u64::from(be32(&b[4..])?);
    let size = u64::from(be32(s)?);
    (size > 0 && base.checked_add(size).is_some()).then_some(Range { base, size })
}

fn gpio_of(node: FdtNode<'_, '_>) -> Option<(u32, u32)> {
    let v = node.property("gpios")?.value;
    Some((be32(v)?, be32(v.get(4..)?)?))
}

impl Platform {
    /// The initramfs, when the loader's word about it can be believed: wholly inside one RAM
    /// range and clear of `image` (the kernel's own). `Err` names why it cannot, with the range
    /// the loader named; `Ok(None)` when there is none.
    pub fn initrd_in_ram(&self, image: Range) -> Result<Option<Range>, (&'static str, Range)> {
        let Some(r) = self.initrd else {
            return Ok(None);
        };
        if !self
            .memory
            .iter()
            .any(|m| r.base >= m.base && r.end() <= m.end())
        {
            return Err(("not inside RAM", r));
        }
        if r.overlaps(&image) {
            return Err(("over the kernel image", r));
        }
        Ok(Some(r))
    }

    /// Validates and reads a DTB.
    pub fn parse(blob: &[u8]) -> Result<Platform, DtError> {
        let blob = validate(blob)?;
        let fdt = Fdt::new(blob).map_err(|_| DtError::BadHeader("rejected by fdt"))?;
        let root = fdt.find_node("/").ok_or(DtError::Missing("a root node"))?;
        let root_cells = cells_of(root);
        let root_irq_parent = prop_u32(root, "interrupt-parent");

        let mut p = Platform {
            model: prop_str(root, "model").unwrap_or("").into(),
            memory: Vec::new(),
            secure_memory: Vec::new(),
            reserved: fdt
                .memory_reservations()
                .map(|r| Range {
                    base: r.address() as u64,
                    size: r.size() as u64,
                })
                .filter(|r| r.size != 0)
                .collect(),
            reserved_mapped: Vec::new(),
            bootargs: None,
            stdout_path: None,
            initrd: None,
            gic: None,
            bcm2836: None,
            timer: None,
            psci: None,
            cpus: Vec::new(),
            devices: Vec::new(),
        };

        // #interrupt-cells and kind of an interrupt controller, by phandle.
        let irq_cells = |phandle: Option<u32>| -> (usize, IrqDomain) {
            let node = phandle.and_then(|ph| fdt.find_phandle(ph));
            let cells = node
                .and_then(|n| prop_u32(n, "#interrupt-cells"))
                .map_or(0, |c| c as usize);
            let domain = node.map_or(IrqDomain::Gic, |n| {
                IrqDomain::of(&str_list(n, "compatible"))
            });
            (cells, domain)
        };

        for node in root.children() {
            let base_name = node.name.split('@').next().unwrap_or("");
            let compat = str_list(node, "compatible");
            if prop_str(node, "device_type") == Some("memory") {
                let ranges = regions(node, root_cells, None)
                    .into_iter()
                    .filter(|r| r.size != 0);
                if is_enabled(node) {
                    p.memory.extend(ranges);
                } else if is_secure_enabled(node) {
                    p.secure_memory.extend(ranges);
                }
                continue;
            }
            match base_name {
                "chosen" => {
                    p.bootargs = prop_str(node, "bootargs").map(String::from);
                    p.stdout_path = prop_str(node, "stdout-path")
                        .map(|s| s.split(':').next().unwrap_or(s))
                        .map(|s| resolve_alias(&fdt, s));
                    p.initrd = initrd_of(node);
                    continue;
                }
                "reserved-memory" => {
                    let cells = cells_of(node);
                    for child in node.children() {
                        let r = regions(child, cells, None);
                        if child.property("no-map").is_none() {
                            p.reserved_mapped.extend(r.iter().copied());
                        }
                        p.reserved.extend(r);
                    }
                    continue;
                }
                "cpus" => {
                    let cells = cells_of(node);
                    for cpu in node.children() {
                        if prop_str(cpu, "device_type") != Some("cpu") {
                            continue;
                        }
                        let Some(reg) = cpu.property("reg") else {
                            continue;
                        };
                        let Some(mpidr) = read_cells(reg.value, cells.addr) else {
                            continue;
                        };
                        let release_addr =
                            cpu.property("cpu-release-addr")
                                .and_then(|r| match r.value.len() {
                                    8 => read_cells(r.value, 2),
                                    4 => read_cells(r.value, 1),
                                    _ => None,
                                });
                        p.cpus.push(Cpu {
                            mpidr,
                            enable_method: prop_str(cpu, "enable-method").map(String::from),
                            release_addr,
                        });
                    }
                    continue;
                }
                "psci" => {
                    if compat
                        .iter()
                        .any(|c| *c == "arm,psci-0.2" || *c == "arm,psci-1.0")
                    {
                        p.psci = match prop_str(node, "method") {
                            Some("smc") => Some(PsciMethod::Smc),
                            Some("hvc") => Some(PsciMethod::Hvc),
                            _ => None,
                        };
                    }
                    continue;
                }
                _ => {}
            }
            let irq_parent = prop_u32(node, "interrupt-parent").or(root_irq_parent);
            let irqs = node
                .property("interrupts")
                .map(|prop| {
                    let (cells, domain) = irq_cells(irq_parent);
                    decode_irqs(prop.value, cells, domain)
                })
                .unwrap_or_default();
            if (compat.contains(&"arm,armv8-timer") || compat.contains(&"arm,armv7-timer"))
                && irqs.len() >= 3
            {
                p.timer = Some(Timer {
                    sec_phys: irqs[0],
                    phys: irqs[1],
                    virt: irqs[2],
                    hyp: irqs.get(3).copied(),
                });
            }
            let regs = regions(node, root_cells, None);
            if p.gic.is_none() && node.property("interrupt-controller").is_some() {
                if compat.contains(&"arm,gic-v3") && regs.len() >= 2 {
                    p.gic = Some(Gic::V3 {
                        dist: regs[0],
                        redist: regs[1],
                    });
                } else if compat.iter().any(|c| {
                    matches!(
                        *c,
                        "arm,cortex-a15-gic" | "arm,gic-400" | "arm,cortex-a9-gic"
                    )
                }) && regs.len() >= 2
                {
                    p.gic = Some(Gic::V2 {
                        dist: regs[0],
                        cpu: regs[1],
                    });
                }
            }
            if compat.is_empty() {
                continue;
            }
            p.devices.push(DtDevice {
                name: node.name.into(),
                path: alloc::format!("/{}", node.name),
                compatible: compat.iter().map(|s| String::from(*s)).collect(),
                regions: regs,
                irqs,
                enabled: is_enabled(node),
                secure_enabled: is_secure_enabled(node),
                phandle: prop_u32(node, "phandle"),
                gpio: gpio_of(node),
                sml: sml_of(node),
            });
            if compat.contains(&"simple-bus") {
                p.add_bus_children(node, irq_parent, &irq_cells, root_cells.addr);
            }
        }
        if p.memory.is_empty() {
            return Err(DtError::Missing("a memory node with a non-empty reg"));
        }
        Ok(p)
    }

    fn add_bus_children(
        &mut self,
        bus: FdtNode<'_, '_>,
        irq_parent: Option<u32>,
        irq_cells: &dyn Fn(Option<u32>) -> (usize, IrqDomain),
        parent_cells: usize,
    ) {
        let cells = cells_of(bus);
        // No `ranges` at all: children are not CPU-addressable.
        let Some((windows, n)) = bus_windows(bus, parent_cells) else {
            return;
        };
        let windows = &windows[..n];
        let mut armctrl = None;
        for child in bus.children() {
            let compat = str_list(child, "compatible");
            if compat.is_empty() {
                continue;
            }
            let parent = prop_u32(child, "interrupt-parent").or(irq_parent);
            let irqs = child
                .property("interrupts")
                .map(|prop| {
                    let (cells, domain) = irq_cells(parent);
                    decode_irqs(prop.value, cells, domain)
                })
                .unwrap_or_default();
            let regs = regions(child, cells, Some(windows));
            if child.property("interrupt-controller").is_some()
                && is_enabled(child)
                && let Some(first) = regs.first().copied()
            {
                match IrqDomain::of(&compat) {
                    IrqDomain::Bcm2836Local if self.bcm2836.is_none() => {
                        self.bcm2836 = Some(Bcm2836Intc {
                            local: first,
                            armctrl: None,
                        });
                    }
                    IrqDomain::Bcm2835Armctrl => armctrl = armctrl.or(Some(first)),
                    _ => {}
                }
            }
            self.devices.push(DtDevice {
                name: child.name.into(),
                path: alloc::format!("/{}/{}", bus.name, child.name),
                compatible: compat.iter().map(|s| String::from(*s)).collect(),
                regions: regs,
                irqs,
                enabled: is_enabled(child),
                secure_enabled: is_secure_enabled(child),
                phandle: prop_u32(child, "phandle"),
                gpio: gpio_of(child),
                sml: sml_of(child),
            });
        }
        if let Some(b) = self.bcm2836.as_mut() {
            b.armctrl = b.armctrl.or(armctrl);
        }
    }

    /// The device at a DT path.
    pub fn device_at(&self, path: &str) -> Option<&DtDevice> {
        self.devices.iter().find(|d| d.path == path)
    }

    /// The first enabled device with a compatible string.
    pub fn compatible(&self, compat: &str) -> Option<&DtDevice> {
        self.devices
            .iter()
            .find(|d| d.enabled && d.compatible.iter().any(|c| c == compat))
    }

    /// The first device the secure world may use with a compatible string.
    pub fn secure_compatible(&self, compat: &str) -> Option<&DtDevice> {
        self.devices
            .iter()
            .find(|d| d.secure_enabled && d.compatible.iter().any(|c| c == compat))
    }

    /// The device with a phandle.
    pub fn by_phandle(&self, phandle: u32) -> Option<&DtDevice> {
        self.devices.iter().find(|d| d.phandle == Some(phandle))
    }

    /// The stdout device, if `/chosen/stdout-path` names one.
    pub fn stdout(&self) -> Option<&DtDevice> {
        self.device_at(self.stdout_path.as_deref()?)
    }

    /// Where to release a spin-table CPU (`enable-method = "spin-table"`): its
    /// `cpu-release-addr`, which must be 8-byte aligned and inside memory the OS does not
    /// allocate (a `/memreserve/` or `/reserved-memory` range inside RAM: the board's spin
    /// loop reads it), per Linux's arm64 booting.rst.
    pub fn spin_release_addr(&self, cpu: &Cpu) -> Result<u64, &'static str> {
        if cpu.enable_method.as_deref() != Some("spin-table") {
            return Err("not a spin-table CPU");
        }
        let a = cpu
            .release_addr
            .ok_or("spin-table CPU without cpu-release-addr")?;
        if !a.is_multiple_of(8) {
            return Err("cpu-release-addr not 8-byte aligned");
        }
        let inside = |r: &Range| a >= r.base && a.checked_add(8).is_some_and(|e| e <= r.end());
        if !self.memory.iter().any(inside) {
            return Err("cpu-release-addr outside RAM");
        }
        if !self.reserved.iter().any(inside) {
            return Err("cpu-release-addr not in reserved memory");
        }
        Ok(a)
    }

    /// Total RAM in bytes.
    pub fn memory_size(&self) -> u64 {
        self.memory.iter().map(|r| r.size).sum()
    }
}

/// Resolves an alias (`serial0`) to a path; paths pass through.
fn resolve_alias(fdt: &Fdt<'_>, name: &str) -> String {
    if name.starts_with('/') {
        return name.into();
    }
    fdt.find_node("/aliases")
        .and_then(|a| prop_str(a, name))
        .unwrap_or(name)
        .into()
}

/// Free RAM: `memory` minus every range in `holes`, as sorted, non-overlapping ranges.
pub fn subtract(memory: &[Range], holes: &[Range]) -> Vec<Range> {
    let mut free: Vec<Range> = memory.to_vec();
    for hole in holes {
        let mut next = Vec::new();
        for r in free {
            if hole.end() <= r.base || hole.base >= r.end() {
                next.push(r);
                continue;
            }
            if hole.base > r.base {
                next.push(Range {
                    base: r.base,
                    size: hole.base - r.base,
                });
            }
            if hole.end() < r.end() {
                next.push(Range {
                    base: hole.end(),
                    size: r.end() - hole.end(),
                });
            }
        }
        free = next;
    }
    free.sort();
    free
}

#[cfg(test)]
mod tests;
