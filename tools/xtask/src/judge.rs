//! Judging a boot by its ordered `@event` stream.

use crate::config::{Expect, Scenario};
use anyhow::{Result, bail};
use catena_event::{Event, FwEvent, Kind, parse_line};

/// The initcall levels' names in run order, as the kernel's `initcall` crate defines them.
pub const LEVELS: [&str; initcall::Level::ALL.len()] = {
    let mut names = [""; initcall::Level::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = initcall::Level::ALL[i].name();
        i += 1;
    }
    names
};

/// An expected event: a kind and fields that must have the given values (`*`: present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    kind: String,
    fields: Vec<(String, String)>,
}

impl Pattern {
    /// Parses `kind key=value ...` (event-line syntax, quotes allowed). The kind must be one
    /// some emitter defines (`catena_event::Kind`), and a firmware pattern's `ev=` one the
    /// firmware emits: a misspelt kind would make an expectation or a ban match nothing.
    pub fn parse(text: &str) -> Result<Pattern> {
        let e = match parse_line(&format!("@event {text}")) {
            Ok(Some(e)) => e,
            Ok(None) => bail!("not an event pattern"),
            Err(e) => bail!("{e}"),
        };
        let Some(kind) = Kind::from_name(&e.kind) else {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "no emitter defines event kind `{}` (kinds: {})",
                e.kind,
                known.join(", ")
            );
        };
        if kind == Kind::Fw
            && let Some(ev) = e.get("ev")
            && ev != "*"
            && FwEvent::from_name(ev).is_none()
        {
            let known: Vec<&str> = FwEvent::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "the firmware emits no `ev={ev}` (events: {})",
                known.join(", ")
            );
        }
        Ok(Pattern {
            kind: e.kind,
            fields: e.fields,
        })
    }

    /// Whether `e` matches.
    pub fn matches(&self, e: &Event) -> bool {
        e.kind == self.kind
            && self
                .fields
                .iter()
                .all(|(k, v)| e.get(k).is_some_and(|got| value_matches(v, got)))
    }
}

/// A pattern's value against an event's: `*` is any value, `text*` any value starting with
/// `text`, anything else itself.
fn value_matches(want: &str, got: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => got == want,
    }
}

/// How a run ended, as observed from outside.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Kernel events in console order.
    pub events: Vec<Event>,
    /// Firmware events (`@event fw ...` on the secure UART), in their own order.
    pub fw_events: Vec<Event>,
    /// The run was killed at its deadline.
    pub timed_out: bool,
    /// QEMU's exit code, if it exited by itself.
    pub qemu_exit: Option<i32>,
    /// Lines that started an event but did not parse.
    pub malformed: Vec<String>,
}

impl Outcome {
    /// Final status: `ok`/`fail` from the `done` event, else `timeout` or `fail`.
    pub fn status(&self) -> &'static str {
        match self.done().and_then(|d| d.get("status")) {
            Some("ok") if self.qemu_exit == Some(0) => "ok",
            Some("ok") | Some("fail") => "fail",
            _ if self.timed_out => "timeout",
            _ => "fail",
        }
    }

    /// Why the run failed, in one phrase.
    pub fn reason(&self) -> String {
        if let Some(d) = self.done() {
            if let Some(r) = d.get("reason") {
                return r.to_string();
            }
            if d.get("status") == Some("ok") && self.qemu_exit != Some(0) {
                return format!("QEMU exited with {:?} after done status=ok", self.qemu_exit);
            }
            return String::new();
        }
        if let Some(r) = self.fw_failure() {
            // The firmware reports its own failures (and powers off): the kernel may never
            // have run.
            return format!("firmware:{r}");
        }
        if self.timed_out {
            "timeout: no `done` event before the deadline".into()
        } else {
            match self.qemu_exit {
                Some(c) => format!("QEMU exited ({c}) without a `done` event"),
                None => "QEMU was killed without a `done` event".into(),
            }
        }
    }

    /// The `done` event, if any.
    pub fn done(&self) -> Option<&Event> {
        self.events.iter().rev().find(|e| e.kind == "done")
    }

    /// The reason of the firmware's `fw ev=fail` event, if it reported one.
    pub fn fw_failure(&self) -> Option<&str> {
        self.fw_events
            .iter()
            .find(|e| e.get("ev") == Some("fail"))
            .map(|e| e.get("reason").unwrap_or(""))
    }
}

/// Feeds console lines; collects events.
pub fn collect_line(outcome: &mut Outcome, line: &str) {
    match parse_line(line) {
        Ok(Some(e)) => outcome.events.push(e),
        Ok(None) => {}
        Err(err) => outcome.malformed.push(format!("{line} ({err})")),
    }
}

/// Reads the firmware's events from the secure UART log.
pub fn collect_fw_log(outcome: &mut Outcome, text: &str) {
    for line in text.lines() {
        match parse_line(line) {
            Ok(Some(e)) if e.kind == "fw" => outcome.fw_events.push(e),
            Ok(_) => {}
            Err(err) => outcome
                .malformed
                .push(format!("secure UART: {line} ({err})")),
        }
    }
}

/// Matches ordered patterns against one stream; returns problems.
fn ordered(patterns: &[&String], events: &[Event], problems: &mut Vec<String>) {
    let mut pos = 0;
    for text in patterns {
        let Ok(p) = Pattern::parse(text) else {
            problems.push(format!("bad pattern `{text}`"));
            continue;
        };
        match events[pos..].iter().position(|e| p.matches(e)) {
            Some(i) => pos += i + 1,
            None => {
                let anywhere = events.iter().any(|e| p.matches(e));
                problems.push(if anywhere {
                    format!("expected event `{text}` appears, but out of order")
                } else {
                    format!("expected event `{text}` missing")
                });
            }
        }
    }
}

/// Every problem with a run against its scenario; empty means it passed.
pub fn judge(s: &Scenario, o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let status = o.status();
    let want = match s.expect {
        Expect::Ok => "ok",
        Expect::Fail => "fail",
    };
    if status != want {
        problems.push(format!(
            "status `{status}` ({}), expected `{want}`",
            o.reason()
        ));
    }
    if let Some(r) = &s.reason
        && o.reason() != *r
    {
        problems.push(format!("reason `{}`, expected `{r}`", o.reason()));
    }
    if o.timed_out && s.expect == Expect::Fail && status == "timeout" {
        problems.push("a failing boot must still end (power off), not hang".into());
    }
    for m in &o.malformed {
        problems.push(format!("malformed event line: {m}"));
    }
    // Ordered expectations, per stream: `fw ...` patterns against the firmware's events,
    // the rest against the kernel's (the two UARTs have no common clock).
    let (fw, kernel): (Vec<&String>, Vec<&String>) = s
        .events
        .iter()
        .partition(|t| t.split(' ').next() == Some("fw"));
    ordered(&kernel, &o.events, &mut problems);
    ordered(&fw, &o.fw_events, &mut problems);
    for text in &s.forbid {
        if let Ok(p) = Pattern::parse(text)
            && let Some(e) = o.events.iter().chain(&o.fw_events).find(|e| p.matches(e))
        {
            problems.push(format!("forbidden event `{text}` appeared: {}", render(e)));
        }
    }
    // Another OS (scenario `os`) reports only what its initramfs prints: no Catena boot
    // structure to check.
    if s.os.is_none() {
        problems.extend(structure(o, s.expect == Expect::Ok));
    }
    problems
}

/// Checks every boot must pass: one `boot` before any initcall, initcall levels never going
/// backwards, `done` last; a successful boot reports every level, in order.
fn structure(o: &Outcome, complete: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let level_index = |e: &Event| {
        e.get("level")
            .and_then(|l| LEVELS.iter().position(|x| *x == l))
    };
    let boots = o.events.iter().filter(|e| e.kind == "boot").count();
    // A firmware that failed before entering the kernel leaves no kernel events at all.
    let kernel_never_ran = o.events.is_empty() && o.fw_failure().is_some();
    if boots != 1 && !kernel_never_ran {
        problems.push(format!("{boots} `boot` events, expected exactly one"));
    }
    if let (Some(b), Some(i)) = (
        o.events.iter().position(|e| e.kind == "boot"),
        o.events.iter().position(|e| e.kind == "initcall"),
    ) && i < b
    {
        problems.push("an initcall ran before the `boot` event".into());
    }
    let mut last = 0;
    for e in o
        .events
        .iter()
        .filter(|e| e.kind == "initcall" || e.kind == "level")
    {
        match level_index(e) {
            Some(l) if l < last => problems.push(format!(
                "level went backwards: {} after {}",
                LEVELS[l], LEVELS[last]
            )),
            Some(l) => last = l,
            None => problems.push(format!("unknown level in `{}`", render(e))),
        }
    }
    if let Some(d) = o.events.iter().position(|e| e.kind == "done")
        && d + 1 != o.events.len()
    {
        problems.push(format!("{} event(s) after `done`", o.events.len() - d - 1));
    }
    if complete {
        let seen: Vec<&str> = o
            .events
            .iter()
            .filter(|e| e.kind == "level")
            .filter_map(|e| e.get("level"))
            .collect();
        if seen != LEVELS {
            problems.push(format!(
                "levels reported {seen:?}, expected all twelve in order"
            ));
        }
    }
    problems
}

/// An event back in line form (for messages).
pub fn render(e: &Event) -> String {
    let mut s = e.kind.clone();
    for (k, v) in &e.fields {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(expect: Expect, events: &[&str], forbid: &[&str]) -> Scenario {
        Scenario {
            description: String::new(),
            machine: "m".into(),
            cmdline: String::new(),
            expect,
            reason: None,
            events: events.iter().map(|s| s.to_string()).collect(),
            forbid: forbid.iter().map(|s| s.to_string()).collect(),
            test: true,
            timeout: None,
            firmware: false,
            qemu_args: Vec::new(),
            hooks: false,
            tpm: false,
            tpm_stop: None,
            input: Vec::new(),
            dt_nops: None,
            flash: false,
            state: None,
            fresh_state: false,
            powercut: None,
            enroll: None,
            evidence_check: false,
            boot: None,
            initrd: false,
            os: None,
        }
    }

    fn outcome(lines: &[&str], exit: Option<i32>) -> Outcome {
        let mut o = Outcome {
            qemu_exit: exit,
            ..Default::default()
        };
        for l in lines {
            collect_line(&mut o, l);
        }
        o
    }

    fn good_boot() -> Vec<String> {
        let mut v = vec![
            "@event boot el=2".to_string(),
            "[INFO ] chatter".to_string(),
        ];
        for l in LEVELS {
            v.push(format!(
                "@event initcall level={l} name=x_{l} result=ok us=1"
            ));
            v.push(format!("@event level level={l} calls=1 us=1"));
        }
        v.push("@event done status=ok".into());
        v
    }

    #[test]
    fn a_good_boot_passes() {
        let lines = good_boot();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let o = outcome(&refs, Some(0));
        let s = scenario(
            Expect::Ok,
            &["boot el=2", "initcall level=device", "done status=ok"],
            &["fault"],
        );
        assert_eq!(judge(&s, &o), Vec::<String>::new());
        assert_eq!(o.status(), "ok");
    }

    #[test]
    fn out_of_order_missing_and_forbidden_events_fail() {
        let lines = good_boot();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let o = outcome(&refs, Some(0));
        let s = scenario(
            Expect::Ok,
            &["initcall level=late", "initcall level=early", "tick"],
            &["initcall name=x_fs"],
        );
        let p = judge(&s, &o);
        assert!(p.iter().any(|m| m.contains("out of order")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("`tick` missing")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("forbidden")), "{p:?}");
    }

    #[test]
    fn levels_going_backwards_fail() {
        let o = outcome(
            &[
                "@event boot el=1",
                "@event initcall level=late name=a result=ok us=1",
                "@event initcall level=early name=b result=ok us=1",
                "@event done status=fail reason=x",
            ],
            Some(0),
        );
        let p = judge(&scenario(Expect::Fail, &[], &[]), &o);
        assert!(p.iter().any(|m| m.contains("backwards")), "{p:?}");
    }

    #[test]
    fn a_faulting_boot_is_judged_failed_and_must_match_its_reason() {
        let o = outcome(
            &[
                "@event boot el=2",
                "@event fault class=data-abort",
                "@event done status=fail reason=exception:data-abort",
            ],
            Some(0),
        );
        assert_eq!(o.status(), "fail");
        // A scenario that expects success rejects it...
        let p = judge(&scenario(Expect::Ok, &[], &[]), &o);
        assert!(p.iter().any(|m| m.contains("status `fail`")), "{p:?}");
        // ...one that expects this failure accepts it, and only with the right reason.
        let mut s = scenario(Expect::Fail, &["fault class=data-abort"], &[]);
        s.reason = Some("exception:data-abort".into());
        assert_eq!(judge(&s, &o), Vec::<String>::new());
        s.reason = Some("panic".into());
        assert!(!judge(&s, &o).is_empty());
    }

    #[test]
    fn timeouts_and_silent_exits_fail() {
        let mut o = outcome(&["@event boot el=2"], None);
        o.timed_out = true;
        assert_eq!(o.status(), "timeout");
        assert!(o.reason().contains("timeout"));
        let o = outcome(&["@event boot el=2"], Some(1));
        assert_eq!(o.status(), "fail");
        assert!(o.reason().contains("without a `done`"));
        // done status=ok but QEMU reports an error: not ok.
        let o = outcome(&["@event boot el=2", "@event done status=ok"], Some(1));
        assert_eq!(o.status(), "fail");
    }

    #[test]
    fn patterns_match_fields_and_wildcards() {
        let p = Pattern::parse("probe dev=* result=defer reason=\"hyp not finalised\"").unwrap();
        let e = parse_line(
            "@event probe dev=platform/arm-ffa drv=ffa result=defer reason=\"hyp not finalised\"",
        )
        .unwrap()
        .unwrap();
        assert!(p.matches(&e));
        assert!(!Pattern::parse("probe result=ok").unwrap().matches(&e));
        assert!(Pattern::parse("").is_err());
        // A value ending in `*` matches by prefix.
        assert!(
            Pattern::parse("probe reason=\"hyp not*\"")
                .unwrap()
                .matches(&e)
        );
        assert!(
            !Pattern::parse("probe reason=\"hyp is*\"")
                .unwrap()
                .matches(&e)
        );
    }

    #[test]
    fn patterns_of_kinds_nobody_emits_are_refused() {
        // A misspelt kind in `forbid` would ban nothing; in `events`, expect nothing real.
        let e = Pattern::parse("cpuz").unwrap_err().to_string();
        assert!(e.contains("no emitter defines event kind `cpuz`"), "{e}");
        let e = Pattern::parse("fw ev=bot").unwrap_err().to_string();
        assert!(e.contains("the firmware emits no `ev=bot`"), "{e}");
        assert!(Pattern::parse("fw ev=*").is_ok());
        for k in Kind::ALL {
            assert!(Pattern::parse(k.name()).is_ok(), "{}", k.name());
        }
    }

    #[test]
    fn firmware_events_are_their_own_stream() {
        let lines = good_boot();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut o = outcome(&refs, Some(0));
        collect_fw_log(
            &mut o,
            "banner\n@event fw ev=boot cpus=2\n@event fw ev=psci call=CPU_ON\n",
        );
        assert_eq!(o.fw_events.len(), 2);
        // Kernel and firmware patterns interleaved: each stream is matched on its own.
        let s = scenario(
            Expect::Ok,
            &[
                "fw ev=boot",
                "boot el=2",
                "fw ev=psci call=CPU_ON",
                "done status=ok",
            ],
            &[],
        );
        assert_eq!(judge(&s, &o), Vec::<String>::new());
        let s = scenario(Expect::Ok, &["fw ev=psci", "fw ev=boot"], &["fw ev=fail"]);
        assert!(judge(&s, &o).iter().any(|p| p.contains("out of order")));
    }

    #[test]
    fn a_firmware_failure_is_a_failed_boot_with_the_firmware_s_reason() {
        let mut o = outcome(&[], Some(0));
        collect_fw_log(
            &mut o,
            "@event fw ev=boot cpus=2\nkernel from fw_cfg: bad\n@event fw ev=fail reason=bad-payload\n",
        );
        assert_eq!(o.status(), "fail");
        assert_eq!(o.reason(), "firmware:bad-payload");
        let p = judge(&scenario(Expect::Ok, &[], &[]), &o);
        assert!(p.iter().any(|m| m.contains("status `fail`")), "{p:?}");
        let mut s = scenario(Expect::Fail, &["fw ev=fail reason=bad-payload"], &["boot"]);
        s.reason = Some("firmware:bad-payload".into());
        assert_eq!(judge(&s, &o), Vec::<String>::new());
        s.reason = Some("firmware:no-payload".into());
        assert!(judge(&s, &o).iter().any(|m| m.contains("reason")));
        // Without the firmware's word, a silent kernel is still a missing `boot`.
        let o = outcome(&[], Some(0));
        let mut s = scenario(Expect::Fail, &[], &[]);
        s.reason = Some("firmware:bad-payload".into());
        let p = judge(&s, &o);
        assert!(p.iter().any(|m| m.contains("0 `boot` events")), "{p:?}");
        // A kernel `done` wins over a later firmware complaint.
        let mut o = outcome(
            &["@event boot el=2", "@event done status=fail reason=panic"],
            Some(0),
        );
        collect_fw_log(&mut o, "@event fw ev=fail reason=el3-exception\n");
        assert_eq!(o.reason(), "panic");
    }

    #[test]
    fn malformed_event_lines_are_problems() {
        let o = outcome(&["@event boot el", "@event done status=ok"], Some(0));
        let p = judge(&scenario(Expect::Ok, &[], &[]), &o);
        assert!(p.iter().any(|m| m.contains("malformed")), "{p:?}");
    }
}
