//! The kernel command line (`/chosen/bootargs`), parsed into typed parameters.
//!
//! Owns the list of parameters Catena understands and their value syntax. Words are separated
//! by spaces; a value may be double-quoted to hold spaces (`name="a b"`), as on Linux. A
//! parameter Catena does not know is *kept and reported* ([`Params::unknown`]), and a known one
//! with a bad value is reported with the reason ([`Params::invalid`]); neither stops parsing and
//! neither panics, whatever the bytes.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

/// A deliberate fault, for proving that the runner judges a broken boot as failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read from an unmapped address (data abort, EC 0x25).
    DataAbort,
    /// Execute an undefined instruction (EC 0x00).
    Undefined,
    /// `panic!` in an initcall.
    Panic,
    /// A fatal initcall error.
    InitcallError,
}

impl Fault {
    /// Every fault and its command-line spelling.
    pub const ALL: [(Fault, &'static str); 4] = [
        (Fault::DataAbort, "data-abort"),
        (Fault::Undefined, "undefined"),
        (Fault::Panic, "panic"),
        (Fault::InitcallError, "initcall-error"),
    ];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        Fault::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Log verbosity (the `log` crate's levels).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error = 1,
    /// And warnings.
    Warn,
    /// And information (default).
    Info,
    /// And debug.
    Debug,
    /// Everything.
    Trace,
}

/// A parameter with a value Catena cannot use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Invalid<'a> {
    /// Parameter name.
    pub name: &'a str,
    /// The value given.
    pub value: &'a str,
    /// Why it was refused.
    pub why: &'static str,
}

/// The parsed command line. Borrowed from the command-line string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// `loglevel=` (Linux numbers 0-7, or error|warn|info|debug|trace). Default info.
    pub loglevel: LogLevel,
    /// `catena.fault=`: inject a fault at the `device` level.
    pub fault: Option<Fault>,
    /// `catena.tick_hz=`: periodic timer tick rate, 1-1000. Default 100.
    pub tick_hz: u32,
    /// `catena.tick_proof=`: ticks that must arrive before boot goes on, 1-100. Default 3.
    pub tick_proof: u32,
    /// `catena.nosmp`: do not start secondary CPUs.
    pub nosmp: bool,
    /// `catena.ffa_early`: initialise FF-A at `pure`, before the hyp is installed (the
    /// init-order bug, reproduced on purpose).
    pub ffa_early: bool,
    /// `catena.hyp_probes`: after finalise, try to reach what the hyp hides; each must fail.
    pub hyp_probes: bool,
    /// `catena.ffa_bench=N`: N FF-A direct-request round trips to the test partition (0-100000).
    pub ffa_bench: Option<u32>,
    /// `catena.tpm_bench=N`: N PCR extends through the TPM (1-100000), for `bench tpm`.
    pub tpm_bench: Option<u32>,
    /// `catena.tpm_bench_pairs=N`: N pairs of PCR extends, one through the chain and one by
    /// the firmware through the TIS (a test SMC), each timed (1-100000), for `bench tpm`.
    pub tpm_bench_pairs: Option<u32>,
    /// `catena.efivar_bench=N`: N SetVariable+GetVariable rounds (1-100000), for `bench efivar`.
    pub efivar_bench: Option<u32>,
    /// `catena.certs_bench`: `load_uefi_certs` between the instruction counter's markers, for
    /// `bench certs`.
    pub certs_bench: bool,
    /// `catena.hyp_deny_req2`: the hyp refuses FFA_MSG_SEND_DIRECT_REQ2 (pKVM in Linux 7.3).
    pub hyp_deny_req2: bool,
    /// `catena.load_uefi_certs=late|late_sync`: where `load_uefi_certs` runs. Default
    /// `late_sync`, after the flush that binds the variable driver; `late` is Linux's level
    /// before Arm's 2026 RFC, where under pKVM the variables are not reachable yet.
    pub certs_late: bool,
    /// `catena.tpm_consumer=late|late_sync`: where the TPM consumer (`tpm_selftest`) runs.
    /// Default `late_sync`, after the deferred-probe flush that binds the TPM; `late` puts
    /// it before the flush, where it finds no TPM (Linux's IMA before IMA_INIT_LATE_SYNC).
    pub tpm_consumer_late: bool,
    /// `catena.verifier=A.B.C.D:PORT`: the attestation verifier the agent reaches over the
    /// network at the end of boot (checked where it is used).
    pub verifier: Option<&'a str>,
    /// `catena.efivar_ops=OP,OP,...` (test hook): variable operations run at `late_sync`, each
    /// reported (`set:Name=value`, `get:Name`, `del:Name`, `list`).
    pub efivar_ops: Vec<EfivarOp<'a>>,
    /// Words Catena does not know (`name` or `name=value`).
    pub unknown: Vec<&'a str>,
    /// Known parameters with values Catena refuses.
    pub invalid: Vec<Invalid<'a>>,
}

impl Default for Params<'_> {
    fn default() -> Self {
        Params {
            loglevel: LogLevel::Info,
            fault: None,
            tick_hz: 100,
            tick_proof: 3,
            nosmp: false,
            ffa_early: false,
            hyp_probes: false,
            ffa_bench: None,
            tpm_consumer_late: false,
            certs_late: false,
            hyp_deny_req2: false,
            tpm_bench: None,
            tpm_bench_pairs: None,
            efivar_bench: None,
            certs_bench: false,
            efivar_ops: Vec::new(),
            verifier: None,
            unknown: Vec::new(),
            invalid: Vec::new(),
        }
    }
}

/// Splits a command line into words, keeping double-quoted spans together.
/// An unterminated quote runs to the end of the line.
pub fn words(cmdline: &str) -> impl Iterator<Item = &str> {
    let mut rest = cmdline;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut in_quotes = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quotes = !in_quotes;
            } else if c.is_ascii_whitespace() && !in_quotes {
                end = i;
                break;
            }
        }
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

fn unquote(v: &str) -> &str {
    let v = v.strip_prefix('"').unwrap_or(v);
    v.strip_suffix('"').unwrap_or(v)
}

fn parse_u32_in(v: &str, lo: u32, hi: u32) -> Result<u32, &'static str> {
    let n: u32 = v.parse().map_err(|_| "not a decimal number")?;
    if n < lo || n > hi {
        return Err("out of range");
    }
    Ok(n)
}

/// One `catena.efivar_ops` operation, on a variable of Catena's test vendor GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EfivarOp<'a> {
    /// Set `name` to the text `value` (non-volatile, boot services and runtime).
    Set(&'a str, &'a str),
    /// Read `name`.
    Get(&'a str),
    /// Delete `name`.
    Delete(&'a str),
    /// List every variable's name.
    List,
}

/// Parses `catena.efivar_ops`: names of letters, digits, `_` and `-`; values of printable
/// characters other than `,`.
pub fn efivar_ops(v: &str) -> Result<Vec<EfivarOp<'_>>, &'static str> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut ops = Vec::new();
    for op in v.split(',') {
        let parsed = match op.split_once(':') {
            Some(("set", rest)) => match rest.split_once('=') {
                Some((n, val))
                    if name_ok(n)
                        && !val.is_empty()
                        && val.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    EfivarOp::Set(n, val)
                }
                _ => return Err("set:Name=value with a plain name and a printable value"),
            },
            Some(("get", n)) if name_ok(n) => EfivarOp::Get(n),
            Some(("del", n)) if name_ok(n) => EfivarOp::Delete(n),
            None if op == "list" => EfivarOp::List,
            _ => return Err("expected set:Name=value, get:Name, del:Name or list"),
        };
        ops.push(parsed);
    }
    if ops.len() > 32 {
        return Err("at most 32 operations");
    }
    Ok(ops)
}

/// Whether the test hooks (`catena.fault`, `catena.ffa_early`, `catena.hyp_probes`,
/// `catena.ffa_bench`, `catena.hyp_deny_req2`, `catena.tpm_bench`, `catena.tpm_bench_fw`,
/// `catena.tpm_bench_pairs`,
/// `catena.efivar_ops`, `catena.efivar_bench`, `catena.efivar_bench_fw`) are parameters of this image. A product image is built without them,
/// and for it they are unknown parameters like any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// Test hooks are unknown parameters.
    Refused,
    /// Test hooks are parsed (an image built with the `test-hooks` feature).
    Accepted,
}

/// The test hooks' names.
pub const HOOKS: [&str; 12] = [
    "catena.certs_bench",
    "catena.efivar_bench",
    // Read by the firmware (the benchmark's direct side); the kernel only recognises it.
    "catena.efivar_bench_fw",
    "catena.efivar_ops",
    "catena.fault",
    "catena.ffa_early",
    "catena.hyp_probes",
    "catena.ffa_bench",
    "catena.hyp_deny_req2",
    "catena.tpm_bench",
    // Read by the firmware (the benchmark's direct side); the kernel only recognises it.
    "catena.tpm_bench_fw",
    // Read by both: the kernel times the pairs, the firmware answers their direct halves.
    "catena.tpm_bench_pairs",
];

/// Parses a command line. Never fails: problems are collected in the result.
pub fn parse(cmdline: &str, hooks: Hooks) -> Params<'_> {
    let mut p = Params::default();
    for word in words(cmdline) {
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(unquote(v))),
            None => (word, None),
        };
        if hooks == Hooks::Refused && HOOKS.contains(&name) {
            p.unknown.push(word);
            continue;
        }
        let mut bad = |why: &'static str| {
            p.invalid.push(Invalid {
                name,
                value: value.unwrap_or(""),
                why,
            })
        };
        match (name, value) {
            ("loglevel", Some(v)) => match v {
                "0" | "1" | "2" | "3" | "error" => p.loglevel = LogLevel::Error,
                "4" | "warn" => p.loglevel = LogLevel::Warn,
                "5" | "6" | "info" => p.loglevel = LogLevel::Info,
                "7" | "debug" => p.loglevel = LogLevel::Debug,
                "trace" => p.loglevel = LogLevel::Trace,
                _ => bad("expected 0-7 or error|warn|info|debug|trace"),
            },
            ("catena.fault", Some(v)) => match Fault::ALL.iter().find(|(_, n)| *n == v) {
                Some((f, _)) => p.fault = Some(*f),
                None => bad("expected data-abort|undefined|panic|initcall-error"),
            },
            ("catena.tick_hz", Some(v)) => match parse_u32_in(v, 1, 1000) {
                Ok(n) => p.tick_hz = n,
                Err(why) => bad(why),
            },
            ("catena.tpm_bench", Some(v)) => match parse_u32_in(v, 1, 100_000) {
                Ok(n) => p.tpm_bench = Some(n),
                Err(why) => bad(why),
            },
            ("catena.tpm_bench_pairs", Some(v)) => match parse_u32_in(v, 1, 100_000) {
                Ok(n) => p.tpm_bench_pairs = Some(n),
                Err(why) => bad(why),
            },
            ("catena.efivar_bench", Some(v)) => match parse_u32_in(v, 1, 100_000) {
                Ok(n) => p.efivar_bench = Some(n),
                Err(why) => bad(why),
            },
            // The firmware's: recognised so they are not reported unknown.
            ("catena.tpm_bench_fw" | "catena.efivar_bench_fw", Some(_)) => {}
            ("catena.ffa_bench", Some(v)) => match parse_u32_in(v, 0, 100_000) {
                Ok(n) => p.ffa_bench = Some(n),
                Err(why) => bad(why),
            },
            ("catena.efivar_ops", Some(v)) => match efivar_ops(v) {
                Ok(ops) => p.efivar_ops = ops,
                Err(why) => bad(why),
            },
            ("catena.tick_proof", Some(v)) => match parse_u32_in(v, 1, 100) {
                Ok(n) => p.tick_proof = n,
                Err(why) => bad(why),
            },
            ("catena.load_uefi_certs", Some(v)) => match v {
                "late" => p.certs_late = true,
                "late_sync" => p.certs_late = false,
                _ => bad("expected late|late_sync"),
            },
            ("catena.verifier", Some(v)) if v.contains(':') => p.verifier = Some(v),
            ("catena.verifier", Some(_)) => bad("expected A.B.C.D:PORT"),
            ("catena.tpm_consumer", Some(v)) => match v {
                "late" => p.tpm_consumer_late = true,
                "late_sync" => p.tpm_consumer_late = false,
                _ => bad("expected late|late_sync"),
            },
            // init's own parameters (userland/init reads them from its argument, the command
            // line); the kernel only knows they are not mistakes.
            ("catena.run", Some(_)) | ("catena.shell", None) => {}
            ("catena.nosmp", None) => p.nosmp = true,
            ("catena.ffa_early", None) => p.ffa_early = true,
            ("catena.hyp_probes", None) => p.hyp_probes = true,
            ("catena.hyp_deny_req2", None) => p.hyp_deny_req2 = true,
            ("catena.certs_bench", None) => p.certs_bench = true,
            (
                "loglevel"
                | "catena.fault"
                | "catena.tick_hz"
                | "catena.tick_proof"
                | "catena.ffa_bench"
                | "catena.tpm_consumer"
                | "catena.verifier"
                | "catena.load_uefi_certs"
                | "catena.tpm_bench"
                | "catena.tpm_bench_fw"
                | "catena.tpm_bench_pairs"
                | "catena.efivar_bench"
                | "catena.efivar_bench_fw"
                | "catena.efivar_ops"
                | "catena.run",
                None,
            ) => bad("needs a value"),
            (
                "catena.nosmp"
                | "catena.ffa_early"
                | "catena.hyp_probes"
                | "catena.hyp_deny_req2"
                | "catena.certs_bench"
                | "catena.shell",
                Some(_),
            ) => bad("takes no value"),
            _ => p.unknown.push(word),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn parse(s: &str) -> Params<'_> {
        super::parse(s, Hooks::Accepted)
    }

    #[test]
    fn init_s_parameters_are_known_but_checked_for_shape() {
        let p = parse("catena.run=spin&,hello catena.shell");
        assert!(p.unknown.is_empty() && p.invalid.is_empty());
        let p = parse("catena.run catena.shell=1");
        assert_eq!(p.invalid.len(), 2);
    }

    #[test]
    fn the_tpm_consumer_moves_only_to_a_named_level() {
        assert!(!parse("").tpm_consumer_late);
        assert!(parse("catena.tpm_consumer=late").tpm_consumer_late);
        assert!(!parse("catena.tpm_consumer=late catena.tpm_consumer=late_sync").tpm_consumer_late);
        let p = parse("catena.tpm_consumer=early catena.tpm_consumer");
        assert_eq!(p.invalid.len(), 2);
        assert!(!p.tpm_consumer_late);
        // Not a test hook: a product image knows it.
        assert!(super::parse("catena.tpm_consumer=late", Hooks::Refused).tpm_consumer_late);
    }

    #[test]
    fn efivar_ops_parse_or_are_refused_whole() {
        let p = parse("catena.efivar_ops=set:A=1,get:A,del:B_c-9,list");
        assert_eq!(
            p.efivar_ops,
            vec![
                EfivarOp::Set("A", "1"),
                EfivarOp::Get("A"),
                EfivarOp::Delete("B_c-9"),
                EfivarOp::List
            ]
        );
        for bad in [
            "set:A", "get:", "get:A/B", "set:A=", "del:A,", "drop:A", "set:=x",
        ] {
            let line = alloc::format!("catena.efivar_ops={bad}");
            let p = parse(&line);
            assert!(p.efivar_ops.is_empty() && p.invalid.len() == 1, "{bad}");
        }
        assert!(
            super::parse("catena.efivar_ops=list", Hooks::Refused)
                .efivar_ops
                .is_empty(),
            "a test hook"
        );
    }

    #[test]
    fn a_product_image_does_not_know_the_test_hooks() {
        let line = "catena.hyp_probes catena.fault=panic catena.ffa_early catena.ffa_bench=5 catena.hyp_deny_req2 loglevel=debug";
        let p = super::parse(line, Hooks::Refused);
        assert_eq!(
            p.unknown,
            vec![
                "catena.hyp_probes",
                "catena.fault=panic",
                "catena.ffa_early",
                "catena.ffa_bench=5",
                "catena.hyp_deny_req2"
            ]
        );
        assert!(!p.hyp_probes && !p.ffa_early && p.fault.is_none() && p.ffa_bench.is_none());
        assert!(!p.hyp_deny_req2);
        assert_eq!(p.loglevel, LogLevel::Debug);
        let q = super::parse(line, Hooks::Accepted);
        assert!(q.unknown.is_empty() && q.hyp_probes && q.ffa_early && q.hyp_deny_req2);
        assert_eq!(q.ffa_bench, Some(5));
    }

    #[test]
    fn empty_line_gives_defaults() {
        assert_eq!(parse(""), Params::default());
        assert_eq!(parse("   \t "), Params::default());
    }

    #[test]
    fn known_parameters_are_typed() {
        let p = parse(
            "loglevel=7 catena.fault=data-abort catena.tick_hz=250 catena.tick_proof=5 catena.nosmp",
        );
        assert_eq!(p.loglevel, LogLevel::Debug);
        assert_eq!(p.fault, Some(Fault::DataAbort));
        assert_eq!(p.tick_hz, 250);
        assert_eq!(p.tick_proof, 5);
        assert!(p.nosmp);
        assert!(p.unknown.is_empty() && p.invalid.is_empty());
        for (f, n) in Fault::ALL {
            assert_eq!(f.name(), n);
            let line = alloc::format!("catena.fault={n}");
            assert_eq!(parse(&line).fault, Some(f));
        }
    }

    #[test]
    fn unknown_parameters_are_reported_not_dropped() {
        let p = parse("console=ttyAMA0 quiet loglevel=debug foo=\"a b\"");
        assert_eq!(p.unknown, vec!["console=ttyAMA0", "quiet", "foo=\"a b\""]);
        assert_eq!(p.loglevel, LogLevel::Debug);
    }

    #[test]
    fn bad_values_are_reported_with_reasons() {
        let p = parse(
            "catena.tick_hz=0 catena.tick_hz=abc catena.fault=explode loglevel catena.nosmp=1",
        );
        assert_eq!(p.tick_hz, 100, "a refused value leaves the default");
        let whys: Vec<(&str, &str, &str)> =
            p.invalid.iter().map(|i| (i.name, i.value, i.why)).collect();
        assert_eq!(
            whys,
            vec![
                ("catena.tick_hz", "0", "out of range"),
                ("catena.tick_hz", "abc", "not a decimal number"),
                (
                    "catena.fault",
                    "explode",
                    "expected data-abort|undefined|panic|initcall-error"
                ),
                ("loglevel", "", "needs a value"),
                ("catena.nosmp", "1", "takes no value"),
            ]
        );
    }

    #[test]
    fn quotes_and_odd_bytes_never_panic() {
        assert_eq!(
            words("a=\"x y\" b").collect::<Vec<_>>(),
            vec!["a=\"x y\"", "b"]
        );
        assert_eq!(
            words("a=\"unterminated b").collect::<Vec<_>>(),
            vec!["a=\"unterminated b"]
        );
        let p = parse("loglevel=\"debug\"");
        assert_eq!(p.loglevel, LogLevel::Debug);
        for s in ["=", "==", "\"", "é=ü", "catena.fault=", "\u{0}"] {
            let _ = parse(s);
        }
    }
}
