//! The system call ABI, as numbers: what the kernel (`kernel/src/user/syscall.rs`) and every
//! user program (`userland/rt`) agree on, in one place (Linux's uapi headers play this part).
//!
//! The AArch64 Linux convention: the number in x8, arguments in x0-x5, `svc #0`, the result
//! in x0, a negative errno on failure. Calls Linux has keep Linux's numbers (its generic
//! table, `include/uapi/asm-generic/unistd.h`); Catena's own calls are numbered from
//! [`nr::SPAWN`] (1024), above every number Linux's table uses. docs/userland.md has the table.
#![no_std]
#![forbid(unsafe_code)]

/// Call numbers.
pub mod nr {
    /// `read(fd, buf, len)`: console input (fd 0).
    pub const READ: u64 = 63;
    /// `write(fd, buf, len)`: the console (fd 1 or 2).
    pub const WRITE: u64 = 64;
    /// `exit(code)`.
    pub const EXIT: u64 = 93;
    /// `exit_group(code)` (one thread per process: the same as exit).
    pub const EXIT_GROUP: u64 = 94;
    /// `nanosleep(req, rem)`: `req` points at `{ tv_sec: i64, tv_nsec: i64 }`.
    pub const NANOSLEEP: u64 = 101;
    /// `sched_yield()`.
    pub const SCHED_YIELD: u64 = 124;
    /// `reboot(magic1, magic2, cmd, arg)`: only `LINUX_REBOOT_CMD_POWER_OFF`.
    pub const REBOOT: u64 = 142;
    /// `getpid()`.
    pub const GETPID: u64 = 172;
    /// `getppid()`.
    pub const GETPPID: u64 = 173;
    /// `wait4(pid, status, options, rusage)`: pid -1 (any child) or a pid; options 0 or
    /// `WNOHANG`; rusage must be 0.
    pub const WAIT4: u64 = 260;
    /// `getrandom(buf, len, flags)`: bytes from the TPM's generator (at most 256 per call).
    pub const GETRANDOM: u64 = 278;
    /// Catena: `spawn(path, path_len, arg, arg_len)` -> pid: a program of the initramfs as a
    /// child, measured before it runs; it starts with x0 = its argument, x1 = its length.
    pub const SPAWN: u64 = 1024;
    /// Catena: `query(kind, arg, arg_len, buf, buf_len, offset)` -> bytes copied: a read-only
    /// text report (see [`super::query`]) from `offset`; 0 past its end.
    pub const QUERY: u64 = 1025;
    /// Catena: `attest(buf, buf_len)` -> bytes copied: export the measurement list, quote
    /// the PCRs, and ask the verifier when one is named; a text summary.
    pub const ATTEST: u64 = 1026;
}

/// What the query call reports. A service that is not there answers one line starting
/// with [`query::ABSENT`] and the reason.
pub mod query {
    /// The initcall timeline.
    pub const INITCALLS: u64 = 1;
    /// The device model: every device, its driver and state.
    pub const DEVICES: u64 = 2;
    /// The FF-A partitions.
    pub const FFA: u64 = 3;
    /// The TPM's PCRs (SHA-256 bank).
    pub const PCRS: u64 = 4;
    /// The UEFI variables' names.
    pub const EFIVARS: u64 = 5;
    /// One UEFI variable (the argument is its name).
    pub const EFIVAR: u64 = 6;
    /// The keyrings.
    pub const KEYS: u64 = 7;
    /// The firmware's event log.
    pub const EVENTLOG: u64 = 8;
    /// The kernel's measurement list.
    pub const MEASUREMENTS: u64 = 9;
    /// The processes.
    pub const PS: u64 = 10;
    /// The programs in the initramfs.
    pub const PROGRAMS: u64 = 11;
    /// How the first line of a report of an absent service starts.
    pub const ABSENT: &str = "absent: ";
}

/// errno values (Linux's), returned negated.
pub mod errno {
    /// No such file (spawn: no such program).
    pub const ENOENT: i64 = 2;
    /// Argument list too long (spawn's argument).
    pub const E2BIG: i64 = 7;
    /// Not an executable (spawn: the program was refused).
    pub const ENOEXEC: i64 = 8;
    /// Bad file descriptor.
    pub const EBADF: i64 = 9;
    /// No child to wait for.
    pub const ECHILD: i64 = 10;
    /// Too many processes.
    pub const EAGAIN: i64 = 11;
    /// Out of memory.
    pub const ENOMEM: i64 = 12;
    /// A bad address.
    pub const EFAULT: i64 = 14;
    /// No such device (getrandom without a TPM).
    pub const ENODEV: i64 = 19;
    /// An invalid argument.
    pub const EINVAL: i64 = 22;
    /// No such call.
    pub const ENOSYS: i64 = 38;
    /// The TPM failed.
    pub const EIO: i64 = 5;
}

/// `wait4`'s option: do not block.
pub const WNOHANG: u64 = 1;
/// `reboot`'s magic numbers and the one command it accepts (Linux's `reboot(2)`).
pub const REBOOT_MAGIC1: u64 = 0xfee1_dead;
/// See [`REBOOT_MAGIC1`].
pub const REBOOT_MAGIC2: u64 = 672_274_793;
/// See [`REBOOT_MAGIC1`].
pub const REBOOT_CMD_POWER_OFF: u64 = 0x4321_fedc;
/// Longest read or write, in bytes.
pub const IO_MAX: u64 = 4096;
/// Most bytes one `getrandom` returns.
pub const RANDOM_MAX: u64 = 256;
/// Longest spawn path, query argument.
pub const NAME_MAX: u64 = 256;

/// The error a raw result encodes, if any (results in -4095..=-1 are errors, as on Linux).
pub fn error(r: u64) -> Option<i64> {
    let v = r as i64;
    (-4095..0).contains(&v).then_some(-v)
}

/// The wait status's exit code, if the process exited (not killed).
pub fn exited(status: u32) -> Option<u32> {
    (status & 0x7f == 0).then_some((status >> 8) & 0xff)
}

/// The argument checks every call makes before it acts: pure functions of the values EL0
/// passed, so they are tested here on the host. An `Err` is the errno to return.
pub mod check {
    use super::errno::*;
    use core::ops::Range;

    /// `wait4(pid, _, options, rusage)`: `Some(pid)` or `None` for any child (pid -1). Process
    /// groups (0, < -1) and options other than `WNOHANG` are refused; so is a rusage pointer
    /// (not kept).
    pub fn wait4(pid: u64, options: u64, rusage: u64) -> Result<Option<u32>, i64> {
        if options & !super::WNOHANG != 0 || rusage != 0 {
            return Err(EINVAL);
        }
        match pid as i64 {
            -1 => Ok(None),
            p if p > 0 && p <= i64::from(u32::MAX) => Ok(Some(p as u32)),
            _ => Err(EINVAL),
        }
    }

    /// `nanosleep`'s `{ tv_sec: i64, tv_nsec: i64 }` (little-endian) as microseconds:
    /// negative seconds or nanoseconds outside 0..10^9 are EINVAL (Linux's rule); a huge
    /// value saturates.
    pub fn timespec_us(ts: &[u8; 16]) -> Result<u64, i64> {
        let mut sec = [0u8; 8];
        let mut nsec = [0u8; 8];
        sec.copy_from_slice(&ts[..8]);
        nsec.copy_from_slice(&ts[8..]);
        let (sec, nsec) = (i64::from_le_bytes(sec), i64::from_le_bytes(nsec));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(EINVAL);
        }
        Ok((sec as u64)
            .saturating_mul(1_000_000)
            .saturating_add(nsec as u64 / 1000))
    }

    /// `reboot(magic1, magic2, cmd)`: only power-off, with Linux's magic numbers.
    pub fn reboot(magic1: u64, magic2: u64, cmd: u64) -> Result<(), i64> {
        if magic1 == super::REBOOT_MAGIC1
            && magic2 == super::REBOOT_MAGIC2
            && cmd == super::REBOOT_CMD_POWER_OFF
        {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// `getrandom(_, len, flags)`: the bytes to produce (at most `RANDOM_MAX`); flags other
    /// than GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE are EINVAL.
    pub fn getrandom(len: u64, flags: u64) -> Result<u64, i64> {
        if flags & !7 != 0 {
            return Err(EINVAL);
        }
        Ok(len.min(super::RANDOM_MAX))
    }

    /// A length the kernel copies in (a path, an argument): at most `max` bytes.
    pub fn bounded(len: u64, max: u64) -> Result<usize, i64> {
        if len > max {
            Err(E2BIG)
        } else {
            Ok(len as usize)
        }
    }

    /// `spawn`'s path: UTF-8, `/bin/NAME`, one plain name (no `/`, `..` or NUL in it).
    pub fn spawn_path(b: &[u8]) -> Result<&str, i64> {
        let s = core::str::from_utf8(b).map_err(|_| EINVAL)?;
        let name = s.strip_prefix("/bin/").ok_or(ENOENT)?;
        if name.is_empty() || name.contains(['/', '\0']) || name == ".." || name == "." {
            return Err(ENOENT);
        }
        Ok(s)
    }

    /// What of a `total`-byte report a `query` at `offset` into `buf_len` bytes copies
    /// (at most 64 KiB a call; empty past the end).
    pub fn window(total: usize, offset: u64, buf_len: u64) -> Range<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
        let n = (total - start).min(buf_len.min(64 * 1024) as usize);
        start..start + n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_the_last_page_of_values() {
        assert_eq!(error((-14i64) as u64), Some(14));
        assert_eq!(error(0), None);
        assert_eq!(error(0x60_0000_0000), None);
        assert_eq!(error((-4096i64) as u64), None);
    }

    #[test]
    fn wait_statuses_decode_as_linux_s() {
        assert_eq!(exited(6 << 8), Some(6));
        assert_eq!(exited(9), None);
    }

    #[test]
    fn wait4_takes_one_child_or_any() {
        use check::wait4;
        assert_eq!(wait4(u64::MAX, 0, 0), Ok(None));
        assert_eq!(wait4(7, WNOHANG, 0), Ok(Some(7)));
        assert_eq!(wait4(0, 0, 0), Err(errno::EINVAL));
        assert_eq!(wait4((-5i64) as u64, 0, 0), Err(errno::EINVAL));
        assert_eq!(wait4(1 << 40, 0, 0), Err(errno::EINVAL));
        assert_eq!(wait4(7, 2, 0), Err(errno::EINVAL));
        assert_eq!(wait4(7, 0, 0x1000), Err(errno::EINVAL));
    }

    #[test]
    fn timespecs_are_checked_as_linux_does() {
        let ts = |s: i64, n: i64| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&s.to_le_bytes());
            b[8..].copy_from_slice(&n.to_le_bytes());
            check::timespec_us(&b)
        };
        assert_eq!(ts(1, 500_000_000), Ok(1_500_000));
        assert_eq!(ts(0, 999_999_999), Ok(999_999));
        assert_eq!(ts(0, 1_000_000_000), Err(errno::EINVAL));
        assert_eq!(ts(-1, 0), Err(errno::EINVAL));
        assert_eq!(ts(0, -1), Err(errno::EINVAL));
        assert_eq!(ts(i64::MAX, 0), Ok(u64::MAX));
    }

    #[test]
    fn only_power_off_with_the_magic() {
        assert_eq!(
            check::reboot(REBOOT_MAGIC1, REBOOT_MAGIC2, REBOOT_CMD_POWER_OFF),
            Ok(())
        );
        assert!(check::reboot(REBOOT_MAGIC1, REBOOT_MAGIC2, 0x0123_4567).is_err());
        assert!(check::reboot(0, REBOOT_MAGIC2, REBOOT_CMD_POWER_OFF).is_err());
        assert!(check::reboot(REBOOT_MAGIC1, 1, REBOOT_CMD_POWER_OFF).is_err());
    }

    #[test]
    fn getrandom_flags_and_length() {
        assert_eq!(check::getrandom(1 << 30, 1), Ok(RANDOM_MAX));
        assert_eq!(check::getrandom(16, 7), Ok(16));
        assert_eq!(check::getrandom(16, 8), Err(errno::EINVAL));
    }

    #[test]
    fn spawn_paths_name_one_program_of_bin() {
        assert_eq!(check::spawn_path(b"/bin/sh"), Ok("/bin/sh"));
        for bad in [
            &b"/bin/"[..],
            b"/bin/../bin/sh",
            b"/bin/a/b",
            b"bin/sh",
            b"/etc/passwd",
            b"/bin/sh\0x",
            b"/bin/..",
        ] {
            assert_eq!(check::spawn_path(bad), Err(errno::ENOENT), "{bad:?}");
        }
        assert_eq!(check::spawn_path(&[b'/', 0xff]), Err(errno::EINVAL));
        assert_eq!(check::bounded(257, NAME_MAX), Err(errno::E2BIG));
        assert_eq!(check::bounded(256, NAME_MAX), Ok(256));
    }

    #[test]
    fn query_windows_stay_inside_the_report() {
        assert_eq!(check::window(100, 0, 4096), 0..100);
        assert_eq!(check::window(100, 60, 16), 60..76);
        assert_eq!(check::window(100, 100, 16), 100..100);
        assert_eq!(check::window(100, u64::MAX, 16), 100..100);
        assert_eq!(check::window(1 << 20, 0, u64::MAX), 0..64 * 1024);
    }
}
