//! The driver against a model of two x16 Intel-command-set devices on a 32-bit bus, built
//! from the CFI and Intel command-set facts (stricter than QEMU's `pflash_cfi01`: a program
//! only clears bits, a command must reach both devices).
extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;
use varstore::{Flash, Store, Var};

const SIZE: u32 = 4 * 1024 * 1024;
const BLOCK: u32 = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Array,
    Query,
    Status,
    Program,
    EraseSetup,
    BufCount,
    BufData(u32),
    BufConfirm,
}

struct Model {
    mem: Vec<u8>,
    mode: Mode,
    status: u8,
    locked: Vec<u32>,
    /// Status reads answered "busy" before "ready".
    busy: u32,
    never_ready: bool,
    commands: usize,
    /// A command whose two lanes differed.
    split_command: bool,
    /// Programs that asked for a 1 where a 0 is stored: harmless on a real part, but QEMU's
    /// model stores the value written, so it would raise the bit.
    raises: usize,
}

impl Model {
    fn new() -> Model {
        Model {
            mem: vec![0xff; SIZE as usize],
            mode: Mode::Array,
            status: 0x80,
            locked: Vec::new(),
            busy: 0,
            never_ready: false,
            commands: 0,
            split_command: false,
            raises: 0,
        }
    }

    fn table(i: u32) -> u16 {
        // Per device: two 2 MiB x16 parts, 16 blocks of 128 KiB, 2 KiB write buffer.
        match i {
            0x10 => b'Q'.into(),
            0x11 => b'R'.into(),
            0x12 => b'Y'.into(),
            0x13 => 0x01,
            0x14 => 0x00,
            0x27 => 21,
            0x2a => 11,
            0x2b => 0,
            0x2c => 1,
            0x2d => 15,
            0x2e => 0,
            0x2f => 0x00,
            0x30 => 0x02,
            _ => 0,
        }
    }

    fn block_of(off: u32) -> u32 {
        off / BLOCK
    }

    fn program_word(&mut self, off: u32, v: u32) {
        if self.locked.contains(&Self::block_of(off)) {
            self.status |= 0x12;
            return;
        }
        for (k, b) in v.to_le_bytes().iter().enumerate() {
            let cell = &mut self.mem[off as usize + k];
            if b & !*cell != 0 {
                self.raises += 1;
            }
            *cell &= b;
        }
    }
}

impl Io for &mut Model {
    fn read32(&mut self, off: u32) -> u32 {
        assert_eq!(off % 4, 0);
        match self.mode {
            Mode::Array => {
                u32::from_le_bytes(self.mem[off as usize..off as usize + 4].try_into().unwrap())
            }
            Mode::Query => {
                let v = u32::from(Model::table(off / 4));
                v | v << 16
            }
            _ => {
                let mut s = u32::from(self.status);
                if self.never_ready {
                    s &= !0x80;
                } else if self.busy > 0 {
                    self.busy -= 1;
                    s &= !0x80;
                }
                s | s << 16
            }
        }
    }

    fn write32(&mut self, off: u32, v: u32) {
        assert_eq!(off % 4, 0);
        let command = |m: &mut Model| {
            if v >> 16 != v & 0xffff {
                m.split_command = true;
            }
            m.commands += 1;
            v & 0xff
        };
        self.mode = match self.mode {
            Mode::Program => {
                self.program_word(off, v);
                self.busy = 3;
                Mode::Status
            }
            Mode::EraseSetup => {
                assert_eq!(command(self), 0xd0, "erase needs its confirm");
                if self.locked.contains(&Model::block_of(off)) {
                    self.status |= 0x22;
                } else {
                    let b = (off / BLOCK * BLOCK) as usize;
                    self.mem[b..b + BLOCK as usize].fill(0xff);
                }
                self.busy = 10;
                Mode::Status
            }
            Mode::BufCount => {
                assert_eq!(v >> 16, v & 0xffff, "both devices get the count");
                Mode::BufData(v & 0xffff)
            }
            Mode::BufData(left) => {
                self.program_word(off, v);
                if left == 0 {
                    Mode::BufConfirm
                } else {
                    Mode::BufData(left - 1)
                }
            }
            Mode::BufConfirm => {
                assert_eq!(command(self), 0xd0, "a buffered write needs its confirm");
                self.busy = 5;
                Mode::Status
            }
            _ => match command(self) {
                0xff => Mode::Array,
                0x98 => Mode::Query,
                0x70 => Mode::Status,
                0x50 => {
                    self.status = 0x80;
                    Mode::Array
                }
                0x40 | 0x10 => Mode::Program,
                0x20 => Mode::EraseSetup,
                0xe8 => Mode::BufCount,
                c => panic!("unexpected command {c:#x}"),
            },
        };
    }
}

fn probe(m: &mut Model) -> Cfi<&mut Model> {
    Cfi::probe(m, SIZE).unwrap()
}

#[test]
fn probe_reads_the_geometry_and_leaves_read_array() {
    let mut m = Model::new();
    let c = probe(&mut m);
    assert_eq!(
        c.geometry(),
        Geometry {
            size: SIZE,
            block: BLOCK,
            buffer: 4096
        }
    );
    let _ = c;
    assert_eq!(m.mode, Mode::Array);
    assert!(!m.split_command);
    // A region of another size, or a device that is not CFI.
    assert_eq!(
        Cfi::probe(&mut Model::new(), SIZE * 2).err(),
        Some(ProbeError::Table("the table's size is not the region's"))
    );
    struct Ram;
    impl Io for Ram {
        fn read32(&mut self, _: u32) -> u32 {
            0
        }
        fn write32(&mut self, _: u32, _: u32) {}
    }
    assert_eq!(Cfi::probe(Ram, SIZE).err(), Some(ProbeError::NotCfi));
}

#[test]
fn programs_any_byte_range_and_only_clears_bits() {
    let mut m = Model::new();
    m.mem[0x1001] = 0x0f;
    let mut c = probe(&mut m);
    // Unaligned start and end, a single byte, and a run across a write-buffer boundary.
    c.program(0x1002, &[0x12, 0x34, 0x56]).unwrap();
    c.program(0x2000 - 6, &[0xa5; 300]).unwrap();
    c.program(0x3003, &[0x00]).unwrap();
    let mut b = [0u8; 6];
    c.read(0x1000, &mut b).unwrap();
    assert_eq!(b, [0xff, 0x0f, 0x12, 0x34, 0x56, 0xff]);
    let mut run = vec![0u8; 310];
    c.read(0x2000 - 8, &mut run).unwrap();
    assert_eq!(&run[..2], &[0xff, 0xff]);
    assert!(run[2..302].iter().all(|&x| x == 0xa5));
    assert_eq!(&run[302..], &[0xff; 8]);
    // Programming a 1 over a 0 changes nothing.
    c.program(0x1001, &[0xff]).unwrap();
    c.read(0x1000, &mut b).unwrap();
    assert_eq!(b[1], 0x0f);
    let _ = c;
    assert_eq!(m.mode, Mode::Array);
    assert!(!m.split_command);
    assert_eq!(
        m.raises, 0,
        "every word written is the current value ANDed with the new bytes"
    );
}

#[test]
fn erase_clears_one_block() {
    let mut m = Model::new();
    m.mem[..].fill(0);
    let mut c = probe(&mut m);
    c.erase(BLOCK).unwrap();
    assert_eq!(c.erase(BLOCK + 4), Err(FlashError::Range));
    assert_eq!(c.erase(SIZE), Err(FlashError::Range));
    let _ = c;
    assert!(
        m.mem[BLOCK as usize..2 * BLOCK as usize]
            .iter()
            .all(|&x| x == 0xff)
    );
    assert!(m.mem[..BLOCK as usize].iter().all(|&x| x == 0));
    assert!(m.mem[2 * BLOCK as usize..].iter().all(|&x| x == 0));
}

#[test]
fn device_errors_are_reported_cleared_and_read_array_restored() {
    let mut m = Model::new();
    m.locked.push(1);
    let mut c = probe(&mut m);
    assert_eq!(
        c.program(BLOCK + 8, &[0; 4]),
        Err(FlashError::Device("block locked"))
    );
    assert_eq!(c.erase(BLOCK), Err(FlashError::Device("block locked")));
    // The error was cleared: the next operation elsewhere succeeds.
    c.program(0, &[0; 4]).unwrap();
    let _ = c;
    assert_eq!(m.mode, Mode::Array);
    assert_eq!(m.status, 0x80);
    m.never_ready = true;
    let mut c = probe(&mut m);
    assert_eq!(c.program(16, &[0; 4]), Err(FlashError::Device("timeout")));
    let _ = c;
    assert_eq!(m.mode, Mode::Array);
}

#[test]
fn reads_and_writes_outside_are_refused() {
    let mut m = Model::new();
    let mut c = probe(&mut m);
    assert_eq!(c.program(SIZE - 2, &[0; 4]), Err(FlashError::Range));
    assert_eq!(c.read(u32::MAX, &mut [0; 2]), Err(FlashError::Range));
    let mut w = Window::new(c, BLOCK, 2 * BLOCK).unwrap();
    assert_eq!(w.size(), 2 * BLOCK);
    assert_eq!(w.program(2 * BLOCK - 1, &[0; 2]), Err(FlashError::Range));
    assert_eq!(w.erase(2 * BLOCK), Err(FlashError::Range));
    let _ = w;
    let c = probe(&mut m);
    assert!(Window::new(c, BLOCK / 2, BLOCK).is_none());
}

#[test]
fn the_variable_store_runs_on_it() {
    let mut m = Model::new();
    let c = probe(&mut m);
    let w = Window::new(c, 2 * BLOCK, 2 * BLOCK).unwrap();
    let (mut s, r) = Store::open(w).unwrap();
    assert!(r.formatted && r.blank);
    for i in 0..50u8 {
        s.set(Var {
            guid: [1; 16],
            name: vec![b'A', 0, 0, 0],
            attrs: 7,
            time: [0; 16],
            data: vec![i; 1000],
        })
        .unwrap();
    }
    let _ = s;
    assert_eq!(m.raises, 0);
    // Nothing outside the window was touched.
    assert!(m.mem[..2 * BLOCK as usize].iter().all(|&x| x == 0xff));
    let c = probe(&mut m);
    let w = Window::new(c, 2 * BLOCK, 2 * BLOCK).unwrap();
    let (s, r) = Store::open(w).unwrap();
    assert_eq!((r.formatted, r.corrupt, r.torn), (false, 0, false));
    assert_eq!(
        s.get(&[1; 16], &[b'A', 0, 0, 0]).unwrap().data,
        vec![49u8; 1000]
    );
}
