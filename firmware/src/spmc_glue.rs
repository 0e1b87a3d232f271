//! The SPMC in the firmware: platform ranges from the DT, normal-world memory access, and
//! the logical partitions.

use crate::fwlog;
use alloc::boxed::Box;
use alloc::vec::Vec;
use dtinfo::Platform;
use spin::{Mutex, Once};
use spmc::test_partition::TestPartition;
use spmc::{Config, NsMemory, Reply, Spmc};

/// Normal-world memory, by physical address (EL3 runs with the MMU off).
pub struct NsRam(());

impl NsRam {
    /// # Safety
    /// The value must go only to the SPMC, which reads and writes through it only ranges it
    /// checked against the DT's normal-world RAM and away from every secure range (see
    /// `lib/spmc`); anything else holding it could touch any physical address.
    pub unsafe fn new() -> NsRam {
        NsRam(())
    }
}

impl NsMemory for NsRam {
    fn read(&self, pa: u64, buf: &mut [u8]) {
        // SAFETY: by `NsRam::new`'s contract `pa..pa + len` is normal-world RAM the SPMC
        // validated; volatile reads, since the normal world may change it concurrently.
        unsafe { arch::read_shared(pa as usize, buf) };
    }

    fn write(&mut self, pa: u64, data: &[u8]) {
        // SAFETY: as for `read`: a validated normal-world RAM range.
        unsafe { arch::write_shared(pa as usize, data) };
    }
}

static SPMC: Once<Mutex<Spmc<NsRam>>> = Once::new();

/// Which services the SPMC holds (the DT edit describes their memory).
pub struct Services {
    /// The TPM service partition.
    pub tpm: bool,
    /// The UEFI variable partition.
    pub vars: bool,
}

/// Builds the SPMC from the DT and registers the partitions.
pub fn init(p: &Platform) -> Services {
    let mut secure: Vec<(u64, u64)> = p.secure_memory.iter().map(|r| (r.base, r.size)).collect();
    secure.push(crate::platform::SECURE_FLASH);
    let cfg = Config {
        ns_ram: p.memory.iter().map(|r| (r.base, r.size)).collect(),
        secure,
        exec_ctx: p.cpus.len().max(1) as u16,
    };
    // SAFETY: the SPMC is the only holder of this `NsRam`.
    let mut s = Spmc::new(cfg, unsafe { NsRam::new() });
    if s.add_partition(Box::new(TestPartition)).is_err() {
        fwlog!("spmc: test partition refused");
    }
    let tpm = tpm_partition(p, &mut s);
    let vars = var_partition(p, &mut s);
    crate::console::event(catena_event::FwEvent::Spmc, |e| {
        e.str("version", "1.2")
            .hex("id", u64::from(ffa_abi::SPMC_ID))
            .hex("partition", u64::from(ffa_abi::testsp::ID))
            .str("uuid", &ffa_abi::uuid_text(&ffa_abi::testsp::UUID))
    });
    SPMC.call_once(|| Mutex::new(s));
    Services { tpm, vars }
}

/// Adds the UEFI variable partition over the secure flash; reports what opening the store
/// found (`fw ev=varstore`).
fn var_partition(p: &Platform, s: &mut Spmc<NsRam>) -> bool {
    let cut = crate::fwcfg::varstore_cut(p);
    let (mut part, r) = match crate::vars::partition(p, cut) {
        Ok(x) => x,
        Err(reason) => {
            crate::console::event(catena_event::FwEvent::Varstore, |e| {
                e.str("state", "error").str("reason", reason)
            });
            return false;
        }
    };
    if let Some(n) = crate::vars::bench_calls(&crate::fwcfg::cmdline(p)) {
        let ok = crate::vars::bench_direct(&mut part, n);
        crate::console::event(catena_event::FwEvent::EfivarBench, |e| {
            e.u64("calls", u64::from(n)).u64("ok", u64::from(ok))
        });
    }
    measure_secure_boot(part.vars());
    let vars = part.vars().all().count();
    let added = s.add_partition(Box::new(part));
    crate::console::event(catena_event::FwEvent::Varstore, |e| {
        let e = match added {
            Ok(()) => e.str("state", "ready"),
            Err(_) => e.str("state", "error").str("reason", "partition-refused"),
        };
        e.u64("vars", vars as u64)
            .u64("bank", u64::from(r.bank))
            .u64("seq", u64::from(r.seq))
            .u64("formatted", u64::from(r.formatted))
            .u64("blank", u64::from(r.blank))
            .u64("torn", u64::from(r.torn))
            .u64("corrupt", r.corrupt as u64)
            .u64("superseded", r.superseded as u64)
            .u64("compacted", u64::from(r.compacted))
            .hex("partition", u64::from(uefi_vars::partition::PARTITION_ID))
            .hex("buffer", crate::platform::MM_BUFFER.0)
    });
    added.is_ok()
}

/// Adds the TPM service partition when the DT has a TIS, after TPM2_Startup; reports the TPM's
/// state either way (a TPM that fails keeps its partition: the normal world's driver then sees
/// the error bit in the CRB and reports it).
fn tpm_partition(p: &Platform, s: &mut Spmc<NsRam>) -> bool {
    use crate::tpm::Startup;
    let Some((part, startup, id)) = crate::tpm::partition(p) else {
        crate::console::event(catena_event::FwEvent::Tpm, |e| e.str("state", "absent"));
        return false;
    };
    if matches!(startup, Startup::Done { .. }) && crate::measure::init() {
        measure_firmware();
    }
    let added = s.add_partition(Box::new(part));
    crate::console::event(catena_event::FwEvent::Tpm, |e| {
        let e = match (&startup, added) {
            (_, Err(_)) => e.str("state", "error").str("reason", "partition-refused"),
            (Startup::Done { already }, Ok(())) => e
                .str("state", "ready")
                .str("startup", if *already { "already" } else { "clear" }),
            (Startup::Rc(rc), Ok(())) => e
                .str("state", "error")
                .str("reason", "startup-rc")
                .hex("rc", u64::from(*rc)),
            (Startup::Failed(r), Ok(())) => e.str("state", "error").str("reason", r),
        };
        e.hex("partition", u64::from(tpm_service::PARTITION_ID))
            .str("uuid", &ffa_abi::uuid_text(&tpm_service::den0138::UUID))
            .hex("crb", crate::platform::TPM_CRB.0)
            .hex("id", id)
    });
    added.is_ok()
}

/// PCR 0: the firmware's version string (EV_S_CRTM_VERSION) and its image as loaded in
/// flash, every byte from 0 to the image's end — the same bytes as `firmware.bin`
/// (EV_EFI_PLATFORM_FIRMWARE_BLOB2).
fn measure_firmware() {
    use tcglog::ev;
    let version = concat!("Catena firmware ", env!("CARGO_PKG_VERSION"), "\0");
    crate::measure::event(
        0,
        ev::S_CRTM_VERSION,
        version.as_bytes(),
        version.as_bytes(),
    );
    unsafe extern "C" {
        static __image_flash_end: u8;
    }
    let len = &raw const __image_flash_end as usize;
    let mut image = alloc::vec::Vec::with_capacity(len);
    for a in (0..len).step_by(4) {
        // SAFETY: flash0 from 0 to the image's end (16-byte aligned, linker.ld): the loaded
        // image, in read-array mode (nothing has programmed the flash yet this boot). Address
        // 0 is flash here, so the read is `arch::read32_at`'s `ldr`, not a Rust pointer.
        image.extend_from_slice(&unsafe { arch::read32_at(a) }.to_le_bytes());
    }
    // UEFI_PLATFORM_FIRMWARE_BLOB2: description length, description, base, length.
    let desc = b"catena-firmware";
    let mut data = alloc::vec![desc.len() as u8];
    data.extend_from_slice(desc);
    data.extend_from_slice(&0u64.to_le_bytes());
    data.extend_from_slice(&(len as u64).to_le_bytes());
    crate::measure::event(0, ev::EFI_PLATFORM_FIRMWARE_BLOB2, &image, &data);
}

/// PCR 7: the Secure Boot state from the variable store (UEFI 2.10 §32.4.1 and PFP §10.4.4:
/// SecureBoot, PK, KEK, db, dbx even when absent, dbt and dbr when present), each as
/// EV_EFI_VARIABLE_DRIVER_CONFIG over its UEFI_VARIABLE_DATA.
fn measure_secure_boot(vars: &uefi_vars::Vars<crate::vars::StoreFlash>) {
    use uefi_vars::GLOBAL_VARIABLE as G;
    use uefi_vars::siglist::IMAGE_SECURITY_DATABASE as DB;
    let list: [(&[u8; 16], &str, bool); 7] = [
        (&G, "SecureBoot", true),
        (&G, "PK", true),
        (&G, "KEK", true),
        (&DB, "db", true),
        (&DB, "dbx", true),
        (&DB, "dbt", false),
        (&DB, "dbr", false),
    ];
    for (guid, name, always) in list {
        let n = uefi_vars::client::utf16z(name);
        let data = vars.get(guid, &n).map(|v| v.data.clone()).ok();
        if data.is_none() && !always {
            continue;
        }
        let v = crate::measure::variable(guid, &n, data.as_deref().unwrap_or(&[]));
        crate::measure::event(7, tcglog::ev::EFI_VARIABLE_DRIVER_CONFIG, &v, &v);
    }
}

/// One FF-A call from the normal world.
pub fn handle(x: &[u64; 18]) -> Reply {
    match SPMC.get() {
        Some(s) => s.lock().handle(x),
        None => {
            let mut regs = [0u64; 18];
            regs[0] = u64::from(ffa_abi::fid::ERROR);
            regs[2] = u64::from(ffa_abi::FfaError::NotSupported as i32 as u32);
            Reply {
                regs,
                wide: false,
                call: ffa_abi::fid::name(x[0] as u32),
                status: Err(ffa_abi::FfaError::NotSupported),
            }
        }
    }
}
