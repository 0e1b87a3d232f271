//! The interrupt controller (GICv3, or GICv2 when the DT says so), through `arm-gic`.

use crate::console::IrqGuard;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer, gicv2::GicV2};
use core::ptr::NonNull;
use dtinfo::Gic as DtGic;
use spin::{Mutex, Once};

enum Gic {
    V2 {
        gic: GicV2<'static>,
        group: InterruptGroup,
    },
    V3(GicV3<'static>),
}

// SAFETY: the driver holds MMIO pointers only; every access goes through the `GIC` mutex
// (taken with IRQs masked), so moving it between CPUs is sound.
unsafe impl Send for Gic {}

static GIC: Once<Mutex<Gic>> = Once::new();

/// GICv3 redistributor frames (RD_base + SGI_base) per CPU, 2 x 64 KiB (GICv3 arch spec 12.10).
const GICR_FRAME: u64 = 0x2_0000;

/// Initialises the controller the DT describes for `cpus` CPUs; returns its version.
pub fn init(desc: DtGic, cpus: usize) -> Result<u8, &'static str> {
    let gic = match desc {
        DtGic::V3 { dist, redist } => {
            if redist.size < GICR_FRAME * cpus as u64 {
                return Err("GICv3 redistributor region too small for the CPUs");
            }
            let gicd = NonNull::new(dist.base as usize as *mut arm_gic::gicv3::registers::Gicd)
                .ok_or("GICD at 0")?;
            let gicr =
                NonNull::new(redist.base as usize as *mut arm_gic::gicv3::registers::GicrSgi)
                    .ok_or("GICR at 0")?;
            // SAFETY: GICD and GICR are the DT's interrupt-controller regions, mapped as device
            // memory by `mm::init_final`; this is the only driver instance for them.
            let mut g = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, cpus) }
                .map_err(|_| "GICv3 redistributors not found")?;
            g.setup(0);
            GicCpuInterface::set_priority_mask(0xff);
            Gic::V3(g)
        }
        DtGic::V2 { dist, cpu } => {
            // SAFETY: as above, for the GICv2 distributor and CPU interface.
            let mut g = unsafe {
                GicV2::new(
                    dist.base as usize as *mut arm_gic::gicv2::registers::Gicd,
                    cpu.base as usize as *mut arm_gic::gicv2::registers::Gicc,
                )
            };
            g.setup();
            let group = if g.typer().has_security_extension() {
                InterruptGroup::Group1
            } else {
                InterruptGroup::Group0
            };
            Gic::V2 { gic: g, group }
        }
    };
    let version = match gic {
        Gic::V2 { .. } => 2,
        Gic::V3(_) => 3,
    };
    GIC.call_once(|| Mutex::new(gic));
    catena_drivers::irq::set_chip(&CHIP);
    Ok(version)
}

struct Chip;
static CHIP: Chip = Chip;

impl catena_drivers::irq::IrqChip for Chip {
    fn set_enabled(&self, intid: u32, enabled: bool) -> Result<(), &'static str> {
        let id = IntId::try_from(intid).map_err(|_| "invalid INTID")?;
        let _irq = IrqGuard::new();
        let mut gic = GIC.get().ok_or("no GIC")?.lock();
        match &mut *gic {
            Gic::V3(g) => {
                g.set_interrupt_priority(id, Some(crate::smp::this_cpu()), 0x80)
                    .map_err(|_| "GICv3 refused the priority")?;
                g.enable_interrupt(id, Some(crate::smp::this_cpu()), enabled)
                    .map_err(|_| "GICv3 refused the interrupt")
            }
            Gic::V2 { gic, .. } => {
                gic.set_interrupt_priority(id, 0x80);
                gic.enable_interrupt(id, enabled)
                    .map_err(|_| "GICv2 refused the interrupt")
            }
        }
    }
}

/// Handles one pending interrupt (called from the IRQ vector, IRQs masked).
/// Returns false if none was pending.
pub fn handle_irq() -> bool {
    let Some(gic) = GIC.get() else {
        return false;
    };
    // Acknowledge under the lock, dispatch without it (a handler may enable interrupts).
    let (intid, v2_group) = match &mut *gic.lock() {
        Gic::V3(_) => (
            GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1),
            None,
        ),
        Gic::V2 { gic, group } => (gic.get_and_acknowledge_interrupt(*group), Some(*group)),
    };
    let Some(intid) = intid else {
        return false;
    };
    if !catena_drivers::irq::dispatch(u32::from(intid)) {
        log::warn!("spurious interrupt {}", u32::from(intid));
    }
    match (v2_group, &mut *gic.lock()) {
        (Some(group), Gic::V2 { gic, .. }) => gic.end_interrupt(intid, group),
        _ => GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1),
    }
    true
}

/// Brings up this CPU's interface on a secondary CPU (GICv3: wake its redistributor).
pub fn init_secondary(cpu: usize) {
    if let Some(gic) = GIC.get()
        && let Gic::V3(g) = &mut *gic.lock()
    {
        g.init_cpu(cpu);
        GicCpuInterface::set_priority_mask(0xff);
        GicCpuInterface::enable_group1(true);
    }
}
