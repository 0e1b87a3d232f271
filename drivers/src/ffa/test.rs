//! The test partition's driver: proves the FF-A paths end to end through the core's session.

use super::{errno, with_session};
use crate::kapi;
use alloc::format;
use catena_event::Kind;
use devmodel::{Driver, MatchId, ProbeCtx, ProbeError, ProbeResult};
use ffa_abi::testsp;
use ffa_core::client::CallError;

/// The test partition's driver.
pub const TEST_DRIVER: Driver = Driver {
    name: "ffa-test",
    bus: "ffa",
    ids: &[MatchId::Uuid(testsp::UUID)],
    probe: test_probe,
    bound: None,
};

/// The test partition's driver: echo through REQ and REQ2 (every argument register compared)
/// and a memory share round trip (the kernel fills a buffer, shares it, the partition returns
/// the checksum and writes its marker, the kernel reclaims it and sees the marker).
fn test_probe(ctx: &mut ProbeCtx<'_>) -> ProbeResult {
    let dev = ctx.device();
    let (id, props) = (
        dev.prop("partition-id").unwrap_or(0) as u16,
        dev.prop("properties").unwrap_or(0) as u32,
    );
    let uuid = dev.uuid.unwrap_or(ffa_abi::NIL_UUID);
    let fail = |step: &'static str, e: CallError| {
        let reason = format!("{step}: {}", errno(e));
        log::error!("ffa-test: {reason}");
        kapi::emit(Kind::FfaTest, |w| {
            w.str("result", "fail").str("reason", &reason)
        });
        ProbeError::Failed("ffa-test")
    };
    let r = with_session(|f| {
        let args5 = [
            0x1111,
            0x2222_0000_0000_3333,
            u64::MAX,
            0,
            0x5555_aaaa_5555_aaaa,
        ];
        let echo = f.direct_req(id, args5).map_err(|e| fail("direct-req", e))?;
        let args14: [u64; 14] =
            core::array::from_fn(|i| 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 3));
        let (form, echo2) = f
            .send(id, props, &uuid, args14, None)
            .map_err(|e| fail("direct-req2", e))?;
        let mut mem = kapi::pages(2);
        for (i, b) in mem.iter_mut().flat_map(|p| p.0.iter_mut()).enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let want = mem
            .iter()
            .fold(testsp::CHECKSUM_INIT, |h, p| testsp::checksum(h, &p.0));
        let handle = f
            .share(id, kapi::pa(&mem), mem.len() as u32)
            .map_err(|e| fail("mem-share", e))?;
        let r = f
            .direct_req(
                id,
                [
                    testsp::CMD_MEM_CHECK,
                    handle & 0xffff_ffff,
                    handle >> 32,
                    0,
                    0,
                ],
            )
            .map_err(|e| fail("mem-check", e))?;
        f.reclaim(handle).map_err(|e| fail("mem-reclaim", e))?;
        let marked = mem[0].0[..8] == testsp::MARKER;
        let echo_ok = echo == args5;
        let req2_ok = match form {
            ffa_core::Form::Req2 => echo2 == args14,
            ffa_core::Form::Req => echo2[..5] == args14[..5],
        };
        let share_ok = r[1] == 0 && r[2] == want && r[3] == 8192 && marked;
        let ok = echo_ok && req2_ok && share_ok;
        kapi::emit(Kind::FfaTest, |w| {
            w.str("result", if ok { "ok" } else { "fail" })
                .hex("partition", u64::from(id))
                .str("echo", if echo_ok { "ok" } else { "mismatch" })
                .str("req2", if req2_ok { "ok" } else { "mismatch" })
                .str(
                    "form",
                    if form == ffa_core::Form::Req2 {
                        "req2"
                    } else {
                        "req"
                    },
                )
                .str("share", if share_ok { "ok" } else { "mismatch" })
                .hex("checksum", r[2])
        });
        if ok {
            Ok(())
        } else {
            Err(ProbeError::Failed("ffa-test-mismatch"))
        }
    });
    r.unwrap_or(Err(ProbeError::Failed("no FF-A session")))
}
