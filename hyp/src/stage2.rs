//! The host stage-2 (Linux pKVM's host_stage2 in mem_protect.c): an identity map of what the
//! host may touch. Host RAM (RAM minus the hyp's memory and secure carve-outs) read-write;
//! kernel text and read-only data read-only (the hyp runs that code); host MMIO as device
//! memory. The hyp's memory, its FF-A buffers and every secure-only region are absent.

use crate::Config;
use aarch64_paging::descriptor::Stage2Attributes as S2;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{MemoryRegion, Stage2};
use hyp_policy::Access;
use pageown::Ownership;

/// 39-bit IPA space, starting at level 1 (no concatenated root tables in aarch64-paging).
const IPA_BITS: u32 = 39;

const RAM_RW: S2 = S2::VALID
    .union(S2::MEMATTR_NORMAL_OUTER_WB)
    .union(S2::MEMATTR_NORMAL_INNER_WB)
    .union(S2::SH_INNER)
    .union(S2::S2AP_ACCESS_RW)
    .union(S2::ACCESS_FLAG);
const RAM_RO: S2 = S2::VALID
    .union(S2::MEMATTR_NORMAL_OUTER_WB)
    .union(S2::MEMATTR_NORMAL_INNER_WB)
    .union(S2::SH_INNER)
    .union(S2::S2AP_ACCESS_RO)
    .union(S2::ACCESS_FLAG);
/// Device-nGnRE is MemAttr 0b0001 (outer bits 00): aarch64-paging names it
/// MEMATTR_DEVICE_nGnRE, numerically the same as its MEMATTR_NORMAL_INNER_NC.
const DEVICE: S2 = S2::VALID
    .union(S2::MEMATTR_DEVICE_nGnRE)
    .union(S2::S2AP_ACCESS_RW)
    .union(S2::ACCESS_FLAG)
    .union(S2::XN);

/// The live host stage-2.
pub struct HostStage2 {
    map: IdMap<Stage2>,
    /// VTCR_EL2 for it.
    pub vtcr: u64,
    /// (RAM ranges, MMIO ranges, hidden ranges) for the report.
    pub summary: (u64, u64, u64),
}

fn pa_range() -> u64 {
    (arm_sysregs::el1::accessors::read_id_aa64mmfr0_el1().bits() & 0xf).min(5)
}

impl HostStage2 {
    /// Builds it from the configuration and the ownership tracker, as `lib/hyp-policy`'s
    /// layout says.
    pub fn build(cfg: &Config, own: &Ownership) -> Result<HostStage2, &'static str> {
        let view = hyp_policy::HostView {
            mmio: cfg.host_mmio.clone(),
            secure: cfg.secure.clone(),
        };
        let layout = hyp_policy::stage2_layout(own.host_ranges(), cfg.kernel_ro, &view, IPA_BITS)
            .map_err(|_| "range beyond the 39-bit IPA space")?;
        let mut map = IdMap::new(1, Stage2);
        let (mut ram, mut mmio) = (0, 0);
        for m in &layout {
            let attrs = match m.access {
                Access::RamRw => {
                    ram += 1;
                    RAM_RW
                }
                Access::RamRo => RAM_RO,
                Access::Device => {
                    mmio += 1;
                    DEVICE
                }
            };
            map.map_range(&MemoryRegion::new(m.base as usize, m.end as usize), attrs)
                .map_err(|_| "aarch64-paging refused a stage-2 mapping")?;
        }
        map.mark_active();
        let vtcr = u64::from(64 - IPA_BITS)
            | (1 << 6)
            | (1 << 8)
            | (1 << 10)
            | (3 << 12)
            | (pa_range() << 16)
            | (1 << 31);
        Ok(HostStage2 {
            map,
            vtcr,
            summary: (ram, mmio, (cfg.hyp.len() + cfg.secure.len()) as u64),
        })
    }

    /// VTTBR_EL2 (VMID 0: the host).
    pub fn vttbr(&self) -> u64 {
        self.map.root_address().0 as u64
    }
}

impl HostStage2 {
    /// Gives the host back, or takes away, access to RAM pages (FF-A lend and reclaim).
    pub fn set_host_access(
        &mut self,
        base: u64,
        pages: u64,
        access: bool,
    ) -> Result<(), &'static str> {
        let end = pages
            .checked_mul(4096)
            .and_then(|l| base.checked_add(l))
            .ok_or("range overflows")?;
        let flags = if access { RAM_RW } else { S2::empty() };
        self.map
            .map_range(&MemoryRegion::new(base as usize, end as usize), flags)
            .map_err(|_| "aarch64-paging refused the stage-2 change")?;
        // Every CPU drops the host's stale translations, so none keeps the old permission.
        arch::tlbi_vmalls12e1is();
        Ok(())
    }
}
