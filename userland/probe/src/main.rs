//! Hammers every system call with bad arguments; each must come back as the documented error,
//! never fault the kernel. Prints each check that failed, then an `@event` with the count, and
//! exits with the number of checks that passed (all of them: [`CHECKS`]).
#![no_std]
#![no_main]

extern crate alloc;

use catena_event::Kind;
use catena_user_rt::{self as rt, errno as e, nr, syscall};

/// How many checks there are (the exit code when every one passed).
const CHECKS: u64 = 26;

static MSG: [u8; 16] = *b"probe: refusals\n";

/// Kernel memory: mapped in every process's table, privileged-only.
const KERNEL: u64 = 0x4000_0000;
/// Inside the user range, mapped by nothing (the fault fixup's case).
const HOLE: u64 = 0x60_1000_0000;
/// The top of the user range, where the stack ends, and the stack's size (below it: a hole).
const TOP: u64 = 0x70_0000_0000;
const STACK: u64 = 64 * 1024;
/// Below the user range.
const LOW: u64 = 0x1000;

fn is(r: u64, errno: i64) -> bool {
    r == (-errno) as u64
}

/// The program.
#[unsafe(no_mangle)]
fn main(_arg: &str) -> u64 {
    let good = MSG.as_ptr() as u64;
    let mut buf = [0u8; 64];
    let out = buf.as_mut_ptr() as u64;
    let ts_bad_nsec: [i64; 2] = [0, 1_000_000_000];
    let checks: [(&str, bool); CHECKS as usize] = [
        (
            "write below the user range",
            is(syscall(nr::WRITE, [1, LOW, 8, 0, 0, 0]), e::EFAULT),
        ),
        (
            "write from kernel memory",
            is(syscall(nr::WRITE, [1, KERNEL, 16, 0, 0, 0]), e::EFAULT),
        ),
        (
            "write from a hole",
            is(syscall(nr::WRITE, [1, HOLE, 16, 0, 0, 0]), e::EFAULT),
        ),
        (
            "write across the top of the user range",
            is(syscall(nr::WRITE, [1, TOP - 8, 16, 0, 0, 0]), e::EFAULT),
        ),
        (
            "write from below the stack into it",
            is(
                syscall(nr::WRITE, [1, TOP - STACK - 8, 16, 0, 0, 0]),
                e::EFAULT,
            ),
        ),
        (
            "write of 2^64-1 bytes",
            is(syscall(nr::WRITE, [1, good, u64::MAX, 0, 0, 0]), e::EFAULT),
        ),
        (
            "write to a bad fd",
            is(syscall(nr::WRITE, [7, good, 4, 0, 0, 0]), e::EBADF),
        ),
        (
            "read from a bad fd",
            is(syscall(nr::READ, [1, out, 4, 0, 0, 0]), e::EBADF),
        ),
        (
            "read into kernel memory",
            is(syscall(nr::READ, [0, KERNEL, 4, 0, 0, 0]), e::EFAULT),
        ),
        (
            "read into a wrapping range",
            is(syscall(nr::READ, [0, u64::MAX - 2, 8, 0, 0, 0]), e::EFAULT),
        ),
        (
            "nanosleep from a hole",
            is(syscall(nr::NANOSLEEP, [HOLE, 0, 0, 0, 0, 0]), e::EFAULT),
        ),
        (
            "nanosleep nsec = 10^9",
            is(
                syscall(nr::NANOSLEEP, [ts_bad_nsec.as_ptr() as u64, 0, 0, 0, 0, 0]),
                e::EINVAL,
            ),
        ),
        (
            "wait4 without children",
            is(syscall(nr::WAIT4, [u64::MAX, 0, 0, 0, 0, 0]), e::ECHILD),
        ),
        (
            "wait4 status in kernel memory",
            is(
                syscall(nr::WAIT4, [u64::MAX, KERNEL, 0, 0, 0, 0]),
                e::EFAULT,
            ),
        ),
        (
            "wait4 with rusage",
            is(syscall(nr::WAIT4, [u64::MAX, 0, 0, out, 0, 0]), e::EINVAL),
        ),
        (
            "wait4 pid 0",
            is(syscall(nr::WAIT4, [0, 0, 0, 0, 0, 0]), e::EINVAL),
        ),
        (
            "getrandom unknown flags",
            is(syscall(nr::GETRANDOM, [out, 8, 0x80, 0, 0, 0]), e::EINVAL),
        ),
        (
            "getrandom into kernel memory",
            is(syscall(nr::GETRANDOM, [KERNEL, 8, 0, 0, 0, 0]), e::EFAULT),
        ),
        (
            "reboot without the magic",
            is(syscall(nr::REBOOT, [1, 2, 3, 0, 0, 0]), e::EINVAL),
        ),
        (
            "spawn a path in a hole",
            is(syscall(nr::SPAWN, [HOLE, 8, 0, 0, 0, 0]), e::EFAULT),
        ),
        (
            "spawn a path too long",
            is(syscall(nr::SPAWN, [good, 1 << 20, 0, 0, 0, 0]), e::E2BIG),
        ),
        (
            "spawn no such program",
            rt::spawn("/bin/none", "") == Err(e::ENOENT),
        ),
        (
            "query an unknown kind",
            is(syscall(nr::QUERY, [999, 0, 0, out, 64, 0]), e::EINVAL),
        ),
        (
            "query into kernel memory",
            is(
                syscall(nr::QUERY, [rt::q::PS, 0, 0, KERNEL, 64, 0]),
                e::EFAULT,
            ),
        ),
        (
            "attest into kernel memory",
            is(syscall(nr::ATTEST, [KERNEL, 64, 0, 0, 0, 0]), e::EFAULT),
        ),
        ("an unknown call", is(syscall(4242, [0; 6]), e::ENOSYS)),
    ];
    let mut passed = 0;
    for (name, ok) in checks {
        if ok {
            passed += 1;
        } else {
            rt::print(&alloc::format!("probe: FAILED: {name}\n"));
        }
    }
    rt::write(1, &MSG);
    rt::event(Kind::Process, |w| {
        w.str("name", "bin/probe")
            .str("state", "checked")
            .u64("passed", passed)
            .u64("of", CHECKS)
    });
    passed
}
