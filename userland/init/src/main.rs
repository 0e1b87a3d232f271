//! pid 1. Its argument is the kernel command line; it reads its own parameters there:
//! - `catena.run=A,B&,C`: programs of /bin to start first, in order; each is waited for,
//!   except one marked `&`, which runs on in the background;
//! - then the attestation agent (/bin/agent), after those programs were measured;
//! - `catena.shell`: then the shell on the console, until it exits.
//!
//! When all that has ended, init powers the system off.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use catena_event::Kind;
use catena_user_rt as rt;

fn start(path: &str, arg: &str) -> Option<u32> {
    match rt::spawn(path, arg) {
        Ok(pid) => {
            rt::event(Kind::Init, |e| {
                e.str("started", path).u64("pid", u64::from(pid))
            });
            Some(pid)
        }
        Err(e) => {
            rt::event(Kind::Init, |w| {
                w.str("started", path)
                    .str("result", "refused")
                    .str("errno", rt::errno_name(e))
            });
            None
        }
    }
}

fn start_and_wait(path: &str, arg: &str) {
    if let Some(pid) = start(path, arg) {
        // Children started in the background may end first: reap until this one.
        loop {
            match rt::wait(None) {
                Ok((p, _)) if p == pid => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// The program.
#[unsafe(no_mangle)]
fn main(cmdline: &str) -> u64 {
    let mut run = "";
    let mut shell = false;
    for w in cmdline.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix("catena.run=") {
            run = v;
        } else if w == "catena.shell" {
            shell = true;
        }
    }
    rt::event(Kind::Init, |e| {
        e.str("state", "started")
            .u64("pid", u64::from(rt::getpid()))
            .str("run", run)
            .str("shell", if shell { "yes" } else { "no" })
    });
    for p in run.split(',').filter(|p| !p.is_empty()) {
        match p.strip_suffix('&') {
            Some(bg) => {
                start(&format!("/bin/{bg}"), "");
            }
            None => start_and_wait(&format!("/bin/{p}"), ""),
        }
    }
    start_and_wait("/bin/agent", "");
    if shell {
        start_and_wait("/bin/sh", "");
    }
    rt::event(Kind::Init, |e| e.str("state", "poweroff"));
    rt::poweroff() as u64
}
