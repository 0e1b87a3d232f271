//! `cargo xtask bench NAME --profile`: where a benchmark window's instructions went, by
//! function. The counting plugin (`tools/qemu-plugin`, `profile=PATH`) writes each translation
//! block that ran inside the window with its size and run count; each block is charged to the
//! function of the image whose symbols (`llvm-nm`, shifted by where the image ran) contain its
//! first address.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::Command;

/// A function of one image, at the address it ran at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sym {
    /// First address.
    pub start: u64,
    /// Size in bytes (0: unknown, then it covers 4 bytes).
    pub size: u64,
    /// `image:function`.
    pub name: String,
}

/// One block of the plugin's output: its address, its instructions, its runs.
pub type Row = (u64, u64, u64);

/// Parses the plugin's profile ("hexaddr insns runs" per line); malformed lines are skipped.
pub fn rows(text: &str) -> Vec<Row> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                u64::from_str_radix(w.next()?, 16).ok()?,
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// A name as `llvm-nm --demangle` leaves Rust's legacy mangling, made readable: the escapes
/// (`$LT$`, `$GT$`, `$u20$`, `$C$`, `..`) undone, the `::h0123456789abcdef` hash and a
/// `(.llvm.N)` suffix cut.
fn short(name: &str) -> String {
    let name = name.split(" (.llvm.").next().unwrap_or(name);
    let name = match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    };
    name.replace("$LT$", "<")
        .replace("$GT$", ">")
        .replace("$u20$", " ")
        .replace("$C$", ",")
        .replace("$RF$", "&")
        .replace("..", "::")
}

/// The text symbols of `elf` (via `llvm-nm`), moved to `base`, named `label:function`.
pub fn symbols(nm: &Path, elf: &Path, base: u64, label: &str) -> Result<Vec<Sym>> {
    let out = Command::new(nm)
        .args(["-n", "-S", "--demangle"])
        .arg(elf)
        .output()
        .with_context(|| format!("running {}", nm.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.splitn(4, ' ').collect();
            match p.as_slice() {
                [a, s, t, n] if matches!(*t, "t" | "T" | "w" | "W") => Some(Sym {
                    start: u64::from_str_radix(a, 16).ok()?.wrapping_add(base),
                    size: u64::from_str_radix(s, 16).ok()?,
                    name: format!("{label}:{}", short(n)),
                }),
                _ => None,
            }
        })
        .collect())
}

/// Instructions per function, most first; a block no symbol covers is charged to `?:PAGE`.
pub fn attribute(rows: &[Row], syms: &[Sym]) -> Vec<(String, u64)> {
    let mut syms = syms.to_vec();
    syms.sort_by_key(|s| s.start);
    let mut total: std::collections::BTreeMap<String, u64> = Default::default();
    for &(addr, insns, runs) in rows {
        let i = syms.partition_point(|s| s.start <= addr);
        let name = match i.checked_sub(1).map(|i| &syms[i]) {
            Some(s) if addr < s.start + s.size.max(4) => s.name.clone(),
            _ => format!("?:{:#x}", addr & !0xfff),
        };
        *total.entry(name).or_default() += insns * runs;
    }
    let mut v: Vec<(String, u64)> = total.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_charged_to_the_function_that_holds_them() {
        let syms = vec![
            Sym {
                start: 0x4020_1000,
                size: 0x100,
                name: "ker:memcpy".into(),
            },
            Sym {
                start: 0x4020_0000,
                size: 0x40,
                name: "ker:entry".into(),
            },
        ];
        let text = "40201000 10 3\n40201080 4 5\n40200010 2 1\nbogus line\n40300000 7 1\n";
        let r = rows(text);
        assert_eq!(r.len(), 4);
        assert_eq!(
            attribute(&r, &syms),
            [
                ("ker:memcpy".to_string(), 50),
                ("?:0x40300000".to_string(), 7),
                ("ker:entry".to_string(), 2)
            ]
        );
    }

    #[test]
    fn hashes_are_cut_from_rust_names() {
        assert_eq!(
            short("tpm_core::Tpm$LT$T$GT$::run_once::h0123456789abcdef"),
            "tpm_core::Tpm<T>::run_once"
        );
        assert_eq!(
            short(
                "_$LT$catena_drivers..tpm..Pages$u20$as$u20$tpm_service..Crb$GT$::read::h648a47bfa6ef826c"
            ),
            "_<catena_drivers::tpm::Pages as tpm_service::Crb>::read"
        );
        assert_eq!(
            short("a::validate_envelope::hcf1b22ea642abe3e (.llvm.17180780646847152821)"),
            "a::validate_envelope"
        );
        assert_eq!(short("memcpy"), "memcpy");
        assert_eq!(short("a::hello"), "a::hello");
    }
}
