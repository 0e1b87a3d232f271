extern crate std;

use super::*;

const BANKS: [u16; 4] = [alg::SHA1, alg::SHA256, alg::SHA384, alg::SHA512];

fn sample() -> Writer {
    let mut w = Writer::new(&BANKS).unwrap();
    w.append(0, ev::S_CRTM_VERSION, b"catena 0.1", b"catena 0.1\0");
    w.append(
        0,
        ev::EFI_PLATFORM_FIRMWARE_BLOB2,
        b"firmware image",
        b"\x08firmware",
    );
    w.append(1, ev::TABLE_OF_DEVICES, b"dtb", b"dts\0");
    for pcr in 0..8 {
        w.append(pcr, ev::SEPARATOR, &[0; 4], &[0; 4]);
    }
    w
}

#[test]
fn a_written_log_parses_back_and_replays() {
    let w = sample();
    let log = parse(w.bytes()).unwrap();
    assert_eq!(log.banks.iter().map(|(a, _)| *a).collect::<Vec<_>>(), BANKS);
    assert_eq!(log.events.len(), 11);
    assert_eq!(log.events[2].data, b"dts\0");
    // PCR 1 = H(0 || H("dtb")) then the separator: checked by hand in SHA-256.
    let sep = Sha256::digest([0u8; 4]);
    let after_dtb = extend(alg::SHA256, &[0; 32], &Sha256::digest(b"dtb")).unwrap();
    let want = extend(alg::SHA256, &after_dtb, &sep).unwrap();
    assert_eq!(log.replay(alg::SHA256).unwrap()[1], want);
    assert_eq!(
        log.replay(alg::SHA1).unwrap()[9],
        [0; 20],
        "untouched PCRs stay zero"
    );
    assert!(log.replay(0x12).is_none());
    // The header is exactly 29 + 4n bytes of Spec ID event (what U-Boot demands).
    assert_eq!(
        u32::from_le_bytes(w.bytes()[28..32].try_into().unwrap()),
        29 + 4 * 4
    );
}

#[test]
fn every_truncation_and_many_corruptions_are_refused_not_panics() {
    let w = sample();
    let b = w.bytes();
    for n in 0..b.len() {
        // A log cut anywhere is either refused or (at an event boundary) shorter.
        if let Ok(l) = parse(&b[..n]) {
            assert!(l.events.len() < 11);
        }
    }
    for i in 0..b.len() {
        let mut c = b.to_vec();
        c[i] ^= 0xff;
        let _ = parse(&c);
    }
    let mut bad = b.to_vec();
    bad[0] = 1;
    assert_eq!(
        parse(&bad).unwrap_err(),
        Malformed("the first event is not EV_NO_ACTION at PCR 0")
    );
    assert!(Writer::new(&[]).is_none());
    // Zero padding after the last event (a log in a fixed region) ends it.
    let mut padded = b.to_vec();
    padded.extend_from_slice(&[0; 100]);
    assert_eq!(parse(&padded).unwrap().events.len(), 11);
    assert!(Writer::new(&[0x12]).is_none());
}

/// Writes the sample log for a manual cross-check with tpm2_eventlog.
#[test]
#[ignore]
fn write_sample_for_tpm2_eventlog() {
    let w = sample();
    std::fs::write("/tmp/sample.tcglog", w.bytes()).unwrap();
    let log = parse(w.bytes()).unwrap();
    let p = log.replay(alg::SHA256).unwrap();
    std::println!(
        "pcr0 {}",
        p[0].iter()
            .map(|b| std::format!("{b:02x}"))
            .collect::<std::string::String>()
    );
    std::println!(
        "pcr1 {}",
        p[1].iter()
            .map(|b| std::format!("{b:02x}"))
            .collect::<std::string::String>()
    );
}

#[test]
fn an_ima_list_round_trips_and_replays() {
    use crate::ima::{Entry, boot_aggregate, encode, parse, replay};
    let pcrs = std::vec![std::vec![1u8; 32]; 10];
    let agg = boot_aggregate(&pcrs);
    assert_eq!(agg, Sha256::digest(std::vec![1u8; 320]).to_vec());
    let list = [
        Entry::ng_digest("boot_aggregate", &agg),
        Entry::buf("catena-chain", b"hyp state=finalised cpus=2"),
        Entry::ng("/bin/sh", b"program bytes"),
    ];
    let bin = encode(&list);
    assert_eq!(parse(&bin).unwrap(), list);
    let mut p = [0u8; 32].to_vec();
    for e in &list {
        p = extend(alg::SHA256, &p, &Sha256::digest(&e.data)).unwrap();
    }
    assert_eq!(replay(&list, alg::SHA256).unwrap(), p);
    // ima-ng data: d-ng "sha256:\0" + digest, n-ng name + NUL.
    let ng = &list[2].data;
    assert_eq!(&ng[..4], &40u32.to_le_bytes());
    assert_eq!(&ng[4..12], b"sha256:\0");
    // A flipped data byte breaks the template hash; truncations are refused.
    let mut bad = bin.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(parse(&bad).is_err());
    for n in 1..bin.len() {
        let _ = parse(&bin[..n]);
    }
}

#[test]
fn template_fields_come_back_as_written() {
    let e = ima::Entry::buf("catena-chain", b"hyp state=installed");
    let f = e.fields().unwrap();
    assert_eq!(f.len(), 3);
    assert!(f[0].starts_with(b"sha256:\0"));
    assert_eq!(f[1], b"catena-chain\0");
    assert_eq!(f[2], b"hyp state=installed");
    let ng = ima::Entry::ng("/bin/init", b"ELF");
    assert_eq!(ng.fields().unwrap()[1], b"/bin/init\0");
    // A length past the end is refused; a short tail ends the list.
    let mut bad = e.clone();
    bad.data.truncate(bad.data.len() - 1);
    assert!(bad.fields().is_none());
    let mut short = e.clone();
    short.data.extend_from_slice(&[1, 2, 3]);
    assert_eq!(short.fields().unwrap().len(), 3);
}

#[test]
fn a_payload_hashed_in_pieces_has_the_digests_of_the_whole() {
    let payload: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 251) as u8).collect();
    for piece in [1, 63, 64, 65, 4096, 65536, payload.len()] {
        let mut h = Hasher::new(&BANKS).unwrap();
        for c in payload.chunks(piece) {
            h.update(c);
        }
        let got = h.finish();
        let want: Vec<(u16, Vec<u8>)> = BANKS
            .iter()
            .map(|a| (*a, digest(*a, &payload).unwrap()))
            .collect();
        assert_eq!(got, want, "pieces of {piece}");
    }
    // SHA-256 of "abc" (FIPS 180-2 appendix B.1), fed a byte at a time.
    let mut h = Hasher::new(&[alg::SHA256]).unwrap();
    for b in b"abc" {
        h.update(&[*b]);
    }
    assert_eq!(
        h.finish()[0].1,
        [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad
        ]
    );
    assert!(Hasher::new(&[alg::SHA256, 0x0012]).is_none());
}
