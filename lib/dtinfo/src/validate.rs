//! A full structural check of a flattened device tree (DTSpec v0.4 §5), so that the `fdt`
//! reader, which `unwrap`s on malformed input, only ever sees well-formed blobs.

use crate::DtError;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Deeper trees than this are refused (QEMU's is 4 deep).
const MAX_DEPTH: usize = 32;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// Checks a DTB and returns it trimmed to its `totalsize`.
///
/// Refused: short or mis-sized headers, blocks outside the blob, versions before 17 (the first
/// with `size_dt_struct`, DTSpec v0.4 §5.2; what dtc and libfdt write), a memory
/// reservation map without its terminator, a token stream that is unbalanced, truncated, has
/// properties after child nodes, `FDT_NOP` tokens (the `fdt` reader cannot skip them
/// everywhere: run [`strip_nops`] first), names that are not NUL-terminated UTF-8, property
/// name offsets outside the strings block, and `#address-cells`/`#size-cells` that are not
/// exactly one cell.
pub fn validate(blob: &[u8]) -> Result<&[u8], DtError> {
    let l = layout(blob)?;
    check_structure(l.structure(blob), l.strings(blob), Nops::Refuse)?;
    Ok(&blob[..l.total])
}

/// Removes every `FDT_NOP` token (DTSpec v0.4 §5.4.1: a parser ignores them; libfdt's
/// `fdt_nop_node`/`fdt_nop_property` leave them where a node or property was deleted, as QEMU
/// and some boot loaders do) by moving the rest of the structure block down over them, in
/// place. `size_dt_struct` shrinks; `totalsize` and every other block stay where they were
/// (the freed bytes, zeroed, become free space). The blob must be otherwise valid; nothing is
/// written unless it is. Returns how many NOP tokens were removed (0: the blob is untouched).
pub fn strip_nops(blob: &mut [u8]) -> Result<usize, DtError> {
    let l = layout(blob)?;
    let nops = check_structure(l.structure(blob), l.strings(blob), Nops::Allow)?;
    if nops == 0 {
        return Ok(0);
    }
    let st = &mut blob[l.off_struct..l.off_struct + l.size_struct];
    let (mut r, mut w) = (0usize, 0usize);
    // The structure was just checked, so every read below is in bounds and every token known.
    loop {
        let tok = be32(st, r).unwrap_or(FDT_END);
        let len = match tok {
            FDT_BEGIN_NODE => {
                let name = st[r + 4..].iter().position(|b| *b == 0).unwrap_or(0);
                4 + align4(name + 1).unwrap_or(0)
            }
            FDT_PROP => 12 + align4(be32(st, r + 4).unwrap_or(0) as usize).unwrap_or(0),
            _ => 4,
        };
        if tok != FDT_NOP {
            st.copy_within(r..r + len, w);
            w += len;
        }
        r += len;
        if tok == FDT_END {
            break;
        }
    }
    st[w..].fill(0);
    blob[36..40].copy_from_slice(&(w as u32).to_be_bytes());
    Ok(nops)
}

/// Where the blocks of a checked header lie.
struct Layout {
    total: usize,
    off_struct: usize,
    size_struct: usize,
    off_strings: usize,
    size_strings: usize,
}

impl Layout {
    fn structure<'b>(&self, blob: &'b [u8]) -> &'b [u8] {
        &blob[self.off_struct..self.off_struct + self.size_struct]
    }

    fn strings<'b>(&self, blob: &'b [u8]) -> &'b [u8] {
        &blob[self.off_strings..self.off_strings + self.size_strings]
    }
}

/// Checks the header and the memory reservation map.
fn layout(blob: &[u8]) -> Result<Layout, DtError> {
    let h = |i: usize| be32(blob, i * 4).ok_or(DtError::BadHeader("shorter than a header"));
    if h(0)? != MAGIC {
        return Err(DtError::BadHeader("bad magic"));
    }
    let total = h(1)? as usize;
    if total < HEADER_LEN || total > blob.len() {
        return Err(DtError::BadHeader("totalsize larger than the blob"));
    }
    let blob = &blob[..total];
    let (off_struct, off_strings, off_rsv) = (h(2)? as usize, h(3)? as usize, h(4)? as usize);
    let (version, size_strings, size_struct) = (h(5)?, h(8)? as usize, h(9)? as usize);
    if version < 17 {
        return Err(DtError::BadHeader("version older than 17"));
    }
    let within = |off: usize, len: usize| off.checked_add(len).is_some_and(|e| e <= total);
    if !within(off_struct, size_struct) || !within(off_strings, size_strings) {
        return Err(DtError::BadHeader("a block lies outside totalsize"));
    }
    if off_rsv % 8 != 0 || off_rsv < HEADER_LEN {
        return Err(DtError::BadHeader("misplaced memory reservation map"));
    }
    // The reservation map must end with a (0, 0) entry inside the blob.
    let mut off = off_rsv;
    loop {
        let e = blob
            .get(off..off + 16)
            .ok_or(DtError::BadHeader("memory reservation map not terminated"))?;
        if e.iter().all(|b| *b == 0) {
            break;
        }
        off += 16;
    }
    Ok(Layout {
        total,
        off_struct,
        size_struct,
        off_strings,
        size_strings,
    })
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Nops {
    Refuse,
    Allow,
}

/// Checks the token stream; returns how many NOP tokens it holds.
fn check_structure(st: &[u8], strings: &[u8], nops: Nops) -> Result<usize, DtError> {
    let mut nop_count = 0;
    let bad = |w: &'static str, off: usize| Err(DtError::BadStructure(w, off));
    let mut off = 0usize;
    let mut depth = 0usize;
    // Per open node: whether a child node has been seen (properties must come first).
    let mut seen_child = [false; MAX_DEPTH + 1];
    let mut root_done = false;
    loop {
        let Some(tok) = be32(st, off) else {
            return bad("truncated token stream", off);
        };
        let tok_off = off;
        off += 4;
        match tok {
            FDT_BEGIN_NODE => {
                if root_done {
                    return bad("a second root node", tok_off);
                }
                if depth > 0 {
                    seen_child[depth] = true;
                }
                let name_len = st
                    .get(off..)
                    .and_then(|r| r.iter().position(|b| *b == 0))
                    .ok_or(DtError::BadStructure("node name not NUL-terminated", off))?;
                if core::str::from_utf8(&st[off..off + name_len]).is_err() {
                    return bad("node name is not UTF-8", off);
                }
                if (depth == 0) != (name_len == 0) {
                    return bad("only the root node has an empty name", off);
                }
                off = align4(off + name_len + 1).ok_or(DtError::BadStructure("overflow", off))?;
                depth += 1;
                if depth > MAX_DEPTH {
                    return bad("nodes nested too deeply", tok_off);
                }
                seen_child[depth] = false;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return bad("END_NODE without a node", tok_off);
                }
                depth -= 1;
                if depth == 0 {
                    root_done = true;
                }
            }
            FDT_PROP => {
                if depth == 0 {
                    return bad("property outside a node", tok_off);
                }
                if seen_child[depth] {
                    return bad("property after a child node", tok_off);
                }
                let (Some(len), Some(nameoff)) = (be32(st, off), be32(st, off + 4)) else {
                    return bad("truncated property header", off);
                };
                let (len, nameoff) = (len as usize, nameoff as usize);
                off += 8;
                let end = off.checked_add(len).filter(|e| *e <= st.len()).ok_or(
                    DtError::BadStructure("property value runs past the block", off),
                )?;
                let name = strings
                    .get(nameoff..)
                    .and_then(|r| r.iter().position(|b| *b == 0).map(|n| &r[..n]))
                    .ok_or(DtError::BadStructure(
                        "property name offset outside strings",
                        off,
                    ))?;
                let name = core::str::from_utf8(name)
                    .map_err(|_| DtError::BadStructure("property name is not UTF-8", off))?;
                if matches!(name, "#address-cells" | "#size-cells") {
                    match be32(st, off) {
                        Some(_) if len == 4 => {}
                        _ => return bad("#address-cells/#size-cells must be one cell", off),
                    }
                }
                off = align4(end).ok_or(DtError::BadStructure("overflow", off))?;
            }
            FDT_NOP if nops == Nops::Allow => nop_count += 1,
            FDT_NOP => return bad("FDT_NOP token (strip_nops removes them)", tok_off),
            FDT_END => {
                if depth != 0 || !root_done {
                    return bad("END before the root node closed", tok_off);
                }
                return Ok(nop_count);
            }
            _ => return bad("unknown token", tok_off),
        }
    }
}
