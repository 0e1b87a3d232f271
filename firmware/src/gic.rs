//! GICv3 set-up for a normal world: every SPI, SGI and PPI in Group 1 Non-secure, affinity
//! routing on, each CPU's redistributor awake, system-register access enabled down to EL1.

use arm_gic::UniqueMmioPointer;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use core::ptr::NonNull;
use dtinfo::{Gic, Platform};
use spin::{Mutex, Once};

struct Shared(GicV3<'static>);
// SAFETY: the driver holds MMIO pointers only and is used under the mutex below.
unsafe impl Send for Shared {}

static GIC: Once<Mutex<Shared>> = Once::new();

/// Configures the distributor (once, on the boot CPU).
pub fn init(p: &Platform) -> Result<(), &'static str> {
    let Some(Gic::V3 { dist, redist }) = p.gic else {
        return Err("this firmware drives GICv3 only (the DT describes another)");
    };
    let cpus = p.cpus.len().max(1);
    if redist.size < 0x2_0000 * cpus as u64 {
        return Err("GICR region too small for the CPUs");
    }
    let gicd = NonNull::new(dist.base as usize as *mut arm_gic::gicv3::registers::Gicd)
        .ok_or("GICD at 0")?;
    let gicr = NonNull::new(redist.base as usize as *mut arm_gic::gicv3::registers::GicrSgi)
        .ok_or("GICR at 0")?;
    // SAFETY: GICD/GICR come from the DT; EL3 runs with the MMU off (Device memory); this is
    // the only driver instance in the firmware.
    let mut gic = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, cpus) }
        .map_err(|_| "no GICv3 redistributors")?;
    gic.distributor().configure_default_settings();
    GIC.call_once(|| Mutex::new(Shared(gic)));
    Ok(())
}

/// This CPU's part: wake its redistributor, SGIs/PPIs to Group 1 NS, ICC_SRE_EL3.
pub fn init_cpu(index: usize) {
    GicCpuInterface::enable_system_register_el3(true);
    if let Some(g) = GIC.get() {
        let mut g = g.lock();
        if let Ok(mut r) = g.0.redistributor(index) {
            let _ = r.mark_core_awake();
            r.configure_default_settings();
        }
    }
}
