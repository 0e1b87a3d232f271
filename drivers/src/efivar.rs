//! `efivar`: the UEFI variables in the firmware's variable partition, through MM communicate
//! messages over FF-A (EDK2's SMM variable protocol, as U-Boot's `efi_variable_tee.c` speaks
//! it: FFA_MSG_SEND_DIRECT_REQ with x3 = the message's offset in a shared buffer).
//!
//! | driver      | bus      | binds to                                                   |
//! |-------------|----------|------------------------------------------------------------|
//! | `mm-buffer` | platform | `catena,ffa-mm-buffer` (the buffer the firmware reserves)  |
//! | `efivar`    | ffa      | the variable partition's UUID; defers until `mm-buffer` saw the buffer |
//!
//! Like the TPM, the variables exist only once the FF-A core has probed, after the hyp is
//! finalised: a consumer at `late` finds none (Linux's `load_uefi_certs` under pKVM).

use crate::ffa::{errno, with_session};
use crate::kapi;
use alloc::format;
use alloc::string::String;
use catena_event::Kind;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use ffa_abi::Uuid;
use ffa_core::Form;
use spin::Mutex;
use uefi_vars::client::{Channel, Client, from_utf16z};
use uefi_vars::partition::{Buffer, OutsideBuffer, UUID};
use uefi_vars::{GLOBAL_VARIABLE, status};

/// The buffer the firmware reserved: (base, size), from the `catena,ffa-mm-buffer` node.
static BUFFER: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// The DT's description of the buffer (the project-local binding; docs/uefi-variables.md).
pub const BUFFER_DRIVER: Driver = Driver {
    name: "mm-buffer",
    bus: "platform",
    ids: &[MatchId::Compatible("catena,ffa-mm-buffer")],
    probe: buffer_probe,
    bound: None,
};

/// Smallest buffer worth using: the headers, an access structure and a short name.
const MIN_BUFFER: u64 = 4096;

fn buffer_probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let r = *ctx
        .device()
        .regions
        .first()
        .ok_or(ProbeError::Failed("no reg"))?;
    if r.size < MIN_BUFFER || r.base % 4096 != 0 {
        return Err(ProbeError::Failed(
            "MM buffer smaller than a page or unaligned",
        ));
    }
    *BUFFER.lock() = Some((r.base, r.size));
    Ok(())
}

/// The partition's driver.
pub const DRIVER: Driver = Driver {
    name: "efivar",
    bus: crate::ffa::BUS,
    ids: &[MatchId::Uuid(UUID)],
    probe,
    bound: None,
};

/// The buffer through the kernel's identity map (Normal memory), kept coherent with a
/// partition that reads and writes it with its MMU off: cleaned to the point of coherency
/// after each write, cleaned and invalidated before each read.
pub struct Pages {
    base: u64,
    size: u64,
}

impl Pages {
    fn at(&self, off: u64, len: usize) -> Result<u64, OutsideBuffer> {
        let end = off.checked_add(len as u64).ok_or(OutsideBuffer)?;
        if end > self.size {
            return Err(OutsideBuffer);
        }
        Ok(self.base + off)
    }
}

impl Buffer for Pages {
    fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), OutsideBuffer> {
        let a = self.at(off, buf.len())?;
        arch::clean_to_poc(a, buf.len() as u64);
        // SAFETY: `[a, a + len)` lies in the buffer (checked by `at`), reserved RAM only this
        // driver and the partition use; it was just cleaned, so no dirty data is lost.
        unsafe { arch::invalidate(a, buf.len() as u64) };
        // SAFETY: inside the buffer, identity-mapped as RAM by the kernel; volatile because
        // the partition writes it behind the compiler's back.
        unsafe { arch::read_shared(a as usize, buf) };
        Ok(())
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), OutsideBuffer> {
        let a = self.at(off, data.len())?;
        // SAFETY: as for `read`.
        unsafe { arch::write_shared(a as usize, data) };
        arch::clean_to_poc(a, data.len() as u64);
        Ok(())
    }
}

/// Direct requests on the FF-A session (REQ: the MM ABI is defined on it).
pub struct Ffa {
    id: u16,
    props: u32,
    uuid: Uuid,
}

/// How many times a BUSY answer is retried.
const BUSY_RETRIES: usize = 100;

impl Channel for Ffa {
    fn call(&mut self, offset: u64) -> Result<i64, &'static str> {
        for _ in 0..BUSY_RETRIES {
            // One register out and back (x3), the rest zero.
            let mut a = [offset];
            let r = with_session(|f| {
                f.send_in_place(self.id, self.props, &self.uuid, &mut a, Some(Form::Req))
            })
            .ok_or("no FF-A session")?;
            match r {
                Ok(_) => return Ok(a[0] as i64),
                Err(ffa_core::client::CallError::Ffa(ffa_abi::FfaError::Busy)) => {
                    core::hint::spin_loop()
                }
                Err(e) => {
                    log::error!("efivar: direct request: {}", errno(e));
                    return Err("ffa-direct-request");
                }
            }
        }
        Err("ffa-busy")
    }
}

/// The bound variable service's client.
pub type Efivar = Client<Pages, Ffa>;

static EFIVAR: Mutex<Option<Efivar>> = Mutex::new(None);

/// Runs `f` with the variable service, if it is bound.
pub fn with_efivar<R>(f: impl FnOnce(&mut Efivar) -> R) -> Option<R> {
    EFIVAR.lock().as_mut().map(f)
}

/// A one-byte global (SecureBoot, SetupMode) as 0/1, or `-` when it is absent or malformed.
fn flag(c: &mut Efivar, name: &str) -> &'static str {
    match c.get(&GLOBAL_VARIABLE, name) {
        Ok((_, d)) if d == [0] => "0",
        Ok((_, d)) if d == [1] => "1",
        _ => "-",
    }
}

fn probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let Some((base, size)) = *BUFFER.lock() else {
        return Err(ProbeError::Defer(
            "no MM buffer described yet (catena,ffa-mm-buffer)",
        ));
    };
    let dev = ctx.device();
    let ch = Ffa {
        id: dev.prop("partition-id").unwrap_or(0) as u16,
        props: dev.prop("properties").unwrap_or(0) as u32,
        uuid: dev.uuid.unwrap_or(ffa_abi::NIL_UUID),
    };
    let path = String::from(ctx.path());
    let up = (|| {
        let mut c = Client::new(Pages { base, size }, ch)
            .map_err(|e| format!("payload-size: {}", e.name()))?;
        enroll(&mut c);
        let vars = c.names().map_err(|e| format!("names: {}", e.name()))?.len();
        Ok::<_, String>((c, vars))
    })();
    match up {
        Ok((mut c, vars)) => {
            let (sb, sm) = (flag(&mut c, "SecureBoot"), flag(&mut c, "SetupMode"));
            kapi::emit(Kind::Efivar, |w| {
                w.str("state", "ready")
                    .str("dev", &path)
                    .u64("vars", vars as u64)
                    .str("secure_boot", sb)
                    .str("setup_mode", sm)
                    .u64("payload", c.payload_size() as u64)
            });
            *EFIVAR.lock() = Some(c);
            Ok(())
        }
        Err(reason) => {
            log::error!("efivar: {path}: {reason}");
            kapi::emit(Kind::Efivar, |w| {
                w.str("state", "error")
                    .str("dev", &path)
                    .str("reason", &reason)
            });
            Err(ProbeError::Failed("efivar"))
        }
    }
}

/// Where enrolment files arrive (`cargo xtask run --enroll DIR`): `NN-VAR` or
/// `NN-VAR.append`, in name order, VAR one of the Secure Boot variables, each an
/// `EFI_VARIABLE_AUTHENTICATION_2` file as efitools' `sign-efi-sig-list` writes it.
pub const ENROLL_PREFIX: &str = "opt/catena/enroll/";

/// Largest enrolment file read.
const ENROLL_MAX: u32 = 256 * 1024;

/// Sets each enrolment file's variable through the partition, so every signature check runs
/// in the firmware (there is no other way into the store); reports each result.
fn enroll(c: &mut Efivar) {
    use uefi_vars::attr::*;
    let sb =
        NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
    for (f, data) in crate::fwcfg::files(ENROLL_PREFIX, ENROLL_MAX) {
        let file = &f.name[ENROLL_PREFIX.len()..];
        let (stem, append) = match file.strip_suffix(".append") {
            Some(s) => (s, true),
            None => (file, false),
        };
        let var = stem.split_once('-').map(|(_, v)| v).unwrap_or("");
        let result = match (
            data,
            ["PK", "KEK", "db", "dbx", "dbt", "dbr"].contains(&var),
        ) {
            (Err(e), _) => {
                log::error!("efivar: enrol {file}: {e}");
                "too-large"
            }
            (_, false) => "not-a-secure-boot-variable",
            (Ok(d), true) => {
                let attrs = if append { sb | APPEND_WRITE } else { sb };
                match c.set(&vendor_of(var), var, attrs, &d) {
                    Ok(()) => status::name(status::SUCCESS),
                    Err(e) => e.name(),
                }
            }
        };
        kapi::emit(Kind::Efivar, |w| {
            w.str("op", "enroll")
                .str("name", var)
                .str("file", file)
                .str("result", result)
        });
    }
}

/// The vendor GUID a variable name lives under: the global ones, the image security database,
/// else Catena's test vendor.
fn vendor_of(name: &str) -> [u8; 16] {
    match name {
        "PK" | "KEK" | "SecureBoot" | "SetupMode" | "SignatureSupport" => GLOBAL_VARIABLE,
        "db" | "dbx" | "dbt" | "dbr" => uefi_vars::siglist::IMAGE_SECURITY_DATABASE,
        _ => TEST_VENDOR,
    }
}

/// A value as an event shows it: the certificates' subjects and hash counts of a signature
/// list, the text of printable ASCII, else its length and first bytes.
fn describe(name: &str, d: &[u8]) -> String {
    use der::Decode;
    use uefi_vars::siglist;
    if vendor_of(name) != TEST_VENDOR
        && d.len() > 1
        && let Ok(lists) = siglist::parse(d)
    {
        let mut parts = alloc::vec::Vec::new();
        for l in &lists {
            for e in &l.entries {
                parts.push(match l.sig_type {
                    siglist::CERT_X509 => match x509_cert::Certificate::from_der(e.data) {
                        Ok(c) => format!("x509:{}", c.tbs_certificate.subject),
                        Err(_) => String::from("x509:unparsable"),
                    },
                    siglist::CERT_SHA256 => String::from("sha256"),
                    _ => String::from("other"),
                });
            }
        }
        return parts.join("+");
    }
    if !d.is_empty() && d.iter().all(|b| b.is_ascii_graphic()) {
        return String::from_utf8_lossy(d).into_owned();
    }
    let head: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("len{}:{head}", d.len())
}

/// Catena's vendor GUID for the variables its tests write.
pub const TEST_VENDOR: [u8; 16] = uefi_vars::CATENA_TEST_VENDOR;

/// One variable's attributes and contents as a line of text (the shell's `efivar get`).
pub fn get_text(c: &mut Efivar, name: &str) -> String {
    match c.get(&vendor_of(name), name) {
        Ok((attrs, d)) => format!(
            "{name}: attributes {attrs:#x}, {} bytes: {}\n",
            d.len(),
            describe(name, &d)
        ),
        Err(e) => format!("{name}: {}\n", e.name()),
    }
}

/// One test operation on the variables (`catena.efivar_ops`), reported as `efivar op=...`.
pub fn run_op(op: &bootparams::EfivarOp<'_>) {
    use bootparams::EfivarOp;
    let attrs = uefi_vars::attr::NON_VOLATILE
        | uefi_vars::attr::BOOTSERVICE_ACCESS
        | uefi_vars::attr::RUNTIME_ACCESS;
    let r = with_efivar(|c| match op {
        EfivarOp::Set(name, value) => c
            .set(&vendor_of(name), name, attrs, value.as_bytes())
            .map(|()| None),
        EfivarOp::Get(name) => c
            .get(&vendor_of(name), name)
            .map(|(_, d)| Some(describe(name, &d))),
        EfivarOp::Delete(name) => c.set(&vendor_of(name), name, attrs, &[]).map(|()| None),
        EfivarOp::List => c.names().map(|n| {
            let names: alloc::vec::Vec<String> =
                n.iter().map(|(_, name)| from_utf16z(name)).collect();
            Some(names.join("+"))
        }),
    });
    let (name, opname) = match op {
        EfivarOp::Set(n, _) => (*n, "set"),
        EfivarOp::Get(n) => (*n, "get"),
        EfivarOp::Delete(n) => (*n, "delete"),
        EfivarOp::List => ("*", "list"),
    };
    kapi::emit(Kind::Efivar, |w| {
        let w = w.str("op", opname).str("name", name);
        match &r {
            None => w.str("result", "no-efivar"),
            Some(Ok(None)) => w.str("result", status::name(status::SUCCESS)),
            Some(Ok(Some(v))) => w
                .str("result", status::name(status::SUCCESS))
                .str("value", v),
            Some(Err(e)) => w.str("result", e.name()),
        }
    });
}

/// The benchmark's variable: 64 bytes, rewritten and read back each round.
pub const BENCH_NAME: &str = "CatenaBench";

/// `cargo xtask bench efivar`'s kernel side: N rounds of SetVariable then GetVariable of
/// [`BENCH_NAME`] through the partition (kernel -> hyp -> SPMC -> partition -> flash), between
/// the instruction counter's markers; how many rounds succeeded.
pub fn bench(n: u32) -> Option<u32> {
    use uefi_vars::attr::*;
    with_efivar(|c| {
        let attrs = NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS;
        let mut ok = 0;
        arch::count_start();
        for i in 0..n {
            let value = [i as u8; 64];
            if c.set(&TEST_VENDOR, BENCH_NAME, attrs, &value).is_ok()
                && c.get(&TEST_VENDOR, BENCH_NAME)
                    .is_ok_and(|(_, d)| d == value)
            {
                ok += 1;
            }
        }
        arch::count_end();
        ok
    })
}
