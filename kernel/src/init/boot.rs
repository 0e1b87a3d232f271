//! The boot sequence, top to bottom.
//!
//! entry.rs (EL2 → EL1, vectors, stack, .bss, relocations) → [`kernel_main`]: DTB → early
//! console → first page table and caches → heap → platform from the DT → command line →
//! `@event boot` → the initcall levels (`init/mod.rs`) → `@event done` → PSCI SYSTEM_OFF.

use crate::arch::exceptions::finish_fail;
use crate::arch::{exceptions, psci};
use crate::mm::heap;
use crate::{console, init, mm, smp};
use bootparams::Params;
use core::fmt::Write;
use dtinfo::early::RegionKind;
use dtinfo::{Platform, Range};
use spin::Once;

/// What the boot CPU learnt before the initcalls.
pub struct Boot {
    /// The platform from the DT.
    pub platform: Platform,
    /// The EL the kernel was entered at (2: a hyp can be installed; 1: no EL2).
    pub entry_el: u64,
}

static BOOT: Once<Boot> = Once::new();
static PARAMS: Once<Params<'static>> = Once::new();

/// Boot facts (set before the first initcall).
pub fn boot() -> &'static Boot {
    BOOT.get()
        .expect("boot facts are set before any initcall runs")
}

/// The EL the kernel was entered at.
pub fn entry_el() -> u64 {
    boot().entry_el
}

/// The parsed command line (set before the first initcall).
pub fn params() -> &'static Params<'static> {
    PARAMS
        .get()
        .expect("parameters are parsed before any initcall runs")
}

/// Largest DTB accepted.
const DTB_MAX: usize = 2 << 20;
const FDT_MAGIC: u32 = 0xd00d_feed;

/// The DTB the loader passed in x0, bounded by its header.
///
/// # Safety
/// `pa` is what the loader passed in x0: per the arm64 boot protocol, a DTB in RAM handed to
/// the kernel, which nothing else reads or writes once the kernel runs.
unsafe fn dtb_slice(pa: usize) -> Option<&'static mut [u8]> {
    if pa == 0 || !pa.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the header's first 8 bytes are in the DTB the caller vouches for.
    let (magic, size) = unsafe {
        (
            u32::from_be(core::ptr::read_volatile(pa as *const u32)),
            u32::from_be(core::ptr::read_volatile((pa + 4) as *const u32)) as usize,
        )
    };
    if magic != FDT_MAGIC || !(40..=DTB_MAX).contains(&size) {
        return None;
    }
    // SAFETY: `size` bytes from `pa` are the DTB (bounded above), the kernel's alone; this is
    // the only reference made to them.
    Some(unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, size) })
}

/// The heap: the largest stretch of RAM outside the image, the DTB and reserved memory.
fn heap_region(dtb: &[u8], dtb_range: Range) -> Option<Range> {
    let mut memory = [Range { base: 0, size: 0 }; 16];
    let mut holes = [Range { base: 0, size: 0 }; 32];
    let (mut nm, mut nh) = (0, 0);
    holes[0] = mm::image_range();
    holes[1] = dtb_range;
    nh += 2;
    dtinfo::early::for_each_region(dtb, &mut |kind, r| match kind {
        RegionKind::Memory if nm < memory.len() => {
            memory[nm] = r;
            nm += 1;
        }
        RegionKind::Reserved if nh < holes.len() => {
            holes[nh] = r;
            nh += 1;
        }
        _ => {}
    })
    .ok()?;
    dtinfo::early::largest_free(&memory[..nm], &holes[..nh])
}

fn psci_version() -> alloc::string::String {
    match psci::version() {
        Some((major, minor)) => alloc::format!("{major}.{minor}"),
        None => "none".into(),
    }
}

/// The boot CPU's whole boot.
pub fn kernel_main(dtb_pa: usize, entry_el: u64, load_base: usize, bad_relocs: u64) -> ! {
    smp::set_this_cpu(0);
    // SAFETY: x0 from the loader, per the boot protocol.
    let Some(dtb) = (unsafe { dtb_slice(dtb_pa) }) else {
        // No DT, so no console and no PSCI method to report or power off with.
        exceptions::halt()
    };
    // FDT_NOP tokens (left by libfdt's nop_node/nop_property in loaders such as QEMU) are
    // removed in place before anything reads the DT; a blob that is otherwise invalid is left
    // as it is and refused below with its own error.
    let dt_nops = dtinfo::strip_nops(dtb).unwrap_or(0);
    if dt_nops > 0 {
        // SAFETY: the MMU is off, so the writes above went to memory and no line of ours can
        // be dirty; stale lines a loader left over the DTB must not be read once it is on.
        unsafe {
            mm::dcache_invalidate_mmu_off(dtinfo::Range {
                base: dtb_pa as u64,
                size: dtb.len() as u64,
            })
        };
    }
    let dtb: &'static [u8] = dtb;
    // SAFETY: the region is the DT's stdout-path device: every page table `mm` installs maps
    // each DT device region as Device memory, and until the first one the MMU is off.
    unsafe { console::early_init(dtinfo::early::stdout_uart(dtb)) };
    let _ = writeln!(
        console::Emergency,
        "Catena: entered at EL{entry_el}, image at {load_base:#x}, DT at {dtb_pa:#x} ({} bytes)",
        dtb.len()
    );
    if bad_relocs != 0 {
        finish_fail("unknown-relocation");
    }
    // SAFETY: boot CPU, once, MMU off, no other CPU running.
    if let Err(e) = unsafe { mm::early_enable(dtb) } {
        match e {
            mm::EarlyError::Dt(e) => {
                let _ = writeln!(console::Emergency, "early page table: device tree: {e}");
            }
            mm::EarlyError::ImageNotInRam => {
                let _ = writeln!(
                    console::Emergency,
                    "early page table: the image is not in DT RAM"
                );
            }
        }
        finish_fail("early-mmu");
    }
    let dtb_range = Range {
        base: dtb_pa as u64,
        size: dtb.len() as u64,
    };
    let Some(heap) = heap_region(dtb, dtb_range) else {
        finish_fail("no-free-ram");
    };
    // SAFETY: `heap` is RAM outside the image, the DTB and every reserved range, identity
    // mapped as normal memory by the early table; this is the only call.
    unsafe { heap::init(heap) };
    let platform = match Platform::parse(dtb) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(console::Emergency, "device tree: {e}");
            finish_fail("dt-invalid")
        }
    };
    psci::init(platform.psci);
    let boot = BOOT.call_once(|| Boot { platform, entry_el });
    let params = PARAMS.call_once(|| {
        // A product image (no `test-hooks` feature) does not know the test hooks: they are
        // reported as unknown parameters like any other.
        let hooks = if cfg!(feature = "test-hooks") {
            bootparams::Hooks::Accepted
        } else {
            bootparams::Hooks::Refused
        };
        bootparams::parse(boot.platform.bootargs.as_deref().unwrap_or(""), hooks)
    });
    console::init_logger(match params.loglevel {
        bootparams::LogLevel::Error => log::LevelFilter::Error,
        bootparams::LogLevel::Warn => log::LevelFilter::Warn,
        bootparams::LogLevel::Info => log::LevelFilter::Info,
        bootparams::LogLevel::Debug => log::LevelFilter::Debug,
        bootparams::LogLevel::Trace => log::LevelFilter::Trace,
    });
    log::info!("heap {:#x}..{:#x}", heap.base, heap.end());
    console::emit(catena_event::Kind::Boot, |e| {
        e.u64("el", entry_el)
            .u64("cpus", boot.platform.cpus.len() as u64)
            .u64("memory", boot.platform.memory_size())
            .hex("dtb", dtb_pa as u64)
            .hex("base", load_base as u64)
            .str("model", &boot.platform.model)
            .str("psci", &psci_version())
            .str("cmdline", boot.platform.bootargs.as_deref().unwrap_or(""))
            .u64("dt_nops", dt_nops as u64)
    });

    if let Err(reason) = init::run_initcalls() {
        finish_fail(&reason);
    }
    // Linux's kernel_init: every initcall has run; now /bin/init (pid 1), until a process
    // powers the machine off. Init ending any other way is a failure, as in Linux.
    let cmdline = boot.platform.bootargs.as_deref().unwrap_or("");
    match crate::user::run_init(cmdline) {
        None | Some("poweroff") => {}
        Some(why) => finish_fail(why),
    }

    console::emit(catena_event::Kind::Done, |e| e.str("status", "ok"));
    power_off()
}

/// PSCI SYSTEM_OFF, else the board's own power-off (a driver registered it), else halt.
/// Silent (no lock taken): failure paths call it too.
pub fn power_off() -> ! {
    psci::system_off();
    catena_drivers::power::off();
    exceptions::halt()
}
