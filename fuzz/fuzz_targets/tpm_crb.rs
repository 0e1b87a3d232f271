//! The TPM service against CRB pages and call registers an untrusted normal world chose:
//! never a panic, and the TPM only ever sees a command from inside the caller's buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tpm_service::sim::SimCrb;
use tpm_service::{Service, Tpm, TpmError, den0138};

const CRB_PA: u64 = 0x4100_0000;

struct Echo;

impl Tpm for Echo {
    fn execute(&mut self, _: u8, cmd: &[u8], rsp: &mut [u8]) -> Result<usize, TpmError> {
        assert!(cmd.len() >= 10 && cmd.len() <= 0xf80, "a command outside the buffer rules");
        let n = cmd.len().min(rsp.len());
        rsp[..n].copy_from_slice(&cmd[..n]);
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut m = SimCrb::new(0);
    let Ok(mut s) = Service::new(CRB_PA, &mut m) else {
        return;
    };
    // Rounds of: some bytes written over the pages, then one call.
    for chunk in data.chunks(64) {
        if chunk.len() < 16 {
            break;
        }
        {
            let mut bytes = m.bytes();
            let at = u16::from_le_bytes([chunk[0], chunk[1]]) as usize % bytes.len();
            let body = &chunk[16..];
            let end = (at + body.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&body[..end - at]);
        }
        let f = [den0138::START, den0138::GET_INTERFACE_VERSION, 0x0f00_0601][chunk[2] as usize % 3];
        let x = [
            u64::from(chunk[3] & 1),
            f,
            u64::from(chunk[4]) | (u64::from(chunk[5] & 1) << 8),
            u64::from(chunk[6] % 7),
            u64::from(chunk[7] & 1),
        ];
        let _ = s.handle(x, &mut m, &mut Echo);
    }
});
