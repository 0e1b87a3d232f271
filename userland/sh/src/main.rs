//! The shell on the console: a line editor (`lib/lineedit`: backspace, history on the arrows)
//! and the commands that show what the boot did. Each command prints its report and then an
//! `@event shell cmd=... status=ok|absent|error lines=N` line (what scenarios assert on); a
//! service that is not there is a quiet miss (`status=absent` and why), not an error.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use catena_event::Kind;
use catena_user_rt::{self as rt, q};
use lineedit::{Editor, Step};

const HELP: &str = "\
commands:
  help                 this list
  initcalls            the initcalls in the order they ran
  devices              the device model: each device and its driver
  ffa                  the FF-A partitions
  tpm pcrs|random      the TPM's PCRs (sha256), or 16 random bytes from it
  efivar ls|get NAME   the UEFI variables
  keys                 the keyrings the UEFI certificates went into
  eventlog             the firmware's measured-boot event log
  measurements         the kernel's measurement list (IMA's ascii format)
  attest               quote the PCRs for a verifier (and ask it, if one is named)
  ps                   the processes
  run NAME [ARG]       start /bin/NAME and wait for it
  poweroff             power the system off
  exit                 leave the shell
";

/// Prints a report and its event.
fn report(cmd: &str, r: Result<String, i64>) {
    match r {
        Ok(text) => {
            rt::print(&text);
            let lines = text.lines().count() as u64;
            match text.strip_prefix(q::ABSENT) {
                Some(why) => rt::event(Kind::Shell, |e| {
                    e.str("cmd", cmd)
                        .str("status", "absent")
                        .str("reason", why.trim_end())
                }),
                None => rt::event(Kind::Shell, |e| {
                    e.str("cmd", cmd).str("status", "ok").u64("lines", lines)
                }),
            }
        }
        Err(e) => {
            rt::print(&format!("sh: {cmd}: {}\n", rt::errno_name(e)));
            rt::event(Kind::Shell, |w| {
                w.str("cmd", cmd)
                    .str("status", "error")
                    .str("errno", rt::errno_name(e))
            });
        }
    }
}

fn random() -> Result<String, i64> {
    let mut b = [0u8; 16];
    match rt::getrandom(&mut b) {
        Ok(n) => {
            let mut s: String = b[..n].iter().map(|x| format!("{x:02x}")).collect();
            s.push('\n');
            Ok(s)
        }
        Err(e) if e == rt::errno::ENODEV => Ok(format!("{}no TPM bound\n", q::ABSENT)),
        Err(e) => Err(e),
    }
}

fn run(name: &str, arg: &str) -> Result<String, i64> {
    let pid = rt::spawn(&format!("/bin/{name}"), arg)?;
    let (_, status) = rt::wait(Some(pid))?;
    Ok(match status & 0x7f {
        0 => format!("{name}: pid {pid} exited {}\n", (status >> 8) & 0xff),
        sig => format!("{name}: pid {pid} killed (signal {sig})\n"),
    })
}

/// Runs one line; false to leave the shell.
fn command(line: &str) -> bool {
    let mut w = line.split_ascii_whitespace();
    let Some(cmd) = w.next() else {
        return true;
    };
    let arg = w.next().unwrap_or("");
    match (cmd, arg) {
        ("help", _) => {
            rt::print(HELP);
            rt::event(Kind::Shell, |e| e.str("cmd", "help").str("status", "ok"));
        }
        ("initcalls", _) => report("initcalls", rt::query(q::INITCALLS, "")),
        ("devices", _) => report("devices", rt::query(q::DEVICES, "")),
        ("ffa", _) => report("ffa", rt::query(q::FFA, "")),
        ("tpm", "pcrs") => report("tpm-pcrs", rt::query(q::PCRS, "")),
        ("tpm", "random") => report("tpm-random", random()),
        ("efivar", "ls") => report("efivar-ls", rt::query(q::EFIVARS, "")),
        ("efivar", "get") => report("efivar-get", rt::query(q::EFIVAR, w.next().unwrap_or(""))),
        ("keys", _) => report("keys", rt::query(q::KEYS, "")),
        ("eventlog", _) => report("eventlog", rt::query(q::EVENTLOG, "")),
        ("measurements", _) => report("measurements", rt::query(q::MEASUREMENTS, "")),
        ("attest", _) => report("attest", rt::attest()),
        ("ps", _) => report("ps", rt::query(q::PS, "")),
        ("run", name) if !name.is_empty() => {
            let rest = w.next().unwrap_or("");
            report("run", run(name, rest))
        }
        ("poweroff", _) => {
            rt::event(Kind::Shell, |e| {
                e.str("cmd", "poweroff").str("status", "ok")
            });
            rt::poweroff();
        }
        ("exit", _) => return false,
        _ => {
            rt::print(&format!("sh: {line}: unknown command (help lists them)\n"));
            rt::event(Kind::Shell, |e| {
                e.str("cmd", cmd)
                    .str("status", "error")
                    .str("errno", "unknown")
            });
        }
    }
    true
}

/// The program.
#[unsafe(no_mangle)]
fn main(_arg: &str) -> u64 {
    rt::print("Catena shell: `help` lists the commands.\n");
    let mut ed = Editor::new();
    let mut buf = [0u8; 64];
    // Bytes read but not yet fed to the editor: typed ahead of the prompt, they are the next
    // lines, never dropped.
    let mut pending: alloc::collections::VecDeque<u8> = alloc::collections::VecDeque::new();
    loop {
        rt::event(Kind::Shell, |e| e.str("state", "prompt"));
        rt::print("catena$ ");
        let line = 'read: loop {
            let Some(b) = pending.pop_front() else {
                match rt::read(&mut buf) {
                    Ok(n) => pending.extend(&buf[..n]),
                    Err(_) => return 1,
                }
                continue;
            };
            match ed.feed(b) {
                Step::Echo(s) => rt::print(&s),
                Step::Line(l) => {
                    rt::print("\n");
                    break 'read l;
                }
                Step::Cancel => {
                    rt::print("^C\n");
                    break 'read String::new();
                }
                Step::Eof => {
                    rt::print("\n");
                    return 0;
                }
            }
        };
        if !command(&line) {
            return 0;
        }
    }
}
