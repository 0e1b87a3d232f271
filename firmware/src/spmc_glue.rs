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
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: by `NsRam::new`'s contract `pa..pa + len` is normal-world RAM the SPMC
            // validated; volatile byte reads, since the normal world may change it concurrently.
            *b = unsafe { core::ptr::read_volatile((pa as usize + i) as *const u8) };
        }
    }

    fn write(&mut self, pa: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as for `read`: a validated normal-world RAM range.
            unsafe { core::ptr::write_volatile((pa as usize + i) as *mut u8, *b) };
        }
    }
}

static SPMC: Once<Mutex<Spmc<NsRam>>> = Once::new();

/// Secure flash, where this image runs from (QEMU virt).
const SECURE_FLASH: (u64, u64) = (0, 0x0400_0000);

/// Builds the SPMC from the DT and registers the partitions; true if the TPM service is one.
pub fn init(p: &Platform) -> bool {
    let mut secure: Vec<(u64, u64)> = p.secure_memory.iter().map(|r| (r.base, r.size)).collect();
    secure.push(SECURE_FLASH);
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
    crate::console::event(catena_event::FwEvent::Spmc, |e| {
        e.str("version", "1.2")
            .hex("id", u64::from(ffa_abi::SPMC_ID))
            .hex("partition", u64::from(ffa_abi::testsp::ID))
            .str("uuid", &ffa_abi::uuid_text(&ffa_abi::testsp::UUID))
    });
    SPMC.call_once(|| Mutex::new(s));
    tpm
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
