//! Any registers as the other side's replies to the kernel's FF-A client, after a session
//! set up for real: direct requests in place (both forms), discovery, memory sharing. Never a
//! panic; an in-place request that succeeds came back from the partition to us, and a failed
//! one left its arguments alone.
#![no_main]
use ffa_abi::{V1_2, fid};
use ffa_core::Form;
use ffa_core::client::{Client, Conduit, Mailbox};
use libfuzzer_sys::fuzz_target;

struct Replies<'a> {
    setup: usize,
    data: &'a [u8],
}

impl Conduit for Replies<'_> {
    fn call(&mut self, x: &mut [u64; 18]) {
        let r = x;
        // The session's set-up (FFA_VERSION, ID_GET, three FEATURES, RXTX_MAP) answered well.
        if self.setup < 6 {
            self.setup += 1;
            let version = r[0] as u32 == fid::VERSION;
            *r = [0; 18];
            r[0] = if version {
                u64::from(ffa_abi::version_word(V1_2))
            } else {
                u64::from(fid::SUCCESS32)
            };
            return;
        }
        // Then whatever the input says, 8 bytes a register, zeros once it runs out.
        for v in r.iter_mut() {
            let (head, rest) = self.data.split_at(self.data.len().min(8));
            let mut b = [0u8; 8];
            b[..head.len()].copy_from_slice(head);
            *v = u64::from_le_bytes(b);
            self.data = rest;
        }
    }
}

struct Pair([u8; 4096]);

impl Mailbox for Pair {
    fn tx(&self) -> u64 {
        0x4000_1000
    }
    fn rx(&self) -> u64 {
        0x4000_2000
    }
    fn write_tx(&mut self, _: &[u8]) {}
    fn read_rx(&self, buf: &mut [u8]) {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let mut rx = [0u8; 4096];
    let n = data.len().min(rx.len());
    rx[..n].copy_from_slice(&data[..n]);
    let Ok(mut c) = Client::open(Replies { setup: 0, data }, Pair(rx)) else {
        return;
    };
    let dst = 0x8001u16;
    let form = if sel & 1 == 0 { Form::Req2 } else { Form::Req };
    let n = usize::from(sel >> 1) % 15;
    let mut a = [0x5a5a_5a5a_5a5a_5a5au64; 14];
    let before = a;
    match c.send_in_place(dst, 0x301, &[7; 16], &mut a[..n], Some(form)) {
        Ok(f) => assert_eq!(f, form),
        Err(_) => assert_eq!(a, before, "a failed request changed its arguments"),
    }
    assert_eq!(a[n..], before[n..], "registers past the arguments written");
    let _ = c.partitions(&[0; 16]);
    let _ = c.share(dst, 0x4008_0000, 1);
    let _ = c.direct_req2(dst, &[7; 16], [1; 14]);
});
