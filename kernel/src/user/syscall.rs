//! The system calls (docs/userland.md has the table; `lib/user-abi` the numbers).
//!
//! Every argument is a value from EL0: checked before it is used, and a bad one is an error
//! return, never a kernel fault. Pointers are touched only through `uaccess` (range check,
//! unprivileged accesses, fault fixup). A call that must wait returns [`Outcome::Block`] and
//! runs again, from the start, when the process is woken; so each one either finishes or
//! blocks before it changes anything.

use super::{SCHED, Wait, uaccess};
use alloc::string::String;
use alloc::vec::Vec;
use sched::{Pid, Reaped};
use user_abi::{check, errno, nr};

/// What a call does to the process.
pub enum Outcome {
    /// Return this value in x0 now.
    Ret(u64),
    /// Wait for this; then run the call again.
    Block(Wait),
    /// Give up the CPU (returns 0).
    Yield,
    /// End the process with this code.
    Exit(u64),
    /// Power the system off.
    PowerOff,
}

fn err(e: i64) -> Outcome {
    Outcome::Ret((-e) as u64)
}

fn efault() -> Outcome {
    Outcome::Ret(uaccess::EFAULT)
}

/// Runs the call in `x[8]` for `pid` (its table active) with arguments `x[0..6]`.
pub fn dispatch(pid: Pid, x: &mut [u64; 31]) -> Outcome {
    let a = [x[0], x[1], x[2], x[3], x[4], x[5]];
    match x[8] {
        nr::READ => read(a[0], a[1], a[2]),
        nr::WRITE => write(pid, a[0], a[1], a[2]),
        nr::EXIT | nr::EXIT_GROUP => Outcome::Exit(a[0]),
        nr::NANOSLEEP => nanosleep(pid, a[0]),
        nr::SCHED_YIELD => Outcome::Yield,
        nr::REBOOT => reboot(a[0], a[1], a[2]),
        nr::GETPID => Outcome::Ret(u64::from(pid)),
        nr::GETPPID => Outcome::Ret(u64::from(SCHED.lock().get(pid).map_or(0, |p| p.parent))),
        nr::WAIT4 => wait4(pid, a[0], a[1], a[2], a[3]),
        nr::GETRANDOM => getrandom(a[0], a[1], a[2]),
        nr::SPAWN => spawn(pid, a[0], a[1], a[2], a[3]),
        nr::QUERY => query(a[0], a[1], a[2], a[3], a[4], a[5]),
        // The buffer is checked before anything is exported or quoted.
        nr::ATTEST if a[1] != 0 && !uaccess::user_range(a[0], a[1]) => efault(),
        nr::ATTEST => copy_text(&super::query::attest(), a[0], a[1], 0),
        _ => err(errno::ENOSYS),
    }
}

fn read(fd: u64, buf: u64, len: u64) -> Outcome {
    if fd != 0 {
        return err(errno::EBADF);
    }
    if len == 0 {
        return Outcome::Ret(0);
    }
    if !uaccess::user_range(buf, len) {
        return efault();
    }
    let got = super::take_input(len.min(user_abi::IO_MAX) as usize);
    if got.is_empty() {
        return Outcome::Block(Wait::Input);
    }
    match uaccess::copy_out(buf, &got) {
        Ok(()) => Outcome::Ret(got.len() as u64),
        Err(e) => {
            // Nothing typed is lost: the bytes go back in front of the queue.
            let mut q = super::INPUT.lock();
            for b in got.into_iter().rev() {
                q.push_front(b);
            }
            Outcome::Ret(e)
        }
    }
}

fn write(pid: Pid, fd: u64, buf: u64, len: u64) -> Outcome {
    if fd != 1 && fd != 2 {
        return err(errno::EBADF);
    }
    if len > user_abi::IO_MAX {
        return efault();
    }
    let mut bytes = alloc::vec![0u8; len as usize];
    if let Err(e) = uaccess::copy_in(&mut bytes, buf) {
        return Outcome::Ret(e);
    }
    crate::console::write_str(&String::from_utf8_lossy(&bytes));
    if let Some(t) = SCHED.lock().get_mut(pid).and_then(|p| p.data.as_mut()) {
        t.writes += 1;
    }
    Outcome::Ret(len)
}

fn nanosleep(pid: Pid, req: u64) -> Outcome {
    let now = crate::arch::time::now_us();
    let until = SCHED
        .lock()
        .get(pid)
        .and_then(|p| p.data.as_ref())
        .and_then(|t| t.sleep_until);
    let until = match until {
        // Woken: done if the time has come.
        Some(u) => u,
        None => {
            let mut ts = [0u8; 16];
            if let Err(e) = uaccess::copy_in(&mut ts, req) {
                return Outcome::Ret(e);
            }
            match check::timespec_us(&ts) {
                Ok(us) => now.saturating_add(us),
                Err(e) => return err(e),
            }
        }
    };
    let mut s = SCHED.lock();
    let Some(t) = s.get_mut(pid).and_then(|p| p.data.as_mut()) else {
        return Outcome::Ret(0);
    };
    if now >= until {
        t.sleep_until = None;
        Outcome::Ret(0)
    } else {
        t.sleep_until = Some(until);
        Outcome::Block(Wait::Until(until))
    }
}

fn reboot(magic1: u64, magic2: u64, cmd: u64) -> Outcome {
    match check::reboot(magic1, magic2, cmd) {
        Ok(()) => Outcome::PowerOff,
        Err(e) => err(e),
    }
}

fn wait4(pid: Pid, which: u64, status: u64, options: u64, rusage: u64) -> Outcome {
    let which = match check::wait4(which, options, rusage) {
        Ok(w) => w,
        Err(e) => return err(e),
    };
    if status != 0 && !uaccess::user_range(status, 4) {
        return efault();
    }
    let r = SCHED.lock().reap(pid, which);
    match r {
        Reaped::Child(child, st) => {
            if status != 0
                && let Err(e) = uaccess::copy_out(status, &st.to_le_bytes())
            {
                return Outcome::Ret(e);
            }
            Outcome::Ret(u64::from(child))
        }
        Reaped::NotYet if options & user_abi::WNOHANG != 0 => Outcome::Ret(0),
        Reaped::NotYet => Outcome::Block(Wait::Child(which)),
        Reaped::NoChild => err(errno::ECHILD),
    }
}

fn getrandom(buf: u64, len: u64, flags: u64) -> Outcome {
    // GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE: accepted, nothing blocks here.
    let len = match check::getrandom(len, flags) {
        Ok(l) => l,
        Err(e) => return err(e),
    };
    if !uaccess::user_range(buf, len) {
        return efault();
    }
    let mut out = alloc::vec![0u8; len as usize];
    match catena_drivers::tpm::with_tpm(|t| t.get_random(&mut out)) {
        None => err(errno::ENODEV),
        Some(Err(_)) => err(errno::EIO),
        Some(Ok(n)) => match uaccess::copy_out(buf, &out[..n.min(out.len())]) {
            Ok(()) => Outcome::Ret(n as u64),
            Err(e) => Outcome::Ret(e),
        },
    }
}

/// Copies a user string of at most `max` bytes.
fn user_bytes(ptr: u64, len: u64, max: u64) -> Result<Vec<u8>, Outcome> {
    let len = check::bounded(len, max).map_err(err)?;
    let mut b = alloc::vec![0u8; len];
    uaccess::copy_in(&mut b, ptr).map_err(Outcome::Ret)?;
    Ok(b)
}

fn spawn(pid: Pid, path: u64, path_len: u64, arg: u64, arg_len: u64) -> Outcome {
    let path = match user_bytes(path, path_len, user_abi::NAME_MAX) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let arg = match user_bytes(arg, arg_len, super::ARG_MAX as u64) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let path = match check::spawn_path(&path) {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    match super::spawn(pid, path, &arg) {
        Ok(child) => Outcome::Ret(u64::from(child)),
        Err("no such program") => err(errno::ENOENT),
        Err("too many processes") => err(errno::EAGAIN),
        Err("out of memory") => err(errno::ENOMEM),
        Err(_) => err(errno::ENOEXEC),
    }
}

fn query(kind: u64, arg: u64, arg_len: u64, buf: u64, buf_len: u64, offset: u64) -> Outcome {
    let arg = match user_bytes(arg, arg_len, user_abi::NAME_MAX) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let Ok(arg) = core::str::from_utf8(&arg) else {
        return err(errno::EINVAL);
    };
    match super::query::text(kind, arg) {
        Some(text) => copy_text(&text, buf, buf_len, offset),
        None => err(errno::EINVAL),
    }
}

/// Copies `text` from `offset` into the user buffer; the bytes copied (0 past the end).
fn copy_text(text: &str, buf: u64, buf_len: u64, offset: u64) -> Outcome {
    let b = text.as_bytes();
    let w = check::window(b.len(), offset, buf_len);
    let n = w.len();
    match uaccess::copy_out(buf, &b[w]) {
        Ok(()) => Outcome::Ret(n as u64),
        Err(e) => Outcome::Ret(e),
    }
}
