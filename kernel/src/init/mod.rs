//! Catena's initcalls, level by level, and the runner that reports them.
//!
//! | level       | initcall                       | what it does                              |
//! |-------------|--------------------------------|-------------------------------------------|
//! | early       | mm                             | the kernel's real page table              |
//! | pure        | bootparams                     | report unknown / refused parameters       |
//! | pure        | ffa_early                      | catena.ffa_early: the bug (test hooks)    |
//! | core        | hyp_install                    | hyp at EL2, SMCs trap to it (EL2 entry)   |
//! | core        | irqchip, device_model          | GIC up, IRQs on; devmodel + platform bus  |
//! | postcore    | clocksource                    | check the architected counter             |
//! | arch        | smp                            | secondary CPUs (through the hyp)          |
//! | subsys      | platform_populate, ffa_bus     | platform devices from the DT; FF-A bus    |
//! | device      | pl011, armv8_timer             | console and timer drivers bind            |
//! | device      | ffa_core, ffa_test             | arm-ffa + core driver (defers); test drv  |
//! | device      | fault_injection                | catena.fault (test-hooks image only)      |
//! | device_sync | hyp_finalise                   | host stage-2 on every CPU                 |
//! | late        | deferred_probe_flush           | retry deferred probes (the FF-A core)     |
//! | late        | tick_proof                     | prove the timer tick arrives              |
//! | late_sync   | deferred_report                | report what is still deferred             |
//! | late_sync   | hyp_probes, ffa_bench          | their parameters (test-hooks image only)  |
//!
//! Levels without initcalls (fs today) still run and are reported.

pub mod boot;

use crate::arch::{exceptions, gic, time};
use crate::init::boot::{boot, params};
use crate::{console, mm, smp};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use catena_drivers::{armv8_timer, ffa, pl011};
use devmodel::{Device, DeviceModel, ModelEvent, Region};
use initcall::{InitError, Initcall, Level, Observer, initcall};
use spin::Mutex;

static MODEL: Mutex<Option<DeviceModel>> = Mutex::new(None);

/// Runs `f` on the device model.
pub fn with_model<R>(f: impl FnOnce(&mut DeviceModel) -> R) -> Result<R, InitError> {
    MODEL
        .lock()
        .as_mut()
        .map(f)
        .ok_or(InitError::fatal("no-device-model"))
}

fn model_event(e: &ModelEvent) {
    match e {
        ModelEvent::Probe {
            dev,
            drv,
            outcome,
            us,
        } => console::emit(catena_event::Kind::Probe, |w| {
            let w = w
                .str("dev", dev)
                .str("drv", drv)
                .str("result", outcome.word());
            let w = match outcome.reason() {
                Some(r) => w.str("reason", r),
                None => w,
            };
            w.u64("us", *us)
        }),
        ModelEvent::DeferredRetry { pending, trigger } => {
            console::emit(catena_event::Kind::DeferredRetry, |w| {
                w.u64("pending", *pending as u64).u64("trigger", *trigger)
            })
        }
        ModelEvent::DeviceAdded { path } => log::debug!("device {path}"),
    }
}

fn mm_init() -> Result<(), InitError> {
    let stats = mm::init_final(&boot().platform).map_err(|e| {
        log::error!("page table: {e}");
        InitError::fatal("page-table")
    })?;
    log::info!(
        "kernel page table: {} MiB RAM, {} device regions",
        stats.ram >> 20,
        stats.devices
    );
    Ok(())
}
initcall!(MM = early("mm") => mm_init);

fn bootparams_report() -> Result<(), InitError> {
    let p = params();
    for u in &p.unknown {
        log::warn!("unknown kernel parameter `{u}` (ignored)");
        console::emit(catena_event::Kind::Param, |e| {
            e.str("name", u).str("result", "unknown")
        });
    }
    for i in &p.invalid {
        log::warn!(
            "kernel parameter `{}={}` refused: {}",
            i.name,
            i.value,
            i.why
        );
        console::emit(catena_event::Kind::Param, |e| {
            e.str("name", i.name)
                .str("value", i.value)
                .str("result", "invalid")
                .str("why", i.why)
        });
    }
    Ok(())
}
initcall!(BOOTPARAMS = pure("bootparams") => bootparams_report);

fn irqchip_init() -> Result<(), InitError> {
    let p = &boot().platform;
    let cpus = p.cpus.len().max(1);
    if let Some(desc) = p.gic {
        let version = gic::init(desc, cpus).map_err(|e| {
            log::error!("GIC: {e}");
            InitError::fatal("gic-init")
        })?;
        console::emit(catena_event::Kind::Irqchip, |e| {
            e.str("gic", if version == 3 { "v3" } else { "v2" })
        });
    } else if let Some(desc) = p.bcm2836 {
        crate::arch::bcm2836::init(desc, cpus).map_err(|e| {
            log::error!("BCM2836: {e}");
            InitError::fatal("irqchip-init")
        })?;
        console::emit(catena_event::Kind::Irqchip, |e| {
            e.str("gic", "none").str("chip", "bcm2836-l1-intc").str(
                "cascade",
                if desc.armctrl.is_some() {
                    "bcm2836-armctrl-ic"
                } else {
                    "none"
                },
            )
        });
    } else {
        return Err(InitError::fatal("no-interrupt-controller"));
    }
    exceptions::irq_enable();
    Ok(())
}
initcall!(IRQCHIP = core("irqchip") => irqchip_init);

fn device_model_init() -> Result<(), InitError> {
    let mut m = DeviceModel::new(Box::new(model_event));
    m.set_clock(time::now_us);
    m.register_bus("platform")
        .map_err(|_| InitError::fatal("platform-bus"))?;
    *MODEL.lock() = Some(m);
    Ok(())
}
initcall!(DEVICE_MODEL = core("device_model") => device_model_init);

fn clocksource_init() -> Result<(), InitError> {
    let hz = time::counter_hz();
    if hz == 0 {
        return Err(InitError::fatal("cntfrq-zero"));
    }
    console::emit(catena_event::Kind::Clock, |e| {
        e.u64("hz", hz).u64("now_us", time::now_us())
    });
    Ok(())
}
initcall!(CLOCKSOURCE = postcore("clocksource") => clocksource_init);

fn smp_init() -> Result<(), InitError> {
    if params().nosmp {
        log::info!("smp: catena.nosmp given, secondary CPUs stay off");
        return Ok(());
    }
    let me = smp::mpidr();
    let cpus = &boot().platform.cpus;
    for (index, cpu) in cpus.iter().enumerate().filter(|(_, c)| c.mpidr != me) {
        let how = match cpu.enable_method.as_deref() {
            Some("psci") => smp::Method::Psci,
            Some("spin-table") => match boot().platform.spin_release_addr(cpu) {
                Ok(a) => smp::Method::SpinTable(a),
                Err(why) => {
                    log::warn!("cpu {index}: {why}");
                    console::emit(catena_event::Kind::Cpu, |e| {
                        e.u64("id", index as u64)
                            .hex("mpidr", cpu.mpidr)
                            .str("state", "bad-release-addr")
                    });
                    continue;
                }
            },
            _ => {
                console::emit(catena_event::Kind::Cpu, |e| {
                    e.u64("id", index as u64)
                        .hex("mpidr", cpu.mpidr)
                        .str("state", "no-enable-method")
                });
                continue;
            }
        };
        let state = match smp::start(index, cpu.mpidr, how) {
            smp::Started::Online => continue, // the CPU reports itself
            smp::Started::Refused(why) => why,
            smp::Started::Timeout => "timeout",
        };
        log::warn!(
            "cpu {index} (mpidr {:#x}) did not start: {state}",
            cpu.mpidr
        );
        console::emit(catena_event::Kind::Cpu, |e| {
            e.u64("id", index as u64)
                .hex("mpidr", cpu.mpidr)
                .str("state", state)
        });
    }
    log::info!("smp: {} of {} CPUs online", smp::online_count(), cpus.len());
    Ok(())
}
initcall!(SMP = arch("smp", after [IRQCHIP, MM, HYP_INSTALL]) => smp_init);

initcall!(HYP_INSTALL = core("hyp_install", after [MM]) => crate::hyp::hyp_install);
initcall!(HYP_FINALISE = device_sync("hyp_finalise", after [HYP_INSTALL]) => crate::hyp::hyp_finalise);
#[cfg(feature = "test-hooks")]
initcall!(HYP_PROBES = late_sync("hyp_probes", after [HYP_FINALISE, DEFERRED_PROBE_FLUSH]) => crate::hyp::probes::hyp_probes);

use catena_drivers::tpm::{SML_BASE, SML_SIZE};

fn platform_populate() -> Result<(), InitError> {
    let p = &boot().platform;
    let stdout = p.stdout_path.as_deref();
    let added = with_model(|m| {
        let mut n = 0;
        for d in p.devices.iter().filter(|d| d.enabled) {
            let mut dev = Device::new("platform", &d.name);
            dev.compatible = d.compatible.clone();
            dev.regions = d
                .regions
                .iter()
                .map(|r| Region {
                    base: r.base,
                    size: r.size,
                })
                .collect();
            dev.irqs = d.irqs.clone();
            if let Some(log) = d.sml {
                dev.props.push((String::from(SML_BASE), log.base));
                dev.props.push((String::from(SML_SIZE), log.size));
            }
            if Some(d.path.as_str()) == stdout {
                dev.props.push((pl011::STDOUT_PROP.to_string(), 1));
            }
            match m.add_device(dev, None) {
                Ok(_) => n += 1,
                Err(e) => log::warn!("platform device {}: {e}", d.path),
            }
        }
        n
    })?;
    log::info!("platform bus: {added} devices from the DT");
    Ok(())
}
initcall!(PLATFORM_POPULATE = subsys("platform_populate", after [DEVICE_MODEL]) => platform_populate);

fn pl011_register() -> Result<(), InitError> {
    with_model(|m| m.register_driver(pl011::DRIVER))?
        .map_err(|_| InitError::soft("driver-register"))
}
initcall!(PL011 = device("pl011", after [PLATFORM_POPULATE]) => pl011_register);

static INITRAMFS: spin::Once<alloc::vec::Vec<cpio::Entry<'static>>> = spin::Once::new();

/// The initramfs's entries, read once by `populate_rootfs` (empty without a well-formed one).
pub fn initramfs() -> &'static [cpio::Entry<'static>] {
    INITRAMFS.get().map_or(&[], |v| v.as_slice())
}

/// `rootfs` initcall (Linux's `populate_rootfs`): the initramfs the loader named in `/chosen`,
/// read with `lib/cpio` (every field checked) and each program in it validated with
/// `lib/elf-load` against the user address range. A malformed archive is reported and the
/// boot goes on without it.
fn populate_rootfs() -> Result<(), InitError> {
    // The loader's word is checked before a byte is read: wholly inside one RAM range (mapped
    // by the kernel), clear of the kernel's own image.
    let p = &boot().platform;
    let r = match p.initrd_in_ram(crate::mm::image_range()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            console::emit(catena_event::Kind::Initramfs, |e| e.str("state", "absent"));
            return Ok(());
        }
        Err((reason, r)) => {
            console::emit(catena_event::Kind::Initramfs, |e| {
                e.str("state", "refused")
                    .str("reason", reason)
                    .hex("base", r.base)
                    .u64("bytes", r.size)
            });
            return Ok(());
        }
    };
    let Ok(len) = usize::try_from(r.size) else {
        return Err(InitError::soft("initramfs-size"));
    };
    // SAFETY: the loader's initramfs, named by /chosen and checked above to lie inside RAM the
    // kernel maps (its identity map covers all RAM) and outside its image; the kernel never
    // allocates it (dtinfo reports it reserved, so the heap avoids it); nothing writes it,
    // and only this shared view is made of it.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(r.base as *const u8, len) };
    let entries = match cpio::parse(bytes) {
        Ok(e) => e,
        Err(cpio::Malformed(why)) => {
            console::emit(catena_event::Kind::Initramfs, |e| {
                e.str("state", "malformed").str("reason", why)
            });
            return Ok(());
        }
    };
    let mut files = 0u64;
    for f in entries.iter().filter(|f| f.is_file()) {
        files += 1;
        let elf = f
            .data
            .starts_with(b"\x7fELF")
            .then(|| elf_load::parse(f.data, &elf_load::USER));
        console::emit(catena_event::Kind::InitramfsFile, |e| {
            let e = e.str("name", f.name).u64("size", f.data.len() as u64);
            match &elf {
                None => e,
                Some(Ok(p)) => e
                    .str("elf", "ok")
                    .hex("entry", p.entry)
                    .u64("segments", p.segments.len() as u64),
                Some(Err(elf_load::Malformed(why))) => e.str("elf", "refused").str("reason", why),
            }
        });
    }
    console::emit(catena_event::Kind::Initramfs, |e| {
        e.str("state", "ok")
            .u64("files", files)
            .u64("bytes", r.size)
            .hex("base", r.base)
    });
    INITRAMFS.call_once(|| entries);
    Ok(())
}
initcall!(ROOTFS = rootfs("populate_rootfs") => populate_rootfs);

fn virtio_net_register() -> Result<(), InitError> {
    with_model(|m| m.register_driver(catena_drivers::net::DRIVER))?
        .map_err(|_| InitError::soft("driver-register"))
}
initcall!(VIRTIO_NET = device("virtio_net", after [PLATFORM_POPULATE]) => virtio_net_register);

fn bcm2835_wdt_register() -> Result<(), InitError> {
    with_model(|m| m.register_driver(catena_drivers::bcm2835_wdt::DRIVER))?
        .map_err(|_| InitError::soft("driver-register"))
}
initcall!(BCM2835_WDT = device("bcm2835_wdt", after [PLATFORM_POPULATE]) => bcm2835_wdt_register);

fn armv8_timer_register() -> Result<(), InitError> {
    armv8_timer::set_hz(params().tick_hz);
    with_model(|m| m.register_driver(armv8_timer::DRIVER))?
        .map_err(|_| InitError::soft("driver-register"))
}
initcall!(ARMV8_TIMER = device("armv8_timer", after [PLATFORM_POPULATE, IRQCHIP]) => armv8_timer_register);

#[cfg(feature = "test-hooks")]
fn fault_injection() -> Result<(), InitError> {
    let Some(fault) = params().fault else {
        return Ok(());
    };
    log::warn!("catena.fault={}: injecting a fault now", fault.name());
    match fault {
        bootparams::Fault::DataAbort => {
            // An address above every mapping: the kernel maps 39 bits of VA.
            let addr = 1usize << 40;
            // SAFETY: deliberately not sound: this read must fault; the exception path
            // reports it and ends the boot, so the read never completes.
            let v = unsafe { core::ptr::read_volatile(addr as *const u64) };
            log::error!("read of unmapped {addr:#x} returned {v:#x}");
            Err(InitError::fatal("fault-not-taken"))
        }
        bootparams::Fault::Undefined => {
            // SAFETY: UDF raises an undefined-instruction exception, which ends the boot.
            unsafe { core::arch::asm!("udf #0xca7e", options(nomem, nostack)) };
            Err(InitError::fatal("fault-not-taken"))
        }
        bootparams::Fault::Panic => panic!("deliberate panic (catena.fault=panic)"),
        bootparams::Fault::InitcallError => Err(InitError::fatal("deliberate-initcall-error")),
    }
}
#[cfg(feature = "test-hooks")]
initcall!(FAULT_INJECTION = device("fault_injection", after [BOOTPARAMS]) => fault_injection);

fn deferred_probe_flush() -> Result<(), InitError> {
    let bound = with_model(|m| m.flush_deferred())?;
    log::info!("deferred probe flush: {bound} device(s) bound");
    Ok(())
}
initcall!(DEFERRED_PROBE_FLUSH = late("deferred_probe_flush", after [DEVICE_MODEL]) => deferred_probe_flush);

fn tick_proof() -> Result<(), InitError> {
    let want = u64::from(params().tick_proof);
    let hz = u64::from(armv8_timer::hz());
    let start = armv8_timer::ticks();
    // Generous bound: the ticks we want at the configured rate, plus a second.
    let budget_us = want * 1_000_000 / hz + 1_000_000;
    let arrived = time::wait_until(budget_us, || armv8_timer::ticks() - start >= want);
    let got = armv8_timer::ticks() - start;
    console::emit(catena_event::Kind::Tick, |e| {
        e.u64("count", got)
            .u64("hz", hz)
            .u64("total", armv8_timer::ticks())
    });
    if arrived {
        Ok(())
    } else {
        Err(InitError::fatal("no-timer-tick"))
    }
}
initcall!(TICK_PROOF = late("tick_proof", after [ARMV8_TIMER]) => tick_proof);

fn deferred_report() -> Result<(), InitError> {
    let left = with_model(|m| m.still_deferred())?;
    for (dev, drv, reason) in &left {
        log::warn!("{dev}: probe by {drv} still deferred: {reason}");
        console::emit(catena_event::Kind::Deferred, |e| {
            e.str("dev", dev).str("drv", drv).str("reason", reason)
        });
    }
    let (used, free) = crate::mm::heap::stats();
    log::info!("heap: {} KiB used, {} MiB free", used >> 10, free >> 20);
    Ok(())
}
initcall!(DEFERRED_REPORT = late_sync("deferred_report", after [DEFERRED_PROBE_FLUSH]) => deferred_report);

/// Reports each call and level as `@event` lines.
struct EventObserver {
    level_start_us: u64,
    calls: u64,
}

impl Observer for EventObserver {
    fn now_us(&mut self) -> u64 {
        time::now_us()
    }

    fn level_start(&mut self, _level: Level) {
        self.level_start_us = time::now_us();
        self.calls = 0;
    }

    fn call_done(&mut self, call: &Initcall, result: &Result<(), InitError>, us: u64) {
        self.calls += 1;
        TIMELINE.lock().push(Ran {
            level: call.level.name(),
            name: call.name,
            result: result.as_ref().err().map(|e| e.reason),
            us,
        });
        console::emit(catena_event::Kind::Initcall, |e| {
            let e = e.str("level", call.level.name()).str("name", call.name);
            let e = match result {
                Ok(()) => e.str("result", "ok"),
                Err(err) => e.str("result", "err").str("reason", err.reason),
            };
            e.u64("us", us)
        });
    }

    fn level_end(&mut self, level: Level) {
        let us = time::now_us().saturating_sub(self.level_start_us);
        console::emit(catena_event::Kind::Level, |e| {
            e.str("level", level.name())
                .u64("calls", self.calls)
                .u64("us", us)
        });
    }
}

/// One initcall as it ran (for the shell's `initcalls`).
pub struct Ran {
    /// Its level.
    pub level: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Why it failed, if it did.
    pub result: Option<&'static str>,
    /// How long it took.
    pub us: u64,
}

/// Every initcall that ran, in order.
pub static TIMELINE: Mutex<alloc::vec::Vec<Ran>> = Mutex::new(alloc::vec::Vec::new());

/// Plans and runs every registered initcall; the error is the boot's failure reason.
pub fn run_initcalls() -> Result<(), String> {
    // Drivers reach the kernel only through this door; it opens before any registers.
    crate::kapi::init();
    let planned = initcall::plan(&initcall::INITCALLS).map_err(|e| {
        log::error!("initcalls: {e}");
        String::from("initcall-plan")
    })?;
    let mut obs = EventObserver {
        level_start_us: 0,
        calls: 0,
    };
    let summary = initcall::run(&planned, &mut obs);
    match summary.fatal {
        Some((name, err)) => Err(format!("initcall:{name}:{}", err.reason)),
        None => Ok(()),
    }
}

#[cfg(feature = "test-hooks")]
initcall!(FFA_EARLY = pure("ffa_early") => ffa_early);

/// `pure`, with `catena.ffa_early`: the FF-A core initialised before the hyp (the bug).
#[cfg(feature = "test-hooks")]
fn ffa_early() -> Result<(), InitError> {
    ffa::init_early().map_err(InitError::soft)
}

/// `subsys`: the FF-A bus.
fn ffa_bus() -> Result<(), InitError> {
    with_model(|m| m.register_bus(ffa::BUS))?.map_err(|_| InitError::fatal("ffa-bus"))
}
initcall!(FFA_BUS = subsys("ffa_bus", after [DEVICE_MODEL]) => ffa_bus);

/// `device`: the synthetic `arm-ffa` platform device and the FF-A core driver, whose probe
/// defers until the hyp is finalised.
fn ffa_core() -> Result<(), InitError> {
    with_model(|m| {
        m.add_device(Device::new("platform", ffa::CORE_DEVICE), None)?;
        m.register_driver(ffa::CORE_DRIVER)
    })?
    .map_err(|_| InitError::fatal("ffa-core-register"))
}
initcall!(FFA_CORE = device("ffa_core", after [FFA_BUS, PLATFORM_POPULATE, HYP_INSTALL]) => ffa_core);

/// `device`: the test partition's driver.
fn ffa_test() -> Result<(), InitError> {
    with_model(|m| m.register_driver(ffa::TEST_DRIVER))?
        .map_err(|_| InitError::soft("ffa-test-register"))
}
initcall!(FFA_TEST = device("ffa_test", after [FFA_BUS]) => ffa_test);

/// `device`: the TPM drivers — the CRB description on the platform bus and the DEN0138
/// partition's driver on the FF-A bus (which binds when the FF-A core publishes the partition,
/// after the hyp is finalised), and the TIS driver for a TIS no secure firmware owns.
fn tpm_drivers() -> Result<(), InitError> {
    with_model(|m| {
        m.register_driver(catena_drivers::tpm::crb_ffa::CRB_DRIVER)?;
        m.register_driver(catena_drivers::tpm::crb_ffa::DRIVER)?;
        m.register_driver(catena_drivers::tpm::tis::DRIVER)
    })?
    .map_err(|_| InitError::soft("tpm-register"))
}
initcall!(TPM_DRIVERS = device("tpm_drivers", after [FFA_BUS, PLATFORM_POPULATE]) => tpm_drivers);

/// `device`: the UEFI variable drivers — fw_cfg (where enrolment files arrive), the MM
/// buffer's description on the platform bus and
/// the variable partition's driver on the FF-A bus (bound when the FF-A core publishes the
/// partition, after the hyp is finalised).
fn efivar_drivers() -> Result<(), InitError> {
    with_model(|m| {
        m.register_driver(catena_drivers::fwcfg::DRIVER)?;
        m.register_driver(catena_drivers::efivar::BUFFER_DRIVER)?;
        m.register_driver(catena_drivers::efivar::DRIVER)
    })?
    .map_err(|_| InitError::soft("efivar-register"))
}
initcall!(EFIVAR_DRIVERS = device("efivar_drivers", after [FFA_BUS, PLATFORM_POPULATE]) => efivar_drivers);

/// `catena.efivar_ops` (test hook): the variable operations a scenario asks for, each
/// reported, at `late_sync` after the flush that binds the variable driver.
#[cfg(feature = "test-hooks")]
fn efivar_ops() -> Result<(), InitError> {
    for op in &params().efivar_ops {
        catena_drivers::efivar::run_op(op);
    }
    Ok(())
}
#[cfg(feature = "test-hooks")]
initcall!(EFIVAR_OPS = late_sync("efivar_ops", after [DEFERRED_PROBE_FLUSH]) => efivar_ops);

/// The measured-boot check: the firmware's event log against the TPM's PCRs, once the TPM is
/// bound (after the flush).
fn eventlog_check() -> Result<(), InitError> {
    catena_drivers::tpm::eventlog_check();
    Ok(())
}
initcall!(EVENTLOG = late_sync("eventlog_check", after [DEFERRED_PROBE_FLUSH, TPM_DRIVERS]) => eventlog_check);

/// The measurement list starts at `late_sync`, once the TPM is bound (IMA_INIT_LATE_SYNC):
/// boot_aggregate, then what was queued (the chain's milestones), in order.
fn ima_init() -> Result<(), InitError> {
    catena_drivers::ima::init("late_sync");
    Ok(())
}
initcall!(IMA_INIT = late_sync("ima_init", after [DEFERRED_PROBE_FLUSH, TPM_DRIVERS]) => ima_init);

/// After the keys: the list replayed against PCR 10 and exported, the quote, the verifier
/// (sorted after "load_uefi_certs" within the level). When the initramfs has an init, its
/// agent does this instead (the `attest` call), after the programs it starts are measured;
/// Linux's order: IMA measures at exec, the agent quotes from userland.
fn measurements_report() -> Result<(), InitError> {
    if crate::user::find_program("/bin/init").is_none() {
        crate::user::query::attest();
    }
    Ok(())
}
initcall!(IMA_REPORT = late_sync("measurements_report", after [DEFERRED_PROBE_FLUSH]) => measurements_report);

/// `load_uefi_certs`: db, dbx and the MOK lists into the keyrings through the efivar driver.
/// At `late_sync` by default, after the deferred-probe flush that binds the variable driver
/// (Arm's 2026 RFC for Linux); `catena.load_uefi_certs=late` runs it at `late` before the
/// flush, Linux's level until then, where it finds no variable service under pKVM.
fn certs_at(late: bool, level: &str) -> Result<(), InitError> {
    if params().certs_late == late {
        // `catena.certs_bench` (test hook): the instruction counter's window around it.
        let bench = cfg!(feature = "test-hooks") && params().certs_bench;
        if bench {
            arch::count_start();
        }
        catena_drivers::certs::load(level);
        if bench {
            arch::count_end();
        }
    }
    Ok(())
}
fn certs_late() -> Result<(), InitError> {
    certs_at(true, "late")
}
fn certs_late_sync() -> Result<(), InitError> {
    certs_at(false, "late_sync")
}
// Sorted by name within `late`: "certs_..." runs before "deferred_probe_flush".
initcall!(CERTS_LATE = late("certs_load_uefi") => certs_late);
initcall!(CERTS = late_sync("load_uefi_certs", after [DEFERRED_PROBE_FLUSH, EFIVAR_DRIVERS]) => certs_late_sync);

/// The TPM consumer (the measurement core's stand-in until measured boot lands): extend the
/// debug PCR and check the read-back. At `late_sync` by default, after the deferred-probe
/// flush that binds the TPM; `catena.tpm_consumer=late` runs it at `late`, before the flush,
/// where it finds no TPM (Linux's IMA before IMA_INIT_LATE_SYNC).
fn tpm_selftest_at(late: bool, level: &str) -> Result<(), InitError> {
    if params().tpm_consumer_late != late {
        return Ok(());
    }
    catena_drivers::tpm::selftest(level).map_err(|e| {
        log::error!("tpm_selftest: {e}");
        InitError::soft("tpm-selftest")
    })
}
fn tpm_selftest_late() -> Result<(), InitError> {
    tpm_selftest_at(true, "late")
}
fn tpm_selftest_late_sync() -> Result<(), InitError> {
    tpm_selftest_at(false, "late_sync")
}
// Calls inside a level run sorted by name: "consumer_..." runs before "deferred_probe_flush",
// as Linux's IMA init ran before the driver core's deferred-probe flush at late_initcall.
initcall!(TPM_SELFTEST_LATE = late("consumer_tpm_selftest") => tpm_selftest_late);
initcall!(TPM_SELFTEST = late_sync("tpm_selftest", after [DEFERRED_PROBE_FLUSH]) => tpm_selftest_late_sync);

/// `catena.ffa_bench=N`: N direct-request round trips to the test partition, for
/// `cargo xtask bench ffa` (which counts instructions from outside; nothing is timed here).
#[cfg(feature = "test-hooks")]
fn ffa_bench() -> Result<(), InitError> {
    let Some(n) = params().ffa_bench else {
        return Ok(());
    };
    let ok = ffa::with_session(|f| {
        let mut ok = 0u64;
        // The instruction-counting plugin measures between these two markers.
        arch::count_start();
        for i in 0..u64::from(n) {
            let args = [i, !i, i ^ 0x5a5a, 3, 4];
            if f.direct_req(ffa_abi::testsp::ID, args) == Ok(args) {
                ok += 1;
            }
        }
        arch::count_end();
        ok
    })
    .unwrap_or(0);
    console::emit(catena_event::Kind::FfaBench, |e| {
        e.u64("n", u64::from(n)).u64("ok", ok)
    });
    if ok == u64::from(n) {
        Ok(())
    } else {
        Err(InitError::soft("ffa-bench"))
    }
}
#[cfg(feature = "test-hooks")]
initcall!(FFA_BENCH = late_sync("ffa_bench", after [DEFERRED_PROBE_FLUSH]) => ffa_bench);

/// `catena.tpm_bench=N`: N PCR_Extends of the debug PCR through the bound TPM (CRB over FF-A:
/// kernel -> hyp -> SPMC -> TIS), for `cargo xtask bench tpm`, between the counter's markers.
#[cfg(feature = "test-hooks")]
fn tpm_bench() -> Result<(), InitError> {
    let Some(n) = params().tpm_bench else {
        return Ok(());
    };
    let ok = catena_drivers::tpm::with_tpm(|c| {
        let mut ok = 0u64;
        arch::count_start();
        for _ in 0..n {
            if c.pcr_extend_sha256(16, &[0x5a; 32]).is_ok() {
                ok += 1;
            }
        }
        arch::count_end();
        ok
    })
    .unwrap_or(0);
    console::emit(catena_event::Kind::TpmBench, |e| {
        e.u64("calls", u64::from(n)).u64("ok", ok)
    });
    if ok == u64::from(n) {
        Ok(())
    } else {
        Err(InitError::soft("tpm-bench"))
    }
}
#[cfg(feature = "test-hooks")]
initcall!(TPM_BENCH = late_sync("tpm_bench", after [DEFERRED_PROBE_FLUSH]) => tpm_bench);

/// `catena.tpm_bench_pairs=N`: N pairs, each one PCR_Extend through the chain (timed here) and
/// one by the firmware through the TIS directly (its test SMC, timed there), for `cargo xtask
/// bench tpm`'s time ratio: the two halves of a pair run back to back in one boot, so a slow
/// stretch of the host slows both; the medians of both go in the event.
#[cfg(feature = "test-hooks")]
fn tpm_bench_pairs() -> Result<(), InitError> {
    let Some(n) = params().tpm_bench_pairs else {
        return Ok(());
    };
    let mut chain = alloc::vec::Vec::with_capacity(n as usize);
    let mut direct = alloc::vec::Vec::with_capacity(n as usize);
    let ok = catena_drivers::tpm::with_tpm(|c| {
        let mut ok = 0u64;
        for _ in 0..n {
            let s = time::counter();
            let a = c.pcr_extend_sha256(16, &[0x5a; 32]).is_ok();
            chain.push(time::counter().wrapping_sub(s));
            let mut x = [0u64; 18];
            x[0] = u64::from(tpm_service::BENCH_DIRECT_SMC);
            let r = catena_drivers::ffa::conduit::call(x);
            if r[0] == 0 {
                direct.push(r[1]);
            }
            if a && r[0] == 0 {
                ok += 1;
            }
        }
        ok
    })
    .unwrap_or(0);
    let hz = time::counter_hz();
    let chain_ns = catena_event::ticks_to_ns(catena_event::median(&mut chain), hz);
    let direct_ns = catena_event::ticks_to_ns(catena_event::median(&mut direct), hz);
    console::emit(catena_event::Kind::TpmBench, |e| {
        e.u64("pairs", u64::from(n))
            .u64("ok", ok)
            .u64("chain_ns", chain_ns)
            .u64("direct_ns", direct_ns)
    });
    if ok == u64::from(n) {
        Ok(())
    } else {
        Err(InitError::soft("tpm-bench-pairs"))
    }
}
#[cfg(feature = "test-hooks")]
initcall!(TPM_BENCH_PAIRS = late_sync("tpm_bench_pairs", after [DEFERRED_PROBE_FLUSH]) => tpm_bench_pairs);

/// `catena.efivar_bench=N`: N SetVariable+GetVariable rounds through the variable partition,
/// for `cargo xtask bench efivar`, between the counter's markers.
#[cfg(feature = "test-hooks")]
fn efivar_bench() -> Result<(), InitError> {
    let Some(n) = params().efivar_bench else {
        return Ok(());
    };
    let ok = catena_drivers::efivar::bench(n).unwrap_or(0);
    console::emit(catena_event::Kind::EfivarBench, |e| {
        e.u64("calls", u64::from(n)).u64("ok", u64::from(ok))
    });
    if ok == n {
        Ok(())
    } else {
        Err(InitError::soft("efivar-bench"))
    }
}
#[cfg(feature = "test-hooks")]
initcall!(EFIVAR_BENCH = late_sync("efivar_bench", after [DEFERRED_PROBE_FLUSH]) => efivar_bench);
