//! fw_cfg as an untrusted host could fill it: every item (signature, sizes, the file
//! directory, the kernel-base file, the Image, the BL33 file, the initrd) from the fuzzer's bytes. The loader must refuse
//! or load, never panic, and never write outside the RAM it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

struct Io {
    items: BTreeMap<u16, Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl fwcfg::FwCfgIo for Io {
    fn select(&mut self, key: u16) {
        self.cur = self.items.get(&key).cloned().unwrap_or_default();
        self.pos = 0;
    }
    fn read(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.cur.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }
}

const LOWEST: u64 = 0x4020_0000;
const END: u64 = 0x4400_0000;

struct Ram;

impl fwcfg::Ram for Ram {
    fn write(&mut self, addr: u64, data: &[u8]) {
        assert!(addr >= LOWEST && addr + data.len() as u64 <= END, "write outside RAM");
    }
}

fuzz_target!(|data: &[u8]| {
    // Items: [key u16 LE][len u16 LE][bytes] repeated.
    let mut items = BTreeMap::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let key = u16::from_le_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        items.insert(key, rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    items.entry(fwcfg::sel::SIGNATURE).or_insert_with(|| b"QEMU".to_vec());
    let mut io = Io {
        items,
        cur: Vec::new(),
        pos: 0,
    };
    let _ = fwcfg::load_kernel(&mut io, &mut Ram, LOWEST, END);
    // A BL33 file whose directory entry claims any size: loaded inside RAM or refused.
    let _ = fwcfg::load_bl33(&mut io, &mut Ram, LOWEST, END);
    // An initrd of any announced size: loaded inside RAM or refused.
    let _ = fwcfg::load_initrd(&mut io, &mut Ram, LOWEST, END);
});
