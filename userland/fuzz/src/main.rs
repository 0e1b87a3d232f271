//! The system call fuzzer: thousands of calls with numbers and arguments from a PRNG (a
//! xorshift seeded by the argument), drawn from what breaks kernels — 0, small numbers, its
//! own valid addresses and their last bytes, holes in the user range, kernel addresses,
//! addresses that wrap, 2^64-1. The kernel must answer each and go on; the fuzzer then checks
//! it still works (a good write) and reports the count.
//!
//! Left out on purpose: exit (it would end the fuzzer), and the calls that would wait for a
//! person or the clock with a plausible argument — read of fd 0 and nanosleep get only bad
//! pointers (kernel memory, a hole); attest (a TPM quote per call, and it exports evidence).
#![no_std]
#![no_main]

extern crate alloc;

use catena_event::Kind;
use catena_user_rt::{self as rt, nr, syscall};

/// Calls made.
const CALLS: u64 = 3000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

static DATA: [u8; 64] = [0x41; 64];

fn value(r: &mut Rng, stack: u64) -> u64 {
    let own = DATA.as_ptr() as u64;
    match r.next() % 12 {
        0 => 0,
        1 => r.next() % 64,
        2 => own + r.next() % 64,
        3 => own + 63,
        4 => stack - r.next() % 256,
        5 => 0x60_1000_0000 + r.next() % 0x1000,
        6 => 0x4000_0000 + r.next() % 0x10_0000,
        7 => u64::MAX - r.next() % 16,
        8 => 0x70_0000_0000 - r.next() % 8,
        9 => 1 << (r.next() % 64),
        10 => (-(r.next() as i64 % 4096)) as u64,
        _ => r.next(),
    }
}

/// The program.
#[unsafe(no_mangle)]
fn main(arg: &str) -> u64 {
    let seed = arg.parse::<u64>().unwrap_or(0x9e37_79b9_7f4a_7c15) | 1;
    let mut r = Rng(seed);
    let probe = 0u64;
    let stack = &raw const probe as u64;
    let numbers = [
        nr::READ,
        nr::WRITE,
        nr::NANOSLEEP,
        nr::SCHED_YIELD,
        nr::REBOOT,
        nr::GETPID,
        nr::GETPPID,
        nr::WAIT4,
        nr::GETRANDOM,
        nr::SPAWN,
        nr::QUERY,
    ];
    let (mut errors, mut ok) = (0u64, 0u64);
    for _ in 0..CALLS {
        let n = if r.next().is_multiple_of(8) {
            r.next() % 2048
        } else {
            numbers[(r.next() % numbers.len() as u64) as usize]
        };
        if matches!(n, nr::EXIT | nr::EXIT_GROUP | nr::ATTEST) {
            continue;
        }
        let mut a = [0u64; 6];
        for v in &mut a {
            *v = value(&mut r, stack);
        }
        if n == nr::READ && a[0] == 0 {
            // The console has nothing typed in a test: a read it accepts would wait forever.
            a[1] = 0x4000_0000;
        }
        if n == nr::NANOSLEEP {
            a[0] = 0x60_1000_0000 + r.next() % 0x1000;
        }
        if n == nr::QUERY && a[0] == rt::q::PCRS {
            // 24 TPM reads a call: a few are enough.
            a[0] = 999;
        }
        if rt::error(syscall(n, a)).is_none() {
            ok += 1;
        } else {
            errors += 1;
        }
    }
    let alive = rt::write(1, b"fuzz: the kernel still answers\n") == 31;
    rt::event(Kind::Process, |w| {
        w.str("name", "bin/fuzz")
            .str("state", "fuzzed")
            .u64("calls", ok + errors)
            .u64("errors", errors)
            .str("alive", if alive { "yes" } else { "no" })
    });
    u64::from(!alive)
}
