//! Catena's EL3 firmware for QEMU virt (secure=on), in the model of TF-A's BL31.
//!
//! Every CPU starts at 0x0 (secure flash) in EL3. CPU 0 (Aff0 = 0) boots: [`fw_main`] reads
//! the DT QEMU left at the start of DRAM, sets up EL3 and the GIC for a normal world at EL2,
//! loads the kernel (or a raw BL33 such as U-Boot) from fw_cfg, adds `/psci` and the CPUs'
//! enable-method to the DT, and enters the normal world at NS EL2 with x0 = DT. The other CPUs
//! park until PSCI CPU_ON releases them. From then on the firmware runs only on SMCs
//! (`smc.rs`): PSCI 1.1, SMCCC 1.2, and (later) the FF-A SPMC.
#![no_std]
#![no_main]

extern crate alloc;

mod console;
use fw_dt as dt;
mod el3;
mod fwcfg;
mod gic;
mod measure;
mod platform;
mod power;
mod smc;
mod spmc_glue;
mod tpm;
mod vars;

use crate::platform::{DTB_ADDR, DTB_SLOT, MAX_CPUS};
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use linked_list_allocator::Heap;
use psci_el3::{NsRange, Psci};

/// Written by CPU 0 once the image is in secure RAM and .bss is zero; secondaries wait for it
/// (in flash) before they jump to the RAM copy. A magic value, because RAM is not zero at
/// reset on real hardware; cleared before the firmware asks for a warm reset
/// ([`clear_boot_ready`]), so a secondary never jumps to a copy from the previous boot.
#[unsafe(no_mangle)]
static BOOT_READY: AtomicU64 = AtomicU64::new(0);
const READY_MAGIC: u64 = 0x4341_5445_4e41_5244; // "CATENARD"

global_asm!(
    r#"
// Every CPU starts here, in secure flash. Nothing may run from the flash once the variable
// store programs it (a CFI device out of read-array mode answers fetches with its status), so
// CPU 0 copies the image to secure RAM and every CPU continues there.
.section .text.flash_boot, "ax"
.global _start
_start:
    msr     daifset, #0xf
    mrs     x19, mpidr_el1
    ubfx    x9, x19, #8, #16        // Aff1, Aff2 must be 0 on this port
    cbnz    x9, 30f
    lsr     x9, x19, #32
    and     x9, x9, #0xff           // Aff3
    cbnz    x9, 30f
    and     x19, x19, #0xff         // CPU index = Aff0
    cmp     x19, #{max_cpus}
    b.hs    30f
    cbnz    x19, 20f
    // CPU 0: the image (code, read-only data, data) from flash to secure RAM.
    ldr     x9, =__image_lma
    ldr     x10, =__image_start
    ldr     x11, =__image_end
1:  cmp     x10, x11
    b.hs    2f
    ldp     x12, x13, [x9], #16
    stp     x12, x13, [x10], #16
    b       1b
2:  dsb     sy
    ic      iallu
    dsb     sy
    isb
    ldr     x9, =ram_start
    br      x9
20: // Other CPUs go to the secondary pen in RAM ...
    ldr     x20, =ram_secondary
    b       21f
30: // ... and a CPU this port does not run leaves the flash too, then sleeps.
    ldr     x20, =ram_halt
21: // Either way, only once CPU 0 says the image and memory are ready.
    ldr     x9, =BOOT_READY
    ldr     x10, ={magic}
22: ldr     x11, [x9]
    cmp     x11, x10
    b.eq    23f
    wfe
    b       22b
23: br      x20

.section .text.ram_boot, "ax"
ram_start:
    ldr     x9, =el3_vectors
    msr     vbar_el3, x9
    isb
    ldr     x9, =__stacks_top
    mov     sp, x9
    // Zero .bss, then say memory is ready.
    ldr     x10, =__bss_start
    ldr     x11, =__bss_end
3:  cmp     x10, x11
    b.hs    4f
    stp     xzr, xzr, [x10], #16
    b       3b
4:  ldr     x9, =BOOT_READY
    ldr     x10, ={magic}
    str     x10, [x9]
    dsb     sy
    sev
    bl      fw_main
    b       ram_halt

ram_secondary:
    ldr     x9, =el3_vectors
    msr     vbar_el3, x9
    isb
    ldr     x9, =__stacks_top
    mov     x10, #{stack}
    msub    x9, x19, x10, x9
    mov     sp, x9
    mov     x0, x19
    bl      fw_secondary
ram_halt:
    wfi
    b       ram_halt

// cpu_park(index): reset this CPU's stack and wait in the pen again (PSCI CPU_OFF).
.global cpu_park
cpu_park:
    ldr     x9, =__stacks_top
    mov     x10, #{stack}
    msub    x9, x0, x10, x9
    mov     sp, x9
    bl      fw_secondary
    b       ram_halt
"#,
    max_cpus = const MAX_CPUS,
    stack = const platform::STACK_SIZE,
    magic = const READY_MAGIC,
);

unsafe extern "C" {
    static __heap_start: u8;
    static __heap_end: u8;
    fn cpu_park(index: u64) -> !;
}

struct FwHeap(spin::Mutex<Heap>);

// SAFETY: delegates to linked_list_allocator's Heap under a spin lock; EL3 runs with all
// exceptions masked, so no handler can re-enter the allocator.
unsafe impl core::alloc::GlobalAlloc for FwHeap {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: `ptr` came from this allocator with this layout.
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}

#[global_allocator]
static HEAP: FwHeap = FwHeap(spin::Mutex::new(Heap::empty()));

/// Before a warm reset: the secondaries of the next boot must wait for CPU 0's new copy.
pub fn clear_boot_ready() {
    BOOT_READY.store(0, Ordering::SeqCst);
    arch::dsb_sev();
}

/// The initramfs loaded from fw_cfg (base, size), to name in the DT.
static INITRD: spin::Once<(u64, u64)> = spin::Once::new();

/// PSCI state, shared by all CPUs.
pub static PSCI: spin::Once<spin::Mutex<Psci>> = spin::Once::new();
/// One flag per CPU: released by CPU_ON.
static RELEASE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Releases a parked CPU (after PSCI accepted CPU_ON for it).
pub fn release_cpu(index: usize) {
    if let Some(r) = RELEASE.get(index) {
        r.store(true, Ordering::Release);
        arch::dsb_sev();
    }
}

/// Stops the system after a failure the firmware cannot recover from.
pub fn fail(reason: &str) -> ! {
    console::event(catena_event::FwEvent::Fail, |e| e.str("reason", reason));
    power::off();
}

#[unsafe(no_mangle)]
extern "C" fn fw_main() -> ! {
    // SAFETY: the linker script places the heap in secure RAM after the stacks; nothing else
    // uses that range, and this is the only initialisation.
    unsafe {
        let start = &raw const __heap_start as usize;
        let end = &raw const __heap_end as usize;
        HEAP.0.lock().init(start as *mut u8, end - start);
    }
    fwlog!("\nCatena firmware (EL3) on QEMU virt");

    // The DT QEMU left at the start of DRAM.
    // SAFETY: QEMU places the DTB at DTB_ADDR in a DTB_SLOT-sized slot for -bios boots; the
    // normal world does not run yet, so nothing else touches it.
    let slot = unsafe { core::slice::from_raw_parts_mut(DTB_ADDR as *mut u8, DTB_SLOT) };
    let (platform, dt_nops) = match dt::read(slot) {
        Ok(read) => read,
        Err(e) => {
            fwlog!("device tree at {DTB_ADDR:#x}: {e}");
            fail("dt-invalid");
        }
    };
    let mpidrs: alloc::vec::Vec<u64> = platform.cpus.iter().map(|c| c.mpidr).collect();
    console::event(catena_event::FwEvent::Boot, |e| {
        e.u64("cpus", mpidrs.len() as u64)
            .u64("memory", platform.memory_size())
            .hex("dtb", DTB_ADDR)
            .u64("dt_nops", dt_nops as u64)
    });
    power::init(&platform);
    if let Err(e) = gic::init(&platform) {
        fwlog!("GIC: {e}");
        fail("gic");
    }
    let ns_ram: alloc::vec::Vec<NsRange> = platform
        .memory
        .iter()
        .map(|r| NsRange {
            base: r.base,
            size: r.size,
        })
        .collect();
    PSCI.call_once(|| spin::Mutex::new(Psci::new(&mpidrs, &ns_ram)));
    let services = spmc_glue::init(&platform);

    // The normal-world payload: a raw BL33 (U-Boot) when fw_cfg carries one, which then loads
    // the Image itself (`qfw load`); else the `-kernel` Image.
    let bl33 = match fwcfg::load_bl33(&platform) {
        Ok(b) => b,
        Err(e) => {
            fwlog!("BL33 from fw_cfg: {e}");
            fail("bad-payload");
        }
    };
    let (entry, bootargs) = if let Some(b) = bl33 {
        console::event(catena_event::FwEvent::Payload, |e| {
            e.str("source", "fw_cfg")
                .str("kind", "bl33")
                .hex("entry", b.entry)
                .u64("size", b.size)
        });
        // PCR 0: the boot loader is firmware (TF-A measures BL33 into PCR 0 as
        // EV_POST_CODE "BL_33"); what it loads is its business (docs/boards.md).
        measure_loaded(0, tcglog::ev::POST_CODE, b.entry, b.size, b"BL_33");
        (b.entry, None)
    } else {
        match fwcfg::load_kernel(&platform) {
            Ok(Some(k)) => {
                console::event(catena_event::FwEvent::Payload, |e| {
                    e.str("source", "fw_cfg")
                        .str("kind", "image")
                        .hex("entry", k.entry)
                        .u64("size", k.size)
                });
                // PCR 8: the kernel Image as loaded, U-Boot's booti convention
                // (EV_COMPACT_HASH, "linux"); PCR 1: its command line
                // (EV_PLATFORM_CONFIG_FLAGS).
                measure_loaded(8, tcglog::ev::COMPACT_HASH, k.entry, k.size, b"linux");
                measure::event(
                    1,
                    tcglog::ev::PLATFORM_CONFIG_FLAGS,
                    k.cmdline.as_bytes(),
                    k.cmdline.as_bytes(),
                );
                // The initramfs after the kernel's whole image (its header's image_size
                // covers .bss, which the kernel zeroes); PCR 9, U-Boot's booti convention
                // (EV_COMPACT_HASH, "initrd").
                let image_size = k.image_size.max(k.size);
                match fwcfg::load_initrd(&platform, k.entry + image_size) {
                    Ok(Some(rd)) => {
                        measure_loaded(9, tcglog::ev::COMPACT_HASH, rd.base, rd.size, b"initrd");
                        console::event(catena_event::FwEvent::Payload, |e| {
                            e.str("source", "fw_cfg")
                                .str("kind", "initrd")
                                .hex("base", rd.base)
                                .u64("size", rd.size)
                        });
                        INITRD.call_once(|| (rd.base, rd.size));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        fwlog!("initrd from fw_cfg: {e}");
                        fail("bad-initrd");
                    }
                }
                (k.entry, Some(k.cmdline))
            }
            Ok(None) => {
                fwlog!(
                    "no normal-world payload: fw_cfg has no kernel (-kernel) and no opt/catena/bl33"
                );
                fail("no-payload");
            }
            Err(e) => {
                fwlog!("kernel from fw_cfg: {e}");
                fail("bad-payload");
            }
        }
    };
    if let Some(c) = bootargs.as_deref() {
        tpm::enable_pairs(c);
    }
    if let Some(n) = bootargs.as_deref().and_then(tpm::bench_calls) {
        let ok = tpm::bench_direct(&platform, n);
        console::event(catena_event::FwEvent::TpmBench, |e| {
            e.u64("calls", u64::from(n)).u64("ok", u64::from(ok))
        });
    }
    let tis_path = platform
        .compatible("tcg,tpm-tis-mmio")
        .map(|d| d.path.clone());
    let tpm_edit = tis_path
        .as_deref()
        .filter(|_| services.tpm)
        .map(|tis_path| dt::TpmEdit {
            crb: platform::TPM_CRB,
            tis_path,
            event_log: measure::active().then_some(platform::EVENT_LOG),
        });
    let mm_buffer = services.vars.then_some(platform::MM_BUFFER);
    if let Err(e) = dt::edit(slot, bootargs.as_deref(), tpm_edit.as_ref(), mm_buffer) {
        fwlog!("device tree edit: {e}");
        fail("dt-edit");
    }
    if let Some((base, size)) = INITRD.get()
        && let Err(e) = dt::set_initrd(slot, *base, *size)
    {
        fwlog!("device tree edit (initrd): {e}");
        fail("dt-edit");
    }
    if measure::active() {
        // PCR 1: the DT as handed over (after every edit; it names the log by its fixed
        // region, so measuring it does not change it), then the separators and the log.
        let total = u32::from_be_bytes([slot[4], slot[5], slot[6], slot[7]]) as usize;
        let dtb = slot[..total.min(slot.len())].to_vec();
        measure::event(1, tcglog::ev::TABLE_OF_DEVICES, &dtb, b"dts\0");
        match measure::finish() {
            Some(f) => console::event(catena_event::FwEvent::Measured, |e| {
                e.u64("events", u64::from(f.events))
                    .u64("bytes", f.bytes as u64)
                    .hex("log", platform::EVENT_LOG.0)
                    .str("result", f.failed.unwrap_or("ok"))
            }),
            None => console::event(catena_event::FwEvent::Measured, |e| {
                e.str("result", "log-too-large")
            }),
        }
    }
    let el = if el3::has_el2() { 2 } else { 1 };
    console::event(catena_event::FwEvent::EnterNs, |e| {
        e.u64("el", el).hex("entry", entry).hex("x0", DTB_ADDR)
    });
    el3::init_cpu(0);
    el3::enter_ns(0, entry, DTB_ADDR)
}

/// A parked CPU: wait for CPU_ON, then enter the normal world where PSCI says.
#[unsafe(no_mangle)]
extern "C" fn fw_secondary(index: u64) -> ! {
    let index = index as usize;
    loop {
        if RELEASE[index].swap(false, Ordering::Acquire) {
            let Some(psci) = PSCI.get() else { continue };
            let Some((entry, context)) = psci.lock().cpu_entering(index) else {
                continue;
            };
            el3::init_cpu(index);
            el3::enter_ns(index, entry, context);
        }
        // Woken by the SEV of CPU_ON.
        arch::wfe();
    }
}

/// Measures `size` bytes that fw_cfg just loaded at `base` in normal-world RAM into `pcr`
/// (event `typ`, `data`), reading them a chunk at a time: a payload (a distribution's kernel
/// Image is ~50 MiB, an initramfs up to `fwcfg::INITRD_MAX`) can be far larger than this
/// firmware's secure heap. Nothing is read when measured boot is off.
fn measure_loaded(pcr: u8, typ: u32, base: u64, size: u64, data: &[u8]) {
    let Some(mut h) = measure::hasher() else {
        return;
    };
    let mut chunk = alloc::vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(chunk.len() as u64) as usize;
        // SAFETY: every caller passes a payload fw_cfg has just loaded at [base, base + size),
        // normal-world RAM inside the DRAM range its loader checked, before the normal world
        // runs; this reads [base + off, base + off + n) inside it.
        unsafe { arch::read_shared((base + off) as usize, &mut chunk[..n]) };
        h.update(&chunk[..n]);
        off += n as u64;
    }
    measure::event_hashed(pcr, typ, h, data);
}

/// Parks the calling CPU (PSCI CPU_OFF): its stack is reset; it waits for CPU_ON again.
pub fn park(index: usize) -> ! {
    // SAFETY: cpu_park resets SP to this CPU's own stack top and never returns; nothing on the
    // current stack is used afterwards.
    unsafe { cpu_park(index as u64) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::mask_all();
    let _ = core::fmt::Write::write_fmt(
        &mut console::Raw,
        format_args!("\nfirmware panic: {info}\n"),
    );
    let _ = core::fmt::Write::write_str(&mut console::Raw, "@event fw ev=fail reason=panic\n");
    power::off()
}
