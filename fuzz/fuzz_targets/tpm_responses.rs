//! What a TPM says, chosen by the fuzzer: the TPM core parsing a response to each command it
//! sends, and the TIS protocol driving registers whose values the fuzzer picks. Never a panic;
//! the TIS always ends (its clock advances with every access).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tpm_core::{ALG_SHA256, Tpm, Transport};
use tpm_tis::{Io, Tis, Timeouts};

/// Answers every command with the fuzzer's bytes.
struct Canned<'a>(&'a [u8]);

impl Transport for Canned<'_> {
    fn transmit(&mut self, _cmd: &[u8], rsp: &mut [u8]) -> Result<usize, &'static str> {
        let r = rsp.get_mut(..self.0.len()).ok_or("too long")?;
        r.copy_from_slice(self.0);
        Ok(self.0.len())
    }
}

/// TIS registers read from the fuzzer's bytes, in turn.
struct Regs<'a> {
    data: &'a [u8],
    pos: usize,
    clock: u64,
}

impl Regs<'_> {
    fn next(&mut self) -> u8 {
        self.clock += 7;
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = (self.pos + 1) % self.data.len().max(1);
        b
    }
}

impl Io for Regs<'_> {
    fn read8(&mut self, _off: u32) -> u8 {
        self.next()
    }
    fn write8(&mut self, _off: u32, _v: u8) {
        self.clock += 1;
    }
    fn read32(&mut self, _off: u32) -> u32 {
        u32::from_le_bytes([self.next(), self.next(), self.next(), self.next()])
    }
    fn write32(&mut self, _off: u32, _v: u32) {
        self.clock += 1;
    }
    fn now_us(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

fuzz_target!(|data: &[u8]| {
    let mut t = Tpm::new(Canned(data));
    let _ = t.startup();
    let _ = t.self_test();
    let _ = t.banks();
    let _ = t.identity();
    if let Ok(d) = t.pcr_read(ALG_SHA256, 16) {
        assert_eq!(d.as_bytes().len(), 32);
    }
    let _ = t.pcr_extend_sha256(16, &[0x5a; 32]);
    let mut r = [0u8; 32];
    if let Ok(n) = t.get_random(&mut r[..16]) {
        assert!(n <= 16);
    }
    let t = Timeouts {
        a_us: 2000,
        b_us: 2000,
        c_us: 2000,
        command_us: 20_000,
    };
    let mut tis = Tis::new(
        Regs {
            data,
            pos: 0,
            clock: 0,
        },
        t,
    );
    let cmd = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0];
    let mut rsp = [0u8; 64];
    if let Ok(n) = tis.execute(0, &cmd, &mut rsp) {
        assert!((10..=64).contains(&n));
    }
    // The same bytes as a credential file from the verifier (fw_cfg opt/catena/credential).
    if let Ok(c) = tpm_core::Credential::parse(data) {
        assert!(c.blob.len() <= 132 && c.secret.len() <= 512);
    }
});
