//! An initramfs as a boot loader could hand it over, and the programs in it: the cpio reader
//! and the ELF loader's validation must refuse or accept, never panic, and what they accept
//! must hold together (names without "..", segments inside the user range, W^X).
#![no_main]
use libfuzzer_sys::fuzz_target;

const LIMITS: elf_load::Limits = elf_load::Limits {
    base: 0x40_0000,
    end: 0x80_0000_0000,
    max_segments: 8,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = cpio::parse(data) {
        for e in entries {
            assert!(!e.name.split('/').any(|c| c == ".."));
            if let Ok(p) = elf_load::parse(e.data, &LIMITS) {
                for s in &p.segments {
                    assert!(!(s.write && s.exec));
                    assert!(s.vaddr >= LIMITS.base && s.vaddr + s.memsz <= LIMITS.end);
                    assert!(s.file.end <= e.data.len());
                }
            }
        }
    }
    let _ = elf_load::parse(data, &LIMITS);
});
