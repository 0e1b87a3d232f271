//! Evidence the guest exports (`@event evidence name=... part=i of=n hex=...`): reassembled
//! into files (`run --evidence DIR`), and checked with the independent tools users check it
//! with — `tpm2_eventlog` replays the firmware's event log, and its SHA-256 PCRs must be the
//! ones the kernel read from the TPM (`tpm-pcr` events); `tpm2_checkquote` verifies the
//! quote (AK public key, signature, the run's nonce, PCRs 0-11 as read).

use crate::prereq;
use anyhow::{Context, Result, bail};
use catena_event::Event;
use std::collections::BTreeMap;
use std::path::Path;

use attest::wire::unhex;

/// Each named piece of evidence, reassembled from its parts (every part present once, in
/// range, hex).
pub fn collect(events: &[Event]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut parts: BTreeMap<String, (u64, BTreeMap<u64, Vec<u8>>)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "evidence") {
        let name = e
            .get("name")
            .context("evidence without a name")?
            .to_string();
        let part: u64 = e
            .get("part")
            .and_then(|p| p.parse().ok())
            .context("evidence part")?;
        let of: u64 = e
            .get("of")
            .and_then(|p| p.parse().ok())
            .context("evidence count")?;
        let data = e
            .get("hex")
            .and_then(unhex)
            .context("evidence is not hex")?;
        let entry = parts.entry(name.clone()).or_insert((of, BTreeMap::new()));
        if entry.0 != of || part >= of || entry.1.insert(part, data).is_some() {
            bail!("evidence `{name}`: part {part} of {of} does not fit the others");
        }
    }
    let mut out = BTreeMap::new();
    for (name, (of, p)) in parts {
        if p.len() as u64 != of {
            bail!("evidence `{name}`: {} of {of} parts", p.len());
        }
        out.insert(name, p.into_values().flatten().collect());
    }
    Ok(out)
}

/// Writes each piece as DIR/NAME.bin.
pub fn write(dir: &Path, evidence: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in evidence {
        let p = dir.join(format!("{name}.bin"));
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        println!("xtask: evidence {} ({} bytes)", p.display(), bytes.len());
    }
    Ok(())
}

/// The `pcrs: sha256:` section of `tpm2_eventlog`'s YAML: index -> value.
pub fn replayed_sha256(yaml: &str) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    let mut in_pcrs = false;
    let mut in_sha256 = false;
    for line in yaml.lines() {
        if line.starts_with("pcrs:") {
            in_pcrs = true;
            continue;
        }
        if !in_pcrs {
            continue;
        }
        let t = line.trim();
        if t.ends_with(':') && !t.contains(' ') {
            in_sha256 = t == "sha256:";
            continue;
        }
        if in_sha256
            && let Some((i, v)) = t.split_once(':')
            && let (Ok(i), Some(v)) = (i.trim().parse(), v.trim().strip_prefix("0x"))
        {
            out.insert(i, v.to_lowercase());
        }
    }
    out
}

/// The check: `tpm2_eventlog` parses the exported log, and its SHA-256 replay of every PCR
/// the kernel reported equals the kernel's reading. Problems found (empty: agreed).
pub fn check(dir: &Path, events: &[Event]) -> Result<Vec<String>> {
    let evidence = collect(events)?;
    let Some(log) = evidence.get("eventlog") else {
        return Ok(vec!["no event log was exported".into()]);
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join("eventlog.bin");
    std::fs::write(&path, log)?;
    let tool = prereq::program("tpm2_eventlog")?;
    let out = tool
        .command()
        .arg(&path)
        .output()
        .context("running tpm2_eventlog")?;
    if !out.status.success() {
        return Ok(vec![format!(
            "tpm2_eventlog refused the exported log: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )]);
    }
    let replayed = replayed_sha256(&String::from_utf8_lossy(&out.stdout));
    let mut problems = Vec::new();
    let read: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == "tpm-pcr" && e.get("bank") == Some("sha256"))
        .filter(|e| {
            e.get("index")
                .is_some_and(|i| i.parse::<u32>().is_ok_and(|i| i < 10))
        })
        .collect();
    if read.is_empty() {
        problems.push("the kernel reported no PCR 0-9".into());
    }
    for e in read {
        let i: u32 = e.get("index").and_then(|i| i.parse().ok()).unwrap_or(99);
        let v = e.get("value").unwrap_or("");
        match replayed.get(&i) {
            Some(r) if r == v => {}
            // tpm2_eventlog lists only the PCRs the log extends; the rest stay zero.
            None if v.bytes().all(|b| b == b'0') => {}
            other => problems.push(format!(
                "PCR {i}: the TPM has {v}, tpm2_eventlog replays {other:?}"
            )),
        }
    }
    problems.extend(check_quote(dir, events, &evidence)?);
    Ok(problems)
}

/// The PCR values the kernel reported (SHA-256 bank), by index.
fn reported_pcrs(events: &[Event]) -> BTreeMap<u32, Vec<u8>> {
    events
        .iter()
        .filter(|e| e.kind == "tpm-pcr" && e.get("bank") == Some("sha256"))
        .filter_map(|e| Some((e.get("index")?.parse().ok()?, unhex(e.get("value")?)?)))
        .collect()
}

/// SHA-256 PCR values in tpm2-tools' "serialized" PCR file (what `tpm2_quote -o` writes and
/// `tpm2_checkquote -f` reads; version 5.4's reading of bare values with `-l` fails even on
/// its own files): the C layout of TPML_PCR_SELECTION (count, 16 selections of hash, size,
/// 4 select bytes, padded to 8), then the number of TPML_DIGESTs, then each TPML_DIGEST
/// (count, 8 TPM2B_DIGESTs of a 2-byte size and a 64-byte buffer), all little-endian.
pub fn tpm2_tools_pcrs(selected: u32, values: &[[u8; 32]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..16 {
        let mut sel = [0u8; 8];
        if i == 0 {
            sel[..2].copy_from_slice(&0x000bu16.to_le_bytes());
            sel[2] = 3;
            sel[3..7].copy_from_slice(&selected.to_le_bytes());
        }
        out.extend_from_slice(&sel);
    }
    let groups: Vec<&[[u8; 32]]> = values.chunks(8).collect();
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for g in groups {
        out.extend_from_slice(&(g.len() as u32).to_le_bytes());
        for slot in 0..8 {
            let mut d = [0u8; 66];
            if let Some(v) = g.get(slot) {
                d[..2].copy_from_slice(&32u16.to_le_bytes());
                d[2..34].copy_from_slice(v);
            }
            out.extend_from_slice(&d);
        }
    }
    out
}

/// `tpm2_checkquote` on the exported quote: the AK's public key (`ak-pub`, TPM2B_PUBLIC), the
/// attestation and signature, the nonce the run gave, and PCRs 0-11 as the kernel read them.
fn check_quote(
    dir: &Path,
    events: &[Event],
    evidence: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<String>> {
    let Some(quoted) = events
        .iter()
        .find(|e| e.kind == "attest" && e.get("state") == Some("quoted"))
    else {
        return Ok(vec!["the kernel made no quote".into()]);
    };
    let nonce = quoted.get("nonce").unwrap_or("").to_string();
    let (Some(ak), Some(msg), Some(sig)) = (
        evidence.get("ak-pub"),
        evidence.get("quote-msg"),
        evidence.get("quote-sig"),
    ) else {
        return Ok(vec!["the quote's evidence is incomplete".into()]);
    };
    let pcrs = reported_pcrs(events);
    let mut values = Vec::new();
    for i in 0..12 {
        match pcrs
            .get(&i)
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        {
            Some(v) => values.push(v),
            None => return Ok(vec![format!("the kernel reported no SHA-256 PCR {i}")]),
        }
    }
    let values = tpm2_tools_pcrs(0x0fff, &values);
    for (name, bytes) in [
        ("ak.pub", ak.as_slice()),
        ("quote.msg", msg),
        ("quote.sig", sig),
        ("pcrs.bin", values.as_slice()),
        ("nonce.hex", nonce.as_bytes()),
    ] {
        std::fs::write(dir.join(name), bytes)?;
    }
    let tool = prereq::program("tpm2_checkquote")?;
    let out = tool
        .command()
        .current_dir(dir)
        .args([
            "-u",
            "ak.pub",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "pcrs.bin",
            "-g",
            "sha256",
            "-q",
            &nonce,
        ])
        .output()
        .context("running tpm2_checkquote")?;
    if out.status.success() {
        Ok(Vec::new())
    } else {
        Ok(vec![format!(
            "tpm2_checkquote refused the exported quote: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm2_eventlog_yaml_pcrs_are_read() {
        let y = "events:\n- EventNum: 1\npcrs:\n  sha1:\n    0  : 0xAA\n  sha256:\n    0  : 0x3C91\n    1  : 0x2965\n  sha384:\n    0  : 0xBB\n";
        let r = replayed_sha256(y);
        assert_eq!(r.len(), 2);
        assert_eq!(r[&0], "3c91");
        assert_eq!(r[&1], "2965");
    }

    #[test]
    fn the_tpm2_tools_pcr_file_has_its_c_layout() {
        let v: Vec<[u8; 32]> = (0..12u8).map(|i| [i; 32]).collect();
        let f = tpm2_tools_pcrs(0x0fff, &v);
        // 132 (selection) + 4 + 2 x (4 + 8 x 66), as tpm2_quote -o writes 12 PCRs.
        assert_eq!(f.len(), 1200);
        assert_eq!(&f[..10], &[1, 0, 0, 0, 0x0b, 0, 3, 0xff, 0x0f, 0]);
        assert_eq!(&f[132..144], &[2, 0, 0, 0, 8, 0, 0, 0, 32, 0, 0, 0]);
        assert_eq!(
            f[140 + 7 * 66 + 2],
            7,
            "the eighth digest of the first group"
        );
        assert_eq!(&f[136 + 532..136 + 532 + 4], &[4, 0, 0, 0]);
    }

    #[test]
    fn parts_reassemble_in_order_and_gaps_are_refused() {
        let ev = |l: &str| catena_event::parse_line(l).unwrap().unwrap();
        let e = [
            ev("@event evidence name=x part=1 of=2 hex=0304"),
            ev("@event evidence name=x part=0 of=2 hex=0102"),
        ];
        assert_eq!(collect(&e).unwrap()["x"], [1, 2, 3, 4]);
        assert!(collect(&e[..1]).is_err());
        assert!(collect(&[ev("@event evidence name=x part=0 of=1 hex=0g")]).is_err());
    }
}
