//! Memory management: the boot CPU's first page table, and the kernel's real one.
//!
//! [`early_enable`] runs with the MMU off and no heap. It builds a coarse identity map in .bss
//! (1 GiB blocks, 2 MiB where RAM and MMIO share a gigabyte) from the DT's RAM and device
//! regions, and turns on the MMU and caches, so that locks (exclusive accesses) and the heap
//! work on cacheable memory, as the architecture requires.
//!
//! [`init_final`] (the `early` initcall `mm`) builds the real identity map with
//! `aarch64-paging`: kernel text read-only and executable, rodata read-only, data/bss/stack and
//! the rest of RAM read-write and never executable, DT device regions as Device-nGnRE; nothing
//! else is mapped. It switches TTBR0_EL1 to it and invalidates the TLB.

pub mod heap;

use aarch64_paging::descriptor::El1Attributes as A;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{El1And0, MemoryRegion};
use core::arch::asm;
use core::cell::UnsafeCell;
use dtinfo::early::RegionKind;
use dtinfo::{Platform, Range};

/// MAIR_EL1: index 0 Device-nGnRE, index 1 Normal write-back RW-allocate, index 2 Device-nGnRnE.
pub const MAIR: u64 = 0x04 | (0xff << 8);
const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;
/// 39-bit VA: TTBR0 walks start at level 1 with 512 x 1 GiB entries.
const VA_BITS: u64 = 39;
const ASID: usize = 1;
/// SCTLR_EL1: RES1 bits | M | C | SA | SA0 | I.
pub const SCTLR_MMU_ON: u64 = 0x30d0_0800 | 1 | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12);

/// Early (1 GiB / 2 MiB) block descriptors: valid block, AttrIndx, inner shareable, AF.
const EARLY_NORMAL: u64 = 1 | (1 << 2) | (3 << 8) | (1 << 10);
const EARLY_DEVICE: u64 = 1 | (1 << 10) | (1 << 53) | (1 << 54);
const L2_POOL: usize = 4;

#[repr(C, align(4096))]
struct Table([u64; 512]);

struct EarlyTables {
    l1: Table,
    l2: [Table; L2_POOL],
}

struct EarlyCell(UnsafeCell<EarlyTables>);

// SAFETY: written only by the boot CPU in `early_enable`, with the MMU off, before any other
// CPU runs; afterwards only the table walker reads it until `init_final` replaces it.
unsafe impl Sync for EarlyCell {}

static EARLY: EarlyCell = EarlyCell(UnsafeCell::new(EarlyTables {
    l1: Table([0; 512]),
    l2: [const { Table([0; 512]) }; L2_POOL],
}));

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

/// The image's runtime bounds: (start, end of text, end of rodata, end).
pub fn image_layout() -> (u64, u64, u64, u64) {
    let a = |p: *const u8| p as u64;
    (
        a(&raw const __image_start),
        a(&raw const __text_end),
        a(&raw const __rodata_end),
        a(&raw const __image_end),
    )
}

/// The whole image as a range.
pub fn image_range() -> Range {
    let (start, _, _, end) = image_layout();
    Range {
        base: start,
        size: end - start,
    }
}

/// The CPU's physical address range (ID_AA64MMFR0_EL1.PARange), at most 48 bits.
pub fn pa_range_bits() -> u64 {
    let mmfr0 = arm_sysregs::el1::accessors::read_id_aa64mmfr0_el1().bits();
    // TCR.IPS takes the same encoding as ID_AA64MMFR0_EL1.PARange (max 48 bits: 0b101).
    (mmfr0 & 0xf).min(5)
}

/// TCR_EL1 for a 39-bit TTBR0 space, 4 KiB granule, inner-shareable write-back walks, TTBR1
/// walks disabled, IPS from the CPU's PA range.
pub fn tcr() -> u64 {
    (64 - VA_BITS) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (pa_range_bits() << 32)
}

/// Data-cache maintenance to the point of coherency, by VA.
#[derive(Copy, Clone)]
enum DcOp {
    /// DC IVAC: drop lines (stale data the MMU-off writes bypassed).
    Invalidate,
    /// DC CVAC: write lines back (for a reader with the MMU off).
    Clean,
}

fn dcache(r: Range, op: DcOp) {
    match op {
        // SAFETY: DC IVAC is only used while the MMU is off (on the image, and on the DTB after
        // NOPs were stripped), when no dirty data of ours can be in the cache.
        DcOp::Invalidate => unsafe { arch::invalidate(r.base, r.size) },
        DcOp::Clean => arch::clean_to_poc(r.base, r.size),
    }
}

/// Cleans the data cache to the point of coherency over `r` (for readers with the MMU off).
pub fn dcache_clean(r: Range) {
    dcache(r, DcOp::Clean);
}

/// Invalidates the data cache to the point of coherency over `r`, so that data written with
/// the MMU off is not hidden by stale lines once it is on.
///
/// # Safety
/// The MMU is off on this CPU and `r` holds no data written through a cacheable mapping (any
/// such line would be dropped, not written back).
pub unsafe fn dcache_invalidate_mmu_off(r: Range) {
    dcache(r, DcOp::Invalidate);
}

/// Why the first page table could not be built.
#[derive(Debug)]
pub enum EarlyError {
    /// The DT could not be read.
    Dt(dtinfo::DtError),
    /// No RAM covers the kernel image.
    ImageNotInRam,
}

/// Builds the coarse identity map from the DT and enables the MMU and caches.
///
/// # Safety
/// Boot CPU only, once, MMU off, before any other CPU runs.
pub unsafe fn early_enable(dtb: &[u8]) -> Result<(), EarlyError> {
    // SAFETY: the caller guarantees we are the only CPU and the only user of EARLY.
    let t = unsafe { &mut *EARLY.0.get() };
    // Per gigabyte: does it hold RAM / device MMIO?
    let mut ram = [false; 512];
    let mut dev = [false; 512];
    let mut image_in_ram = false;
    let image = image_range();
    let mut mark = |kind: RegionKind, r: Range| {
        if r.size == 0 || r.base >= 1 << VA_BITS {
            return;
        }
        let first = (r.base / GIB) as usize;
        let last = ((r.end().min(1 << VA_BITS) - 1) / GIB) as usize;
        for g in first..=last {
            match kind {
                RegionKind::Memory => ram[g] = true,
                RegionKind::Device => dev[g] = true,
                RegionKind::Reserved => {}
            }
        }
        if kind == RegionKind::Memory && r.base <= image.base && image.end() <= r.end() {
            image_in_ram = true;
        }
    };
    dtinfo::early::for_each_region(dtb, &mut mark).map_err(EarlyError::Dt)?;
    if !image_in_ram {
        return Err(EarlyError::ImageNotInRam);
    }
    let mut pool = 0;
    for g in 0..512 {
        let base = g as u64 * GIB;
        t.l1.0[g] = match (ram[g], dev[g]) {
            (false, false) => 0,
            (true, false) => base | EARLY_NORMAL,
            (false, true) => base | EARLY_DEVICE,
            (true, true) if pool < L2_POOL => {
                // Mixed gigabyte: 2 MiB blocks, RAM where RAM is, Device elsewhere.
                let l2 = &mut t.l2[pool];
                pool += 1;
                let mut ram2 = [false; 512];
                let _ = dtinfo::early::for_each_region(dtb, &mut |k, r| {
                    if k == RegionKind::Memory && r.end() > base && r.base < base + GIB {
                        let lo = (r.base.max(base) - base) / MIB2;
                        let hi = (r.end().min(base + GIB) - base).div_ceil(MIB2);
                        (lo..hi).for_each(|i| ram2[i as usize] = true);
                    }
                });
                for (i, e) in l2.0.iter_mut().enumerate() {
                    let b = base + i as u64 * MIB2;
                    *e = b | if ram2[i] { EARLY_NORMAL } else { EARLY_DEVICE };
                }
                (&raw const l2.0) as u64 | 0b11
            }
            // Out of level-2 tables: RAM wins (devices in this gigabyte wait for init_final).
            (true, true) => base | EARLY_NORMAL,
        };
    }
    // Drop any stale cache lines over what we wrote with the MMU off (image, .bss, tables).
    dcache(image, DcOp::Invalidate);
    // SAFETY: the table identity-maps the running image as normal memory and the UART as
    // device memory; the sequence is the architectural MMU enable (Arm ARM D8.2: program
    // MAIR/TCR/TTBR0, invalidate TLB and I-cache, then set SCTLR_EL1.M/C/I with ISBs).
    unsafe {
        asm!(
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "isb",
            "tlbi vmalle1",
            "ic iallu",
            "dsb nsh",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) tcr(),
            ttbr = in(reg) (&raw const t.l1.0) as u64,
            sctlr = in(reg) SCTLR_MMU_ON,
            options(nostack)
        );
    }
    Ok(())
}

/// What a secondary CPU loads to share the boot CPU's address space.
#[derive(Debug, Clone, Copy)]
pub struct MmuConfig {
    /// TTBR0_EL1 (root | ASID).
    pub ttbr0: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// SCTLR_EL1.
    pub sctlr: u64,
}

static KERNEL_MAP: spin::Once<spin::Mutex<IdMap<El1And0>>> = spin::Once::new();
static CONFIG: spin::Once<MmuConfig> = spin::Once::new();

/// The active configuration, once [`init_final`] ran.
pub fn config() -> Option<MmuConfig> {
    CONFIG.get().copied()
}

const NORMAL: A = A::VALID
    .union(A::ATTRIBUTE_INDEX_1)
    .union(A::INNER_SHAREABLE)
    .union(A::ACCESSED);
const DEVICE: A = A::VALID
    .union(A::ATTRIBUTE_INDEX_0)
    .union(A::ACCESSED)
    .union(A::PXN)
    .union(A::UXN);

fn page_round(r: Range) -> (usize, usize) {
    let start = r.base & !0xfff;
    let end = r.end().saturating_add(0xfff) & !0xfff;
    (start as usize, end as usize)
}

/// Mapping statistics for the boot report.
#[derive(Debug, Default, Clone, Copy)]
pub struct MapStats {
    /// RAM bytes mapped.
    pub ram: u64,
    /// Device regions mapped.
    pub devices: usize,
}

/// What the kernel maps of itself and the platform, identity (start, end, attributes): the
/// image by section, all RAM, every enabled DT device and the GIC. Every process's table holds
/// the same, privileged-only (no EL0 access, never executable at EL0).
pub fn kernel_regions(platform: &Platform) -> (alloc::vec::Vec<(u64, u64, A)>, MapStats) {
    let (start, text_end, rodata_end, end) = image_layout();
    let mut out = alloc::vec::Vec::new();
    let mut put = |s: u64, e: u64, flags: A| {
        if s < e {
            out.push((s, e, flags));
        }
    };
    put(start, text_end, NORMAL | A::READ_ONLY | A::UXN);
    put(
        text_end,
        rodata_end,
        NORMAL | A::READ_ONLY | A::PXN | A::UXN,
    );
    put(rodata_end, end, NORMAL | A::PXN | A::UXN);
    let mut stats = MapStats::default();
    for r in dtinfo::subtract(&platform.memory, &[image_range()]) {
        let (s, e) = page_round(r);
        put(s as u64, e as u64, NORMAL | A::PXN | A::UXN);
        stats.ram += r.size;
    }
    let gic_regions = match platform.gic {
        Some(dtinfo::Gic::V2 { dist, cpu }) => [Some(dist), Some(cpu)],
        Some(dtinfo::Gic::V3 { dist, redist }) => [Some(dist), Some(redist)],
        None => [None, None],
    };
    let device_regions = platform
        .devices
        .iter()
        .filter(|d| d.enabled)
        .flat_map(|d| d.regions.iter().copied())
        .chain(gic_regions.into_iter().flatten());
    for r in device_regions {
        if r.size == 0
            || platform
                .memory
                .iter()
                .any(|m| r.base < m.end() && m.base < r.end())
        {
            continue; // a "device" inside RAM is not mapped as device memory
        }
        let (s, e) = page_round(r);
        put(s as u64, e as u64, DEVICE);
        stats.devices += 1;
    }
    (out, stats)
}

/// Builds the kernel's identity map and switches to it.
pub fn init_final(platform: &Platform) -> Result<MapStats, &'static str> {
    let mut map = IdMap::with_asid(ASID, 1, El1And0);
    let (regions, stats) = kernel_regions(platform);
    for (s, e, flags) in regions {
        if e > 1 << VA_BITS {
            return Err("region beyond the 39-bit address space");
        }
        map.map_range(&MemoryRegion::new(s as usize, e as usize), flags)
            .map_err(|_| "aarch64-paging refused a mapping")?;
    }
    // SAFETY: the new map covers the image (text executable), all RAM, and every device the
    // kernel touches (the console, the GIC), with the same memory types as the early map, so
    // nothing in use becomes unmapped; the TLB is invalidated right after the switch.
    unsafe {
        map.activate();
    }
    arch::tlbi_vmalle1();
    let root = map.root_address().0 as u64;
    CONFIG.call_once(|| MmuConfig {
        ttbr0: root | ((ASID as u64) << 48),
        tcr: tcr(),
        mair: MAIR,
        sctlr: SCTLR_MMU_ON,
    });
    KERNEL_MAP.call_once(|| spin::Mutex::new(map));
    Ok(stats)
}

#[cfg(feature = "test-hooks")]
/// Maps `r` into the live kernel map (probes that reach for memory the kernel never maps).
pub fn map_extra(r: Range, device_memory: bool) -> Result<(), &'static str> {
    let Some(m) = KERNEL_MAP.get() else {
        return Err("no kernel map");
    };
    let (s, e) = page_round(r);
    let flags = if device_memory {
        DEVICE
    } else {
        NORMAL | A::PXN | A::UXN
    };
    m.lock()
        .map_range(&MemoryRegion::new(s, e), flags)
        .map_err(|_| "aarch64-paging refused the mapping")
}
