//! DTBs with `FDT_NOP` tokens, made from well-formed ones, for tests of [`crate::strip_nops`]
//! and of a boot on such a DT (`cargo xtask`'s `dt_nops` scenarios).

use alloc::vec::Vec;

use crate::DtError;

const NOP: [u8; 4] = 4u32.to_be_bytes();

fn be32(b: &[u8], off: usize) -> usize {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize
}

/// The structure block as tokens, each with its bytes. `blob` must be valid.
fn tokens(blob: &[u8]) -> Vec<(u32, &[u8])> {
    let st = &blob[be32(blob, 8)..be32(blob, 8) + be32(blob, 36)];
    let mut out = Vec::new();
    let mut r = 0;
    loop {
        let tok = be32(st, r) as u32;
        let len = match tok {
            1 => {
                4 + (st[r + 4..].iter().position(|b| *b == 0).unwrap_or(0) + 1).next_multiple_of(4)
            }
            3 => 12 + be32(st, r + 4).next_multiple_of(4),
            _ => 4,
        };
        out.push((tok, &st[r..r + len]));
        r += len;
        if tok == 9 {
            return out;
        }
    }
}

/// `blob` with `per_token` NOPs before every token of its structure block but the root node's
/// BEGIN_NODE (libfdt, and so QEMU, expects the root at structure offset 0) and, if
/// `nop_out` names a node (its full unit name), the first such node turned into NOPs word for
/// word, as libfdt's `fdt_nop_node` does. The strings block moves after the grown structure
/// block; everything else keeps its place.
pub fn add_nops(blob: &[u8], per_token: usize, nop_out: Option<&str>) -> Result<Vec<u8>, DtError> {
    let blob = crate::validate(blob)?;
    let (off_struct, off_strings, size_strings) = (be32(blob, 8), be32(blob, 12), be32(blob, 32));
    if off_strings < off_struct + be32(blob, 36) {
        return Err(DtError::BadHeader(
            "strings block before the structure block",
        ));
    }
    let toks = tokens(blob);
    let nopped = match nop_out {
        None => None,
        Some(name) => {
            let start = toks
                .iter()
                .position(|(t, b)| {
                    *t == 1 && b[4..].split(|c| *c == 0).next() == Some(name.as_bytes())
                })
                .ok_or(DtError::Missing("the node to NOP out"))?;
            let mut depth = 0usize;
            let mut end = start;
            for (i, (t, _)) in toks.iter().enumerate().skip(start) {
                match t {
                    1 => depth += 1,
                    2 => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            Some(start..=end)
        }
    };
    let mut st = Vec::new();
    for (i, (_, bytes)) in toks.iter().enumerate() {
        if i > 0 {
            (0..per_token).for_each(|_| st.extend_from_slice(&NOP));
        }
        if nopped.as_ref().is_some_and(|r| r.contains(&i)) {
            bytes.chunks(4).for_each(|_| st.extend_from_slice(&NOP));
        } else {
            st.extend_from_slice(bytes);
        }
    }
    let mut out = blob[..off_struct].to_vec();
    out.extend_from_slice(&st);
    let new_strings = out.len();
    out.extend_from_slice(&blob[off_strings..off_strings + size_strings]);
    let total = out.len() as u32;
    out[4..8].copy_from_slice(&total.to_be_bytes());
    out[12..16].copy_from_slice(&(new_strings as u32).to_be_bytes());
    out[36..40].copy_from_slice(&(st.len() as u32).to_be_bytes());
    Ok(out)
}
