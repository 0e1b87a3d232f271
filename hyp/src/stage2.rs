//! The host stage-2 (Linux pKVM's host_stage2 in mem_protect.c): an identity map of what the
//! host may touch. Host RAM (RAM minus the hyp's memory and secure carve-outs) read-write;
//! kernel text and read-only data read-only (the hyp runs that code); host MMIO as device
//! memory. The hyp's memory, its FF-A buffers and every secure-only region are absent.

use crate::Config;
use aarch64_paging::descriptor::Stage2Attributes as S2;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{MemoryRegion, Stage2};
use pageown::Ownership;

/// 39-bit IPA space, starting at level 1 (no concatenated root tables in aarch64-paging).
const IPA_BITS: u64 = 39;

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

fn page_round(b: u64, s: u64) -> (usize, usize) {
    (
        (b & !0xfff) as usize,
        (b.saturating_add(s).saturating_add(0xfff) & !0xfff) as usize,
    )
}

impl HostStage2 {
    /// Builds it from the configuration and the ownership tracker.
    pub fn build(cfg: &Config, own: &Ownership) -> Result<HostStage2, &'static str> {
        let mut map = IdMap::new(1, Stage2);
        let mut put = |b: u64, s: u64, a: S2| -> Result<(), &'static str> {
            if s == 0 {
                return Ok(());
            }
            if b.saturating_add(s) > 1 << IPA_BITS {
                return Err("range beyond the 39-bit IPA space");
            }
            let (start, end) = page_round(b, s);
            map.map_range(&MemoryRegion::new(start, end), a)
                .map_err(|_| "aarch64-paging refused a stage-2 mapping")
        };
        let mut ram = 0;
        for &(b, s) in own.host_ranges() {
            put(b, s, RAM_RW)?;
            ram += 1;
        }
        // The kernel's text and read-only data: readable and executable, never writable.
        put(cfg.kernel_ro.0, cfg.kernel_ro.1, RAM_RO)?;
        let mut mmio = 0;
        for &(b, s) in &cfg.host_mmio {
            let secure = cfg
                .secure
                .iter()
                .any(|&(sb, ss)| b < sb.saturating_add(ss) && sb < b.saturating_add(s));
            if !secure {
                put(b, s, DEVICE)?;
                mmio += 1;
            }
        }
        map.mark_active();
        let vtcr = (64 - IPA_BITS)
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
