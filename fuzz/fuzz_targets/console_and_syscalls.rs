//! What EL0 hands the kernel and what a person types: bytes fed to the shell's line editor
//! (escape sequences cut anywhere, control bytes, non-ASCII), and system call arguments to
//! every check of `user_abi::check`. Nothing may panic; a line stays within its bound and
//! holds only printable ASCII; accepted arguments keep their promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use user_abi::check;

fn word(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i * 8 + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let mut ed = lineedit::Editor::new();
    for &b in data {
        if let lineedit::Step::Line(l) = ed.feed(b) {
            assert!(l.len() <= lineedit::LINE_MAX);
            assert!(l.bytes().all(|c| (0x20..0x7f).contains(&c)));
        }
        assert!(ed.history().len() <= lineedit::HISTORY_MAX);
    }
    let (a, b, c) = (word(data, 0), word(data, 1), word(data, 2));
    if let Ok(Some(pid)) = check::wait4(a, b, c) {
        assert!(pid > 0);
    }
    let mut ts = [0u8; 16];
    for (i, x) in ts.iter_mut().enumerate() {
        *x = data.get(i).copied().unwrap_or(0);
    }
    let _ = check::timespec_us(&ts);
    if check::reboot(a, b, c).is_ok() {
        assert_eq!(a, user_abi::REBOOT_MAGIC1);
    }
    if let Ok(n) = check::getrandom(a, b) {
        assert!(n <= user_abi::RANDOM_MAX);
    }
    if let Ok(p) = check::spawn_path(data) {
        assert!(p.starts_with("/bin/") && !p[5..].contains('/'));
    }
    let w = check::window(a as usize % 100_000, b, c);
    assert!(w.end <= a as usize % 100_000 && w.len() <= 64 * 1024);
});
