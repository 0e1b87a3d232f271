//! Command lines, event lines, Image headers, load addresses and PSCI calls: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = bootparams::parse(s, bootparams::Hooks::Accepted);
        let _ = bootparams::parse(s, bootparams::Hooks::Refused);
        let _ = catena_event::parse_line(s);
    }
    let _ = arm64_image::parse_address(data);
    let _ = arm64_image::Header::parse(data, data.len() as u64)
        .and_then(|h| h.load_address(0x4000_0000, 0x8000_0000));
    let mut p = psci_el3::Psci::new(
        &[0, 1],
        &[psci_el3::NsRange {
            base: 0x4000_0000,
            size: 0x4000_0000,
        }],
    );
    for c in data.chunks(64) {
        let mut x = [0u64; 8];
        for (i, r) in x.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            let s = c.get(i * 8..(i + 1) * 8).unwrap_or(&[]);
            b[..s.len()].copy_from_slice(s);
            *r = u64::from_le_bytes(b);
        }
        x[0] = 0x8400_0000 | (x[0] & 0x4000_001f);
        let _ = p.handle(usize::from(c.first().copied().unwrap_or(0) % 2), &x);
    }
});
