//! The `@event` line protocol shared by the kernel (writer) and `tools/` (parser).
//!
//! A line is `@event <kind> key=value key=value ...`. Keys are `[a-z0-9_-]+`. A value that is
//! empty or holds a space, a quote, a backslash or `=` is written in double quotes with `\"`
//! and `\\` escapes; control characters are replaced by `?` so a line never breaks. The writer
//! needs no allocation; the parser needs `alloc`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// The marker that starts every event line.
pub const PREFIX: &str = "@event ";

/// The key every emitter (firmware, hyp, kernel) adds last: microseconds since reset, from the
/// architected counter (CNTPCT, which QEMU starts at 0 at reset; CNTVOFF is 0 everywhere, so
/// the kernel's virtual count is the same clock).
pub const TIME_KEY: &str = "t";

/// Counter ticks at `hz` as microseconds (0 when the frequency is unknown).
pub fn ticks_to_us(ticks: u64, hz: u64) -> u64 {
    scale(ticks, hz, 1_000_000)
}

/// Counter ticks at `hz` as nanoseconds (0 when the frequency is unknown).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    scale(ticks, hz, 1_000_000_000)
}

/// `ticks * per_second / hz`, in u128 so the product cannot overflow (the quotient is cut to
/// u64 only after centuries of uptime at 1 MHz).
fn scale(ticks: u64, hz: u64, per_second: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    u64::try_from(u128::from(ticks) * u128::from(per_second) / u128::from(hz)).unwrap_or(u64::MAX)
}

/// The median of `v` (sorted in place; the lower middle of an even count; 0 when empty): a
/// benchmark's per-call time that one long stall of the host does not move.
pub fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    match v.len() {
        0 => 0,
        n => v[(n - 1) / 2],
    }
}

/// Declares the event kinds: one list, the only way an emitter names a kind (so a new kind is
/// added here or not at all), and what `qemu.toml` patterns are checked against.
macro_rules! kinds {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $v,)* }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// Its spelling on the wire.
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            /// The value spelled `s`, if any.
            pub fn from_name(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|k| k.name() == s)
            }
        }
    };
}

kinds! {
    /// The kind of an event line: the word after `@event`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// The kernel started (`el`, `cpus`, `psci`, `base`, `cmdline`).
        Boot = "boot",
        /// The clocksource was checked.
        Clock = "clock",
        /// A secondary CPU's state (`id`, `state`).
        Cpu = "cpu",
        /// A device still deferred at late_sync.
        Deferred = "deferred",
        /// The pending list is retried.
        DeferredRetry = "deferred-retry",
        /// The boot ended (`status`, `reason`).
        Done = "done",
        /// An unexpected exception (the emergency path).
        Fault = "fault",
        /// The FF-A core's state.
        Ffa = "ffa",
        /// The FF-A benchmark's result.
        FfaBench = "ffa-bench",
        /// A partition became a device.
        FfaPartition = "ffa-partition",
        /// The FF-A test driver's result.
        FfaTest = "ffa-test",
        /// The firmware (secure UART), with its own `ev=` (see [`FwEvent`]).
        Fw = "fw",
        /// The hyp's state, faults, refusals.
        Hyp = "hyp",
        /// A hyp probe's result (test hook).
        HypProbe = "hyp-probe",
        /// One initcall ran.
        Initcall = "initcall",
        /// The interrupt controller is up.
        Irqchip = "irqchip",
        /// One initcall level ran.
        Level = "level",
        /// A panic (the emergency path).
        Panic = "panic",
        /// A kernel parameter that was unknown or refused.
        Param = "param",
        /// A driver probe ran.
        Probe = "probe",
        /// The timer tick was proven.
        Tick = "tick",
        /// The TPM's state (`state=ready|error`, `transport`, `dev`, ...).
        Tpm = "tpm",
        /// A TPM consumer ran (`name`, `level`, `result=ok|no-tpm|fail`).
        TpmConsumer = "tpm-consumer",
        /// A PCR value read back (`index`, `bank`, `value`, `check`).
        TpmPcr = "tpm-pcr",
        /// The UEFI variable service: bound (`state=ready vars=N secure_boot= setup_mode=`) or
        /// not, and each test operation (`op=... name=... result=...`).
        Efivar = "efivar",
        /// `cargo xtask bench efivar`'s kernel side ran (`calls`, `ok`).
        EfivarBench = "efivar-bench",
        /// The firmware's measured-boot log: parsed, replayed, compared with the PCRs.
        Eventlog = "eventlog",
        /// The kernel's measurement list: started (`state=ready`), or checked against PCR 10.
        Ima = "ima",
        /// Evidence for the host's tools, in parts (`name`, `part`, `of`, `hex`).
        Evidence = "evidence",
        /// A key added to a keyring, or refused or taken out as revoked.
        Key = "key",
        /// A keyring's size after the UEFI certificates were loaded.
        Keyring = "keyring",
        /// `load_uefi_certs`: where it ran and how it ended (or a variable it could not use).
        Certs = "certs",
        /// `cargo xtask bench tpm`'s kernel side ran (`calls`, `ok`).
        TpmBench = "tpm-bench",
        /// The quote for a verifier: made (`state=quoted`, `pcrs`, `nonce`) or why not.
        Attest = "attest",
        /// The initramfs: read (`state=ok files= bytes=`), absent, or refused (`reason`).
        Initramfs = "initramfs",
        /// A user process ended (`name`, `pid`, `state=exited code= writes=` or
        /// `state=killed reason=`).
        Process = "process",
        /// One file of the initramfs (`name`, `size`, and for a program `elf=ok entry=` or
        /// `elf=refused reason=`).
        InitramfsFile = "initramfs-file",
        /// The process scheduler: started (`init`, `slice_ticks`, `pan`) or stopped (`reason`,
        /// `switches`, `preemptions`).
        Sched = "sched",
        /// The shell (an EL0 program): its prompt (`state=prompt`), and each command's outcome
        /// (`cmd`, `status=ok|absent|error`, `lines`).
        Shell = "shell",
        /// init (an EL0 program): what it started and how each ended.
        Init = "init",
        /// A distribution's Linux booted in the kernel's place on our firmware (scenario
        /// `linux`): its initramfs reports what Linux made of the FF-A partitions
        /// (`state=init release=`, `module= result=`, `ffa=VERSION`, `ffa-device= id= uuid=
        /// driver=`, `tpm-crb-ffa=DEV abi=` or `result=error rc=`).
        Linux = "linux",
    }
}

kinds! {
    /// The firmware's events: `@event fw ev=<this> ...`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FwEvent {
        /// The firmware started.
        Boot = "boot",
        /// The kernel was loaded.
        Payload = "payload",
        /// The normal world was entered.
        EnterNs = "enter-ns",
        /// The first FF-A call of its kind and outcome was answered (later ones are
        /// counted, see `ffa-calls`).
        Ffa = "ffa",
        /// At power-off: how many FF-A calls of one kind and outcome were answered (`n`).
        FfaCalls = "ffa-calls",
        /// A PSCI call was answered.
        Psci = "psci",
        /// An SMC nobody answers.
        Smc = "smc",
        /// The SPMC is up.
        Spmc = "spmc",
        /// The TPM service partition: its TPM's state after TPM2_Startup.
        Tpm = "tpm",
        /// `cargo xtask bench tpm`'s direct side ran (`calls`, `ok`).
        TpmBench = "tpm-bench",
        /// The UEFI variable partition: what opening the store found.
        Varstore = "varstore",
        /// Measured boot: the log handed over (`events`, `bytes`, `log` address, `result`).
        Measured = "measured",
        /// Test-only: the variable store's power cut at flash step `step`.
        VarstoreCut = "varstore-cut",
        /// `cargo xtask bench efivar`'s direct side ran (`calls`, `ok`).
        EfivarBench = "efivar-bench",
        /// The firmware failed and powers off.
        Fail = "fail",
    }
}

/// Writes one event line (without the trailing newline) into `w`.
pub struct EventWriter<'a, W: Write> {
    w: &'a mut W,
    res: fmt::Result,
}

impl<'a, W: Write> EventWriter<'a, W> {
    /// Starts a line of `kind`.
    pub fn new(w: &'a mut W, kind: Kind) -> Self {
        let res = w.write_str(PREFIX).and_then(|_| w.write_str(kind.name()));
        EventWriter { w, res }
    }

    /// Starts a firmware line: `fw ev=<ev>`.
    pub fn firmware(w: &'a mut W, ev: FwEvent) -> Self {
        Self::new(w, Kind::Fw).str("ev", ev.name())
    }

    /// Adds a string field, quoted if it needs to be.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        if self.res.is_ok() {
            self.res = write_field(self.w, key, value);
        }
        self
    }

    /// Adds a decimal field.
    pub fn u64(mut self, key: &str, value: u64) -> Self {
        if self.res.is_ok() {
            self.res = write!(self.w, " {key}={value}");
        }
        self
    }

    /// Adds a hexadecimal field (`0x...`).
    pub fn hex(mut self, key: &str, value: u64) -> Self {
        if self.res.is_ok() {
            self.res = write!(self.w, " {key}={value:#x}");
        }
        self
    }

    /// Adds the time field (`t=`, microseconds since reset).
    pub fn time(self, us: u64) -> Self {
        self.u64(TIME_KEY, us)
    }

    /// Ends the line and reports whether every write succeeded.
    pub fn finish(self) -> fmt::Result {
        self.res
    }
}

fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v.chars()
            .any(|c| c == ' ' || c == '"' || c == '\\' || c == '=' || c.is_control())
}

fn write_field<W: Write>(w: &mut W, key: &str, value: &str) -> fmt::Result {
    write!(w, " {key}=")?;
    if !needs_quotes(value) {
        return w.write_str(value);
    }
    w.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            c if c.is_control() => w.write_char('?')?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

/// A parsed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The kind (`boot`, `initcall`, `probe`, `done`, ...).
    pub kind: String,
    /// Fields in line order.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a line that starts with `@event ` is not a valid event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// No kind after the marker.
    MissingKind,
    /// A field without `=`.
    MissingEquals(String),
    /// A quoted value without its closing quote.
    UnterminatedQuote(String),
    /// A key with characters outside `[a-z0-9_-]`.
    BadKey(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::MissingKind => f.write_str("event line has no kind"),
            ParseError::MissingEquals(t) => write!(f, "field `{t}` has no `=`"),
            ParseError::UnterminatedQuote(k) => write!(f, "value of `{k}` has no closing quote"),
            ParseError::BadKey(k) => write!(f, "bad key `{k}`"),
        }
    }
}

fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses a console line. `Ok(None)` when the line is not an event line (the marker may follow
/// other output on the same line, e.g. a log prefix, and is found anywhere).
pub fn parse_line(line: &str) -> Result<Option<Event>, ParseError> {
    let Some(start) = line.find(PREFIX) else {
        return Ok(None);
    };
    let rest = line[start + PREFIX.len()..].trim_end_matches(['\r', '\n']);
    let (kind, mut rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if !valid_word(kind) {
        return Err(ParseError::MissingKind);
    }
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else {
            let tok = rest.split(' ').next().unwrap_or(rest);
            return Err(ParseError::MissingEquals(tok.into()));
        };
        let key = &rest[..eq];
        if !valid_word(key) {
            return Err(ParseError::BadKey(key.into()));
        }
        let after = &rest[eq + 1..];
        if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else {
                return Err(ParseError::UnterminatedQuote(key.into()));
            };
            fields.push((key.into(), value));
            rest = &q[end..];
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            fields.push((key.into(), after[..end].into()));
            rest = &after[end..];
        }
    }
    Ok(Some(Event {
        kind: kind.into(),
        fields,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn medians_ignore_one_long_stall_and_ticks_become_nanoseconds() {
        let mut v = [120, 118, 5000, 121, 119];
        assert_eq!(median(&mut v), 120);
        assert_eq!(median(&mut [3, 1, 2, 4]), 2);
        assert_eq!(median(&mut []), 0);
        // QEMU virt's counter: 62.5 MHz, 16 ns a tick.
        assert_eq!(ticks_to_ns(7_500, 62_500_000), 120_000);
        assert_eq!(ticks_to_ns(1, 0), 0);
    }

    #[test]
    fn kinds_are_spelled_once_and_parse_back() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(*k));
            assert!(valid_word(k.name()), "{}", k.name());
            assert_eq!(Kind::ALL.iter().filter(|o| o.name() == k.name()).count(), 1);
        }
        for e in FwEvent::ALL {
            assert_eq!(FwEvent::from_name(e.name()), Some(*e));
        }
        assert_eq!(Kind::from_name("cpuz"), None);
        let mut s = String::new();
        EventWriter::firmware(&mut s, FwEvent::EnterNs)
            .u64("el", 2)
            .finish()
            .unwrap();
        assert_eq!(s, "@event fw ev=enter-ns el=2");
    }

    #[test]
    fn counter_ticks_become_microseconds() {
        assert_eq!(ticks_to_us(62_500_000, 62_500_000), 1_000_000);
        assert_eq!(ticks_to_us(625, 62_500_000), 10);
        assert_eq!(ticks_to_us(1_000, 0), 0);
        assert_eq!(ticks_to_us(u64::MAX, 1_000_000), u64::MAX);
        assert_eq!(ticks_to_us(u64::MAX, 1), u64::MAX);
        let mut s = String::new();
        EventWriter::new(&mut s, Kind::Tick)
            .u64("n", 1)
            .time(42)
            .finish()
            .unwrap();
        assert_eq!(s, "@event tick n=1 t=42");
        let e = parse_line(&s).unwrap().unwrap();
        assert_eq!(e.get(TIME_KEY), Some("42"));
    }

    fn line(f: impl FnOnce(EventWriter<'_, String>) -> EventWriter<'_, String>) -> String {
        let mut s = String::new();
        f(EventWriter::new(&mut s, Kind::Probe)).finish().unwrap();
        s
    }

    #[test]
    fn writes_plain_and_quoted_values() {
        let s = line(|e| {
            e.str("dev", "platform/pl011@9000000")
                .str("reason", "hyp not finalised")
                .u64("us", 12)
                .hex("id", 0x8001)
        });
        assert_eq!(
            s,
            "@event probe dev=platform/pl011@9000000 reason=\"hyp not finalised\" us=12 id=0x8001"
        );
    }

    #[test]
    fn round_trip_with_escapes() {
        let nasty = "a \"quoted\" \\ value=x\nnext";
        let s = line(|e| e.str("msg", nasty).str("empty", ""));
        assert!(!s.contains('\n'));
        let ev = parse_line(&s).unwrap().unwrap();
        assert_eq!(ev.kind, "probe");
        assert_eq!(ev.get("msg"), Some("a \"quoted\" \\ value=x?next"));
        assert_eq!(ev.get("empty"), Some(""));
    }

    #[test]
    fn parses_after_other_output_and_ignores_non_events() {
        assert_eq!(parse_line("[INFO] hello").unwrap(), None);
        let ev = parse_line("noise @event done status=ok\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, "done");
        assert_eq!(ev.fields, [("status".to_string(), "ok".to_string())]);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert_eq!(parse_line("@event "), Err(ParseError::MissingKind));
        assert_eq!(
            parse_line("@event x novalue"),
            Err(ParseError::MissingEquals("novalue".into()))
        );
        assert_eq!(
            parse_line("@event x k=\"open"),
            Err(ParseError::UnterminatedQuote("k".into()))
        );
        assert_eq!(
            parse_line("@event x K=1"),
            Err(ParseError::BadKey("K".into()))
        );
    }
}
