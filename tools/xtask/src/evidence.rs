//! Evidence the guest exports (`@event evidence name=... part=i of=n hex=...`): reassembled
//! into files (`run --evidence DIR`), and checked with the independent tools users check it
//! with — `tpm2_eventlog` replays the firmware's event log, and its SHA-256 PCRs must be the
//! ones the kernel read from the TPM (`tpm-pcr` events).

use crate::prereq;
use anyhow::{Context, Result, bail};
use catena_event::Event;
use std::collections::BTreeMap;
use std::path::Path;

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

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
    Ok(problems)
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
