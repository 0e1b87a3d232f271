//! Booting a scenario in QEMU: bounded, killed by PID however it ends.

use crate::judge::{Outcome, collect_line};
use crate::prereq::{self, QEMU};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills and reaps the QEMU child when dropped, however the run ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

enum Msg {
    Line(String),
    Eof,
}

/// The event after which a scenario's next `input` line is typed.
pub const PROMPT: &str = "shell state=prompt";

/// How long QEMU may take to power off after the guest said `done`.
const POWER_OFF_GRACE: Duration = Duration::from_secs(5);

/// Boots QEMU with `args`, streaming the console when `echo`, until it exits or `timeout`.
/// Firmware events are read from `secure_log` (the secure UART's file) afterwards.
/// Something to do when the kernel first prints an event matching `when` (a scenario's
/// `tpm_stop`: kill swtpm mid-run).
pub struct OnEvent {
    /// The event.
    pub when: crate::judge::Pattern,
    /// What to do, once.
    pub then: Box<dyn FnOnce()>,
}

pub fn boot(
    args: &[String],
    timeout: Duration,
    echo: bool,
    secure_log: Option<&std::path::Path>,
    mut on_event: Option<OnEvent>,
    input: &[String],
) -> Result<(Outcome, String)> {
    if let Some(p) = secure_log {
        let _ = std::fs::remove_file(p);
    }
    let child = prereq::qemu_command()?
        .args(args)
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;
    let mut child = KillOnDrop(child);
    // A scenario's `input`: the next line is typed (on the console, with Enter) each time the
    // shell shows its prompt.
    let mut stdin = child.0.stdin.take();
    let prompt = crate::judge::Pattern::parse(PROMPT).context("the prompt pattern")?;
    let mut lines = input.iter();
    let stdout = child.0.stdout.take().context("QEMU stdout")?;
    let mut stderr = child.0.stderr.take().context("QEMU stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(Msg::Line(line)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut outcome = Outcome::default();
    let start = Instant::now();
    let mut deadline = start + timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            outcome.timed_out = outcome.done().is_none();
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(Msg::Line(line)) => {
                if echo {
                    println!("{line}");
                }
                let had_done = outcome.done().is_some();
                let seen = outcome.events.len();
                collect_line(&mut outcome, &line);
                if outcome.events.len() > seen
                    && on_event
                        .as_ref()
                        .is_some_and(|h| outcome.events.last().is_some_and(|e| h.when.matches(e)))
                    && let Some(h) = on_event.take()
                {
                    println!("xtask: `{line}` seen: acting on it");
                    (h.then)();
                }
                if outcome.events.len() > seen
                    && outcome.events.last().is_some_and(|e| prompt.matches(e))
                    && let (Some(w), Some(next)) = (stdin.as_mut(), lines.next())
                {
                    use std::io::Write;
                    if echo {
                        println!("xtask: typing `{next}`");
                    }
                    w.write_all(next.as_bytes())?;
                    w.write_all(b"\r")?;
                    w.flush()?;
                }
                if !had_done && outcome.done().is_some() {
                    deadline = deadline.min(Instant::now() + POWER_OFF_GRACE);
                }
            }
            Ok(Msg::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    // QEMU closes stdout as it exits; give it a moment to be reaped, then kill.
    let exit_deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < exit_deadline {
        if let Ok(Some(status)) = child.0.try_wait() {
            outcome.qemu_exit = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child);
    let stderr = err_thread.join().unwrap_or_default();
    if let Some(p) = secure_log
        && let Ok(text) = std::fs::read_to_string(p)
    {
        crate::judge::collect_fw_log(&mut outcome, &text);
    }
    Ok((outcome, stderr))
}

/// Interactive: the console is the terminal; QEMU runs until it exits (or `timeout`).
pub fn interactive(args: &[String], timeout: Option<Duration>) -> Result<i32> {
    let child = prereq::qemu_command()?
        .args(args)
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;
    let mut child = KillOnDrop(child);
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait()? {
            return Ok(status.code().unwrap_or(1));
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            eprintln!("xtask: interactive run reached its timeout; killing QEMU");
            return Ok(124);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes the DTB QEMU would give the guest for `args` to `out` (`-M ...,dumpdtb=`: QEMU
/// exits after building the machine), bounded by a deadline.
pub fn dump_dtb(args: &[String], out: &std::path::Path) -> Result<()> {
    let mut args = args.to_vec();
    let m = args
        .iter()
        .position(|a| a == "-M")
        .and_then(|i| args.get_mut(i + 1))
        .context("no -M in the QEMU arguments")?;
    m.push_str(&format!(",dumpdtb={}", out.display()));
    let _ = std::fs::remove_file(out);
    let child = prereq::qemu_command()?
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            anyhow::bail!("QEMU did not exit after dumping its DTB");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() || !out.exists() {
        anyhow::bail!("QEMU could not dump its DTB ({status}): {}", err.trim());
    }
    Ok(())
}
