//! The service through MM messages built as U-Boot builds them, and every refusal.
extern crate std;

use crate::mm::{self, COMM_HEADER, SMM_VARIABLE_GUID, VAR_HEADER, func, rc};
use crate::{GLOBAL_VARIABLE, Limits, Vars, attr, guid, status};
use std::vec::Vec;
use varstore::Store;
use varstore::sim::SimFlash;

const VENDOR: [u8; 16] = guid("11111111-2222-3333-4444-555555555555");
const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
const NV_BS: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS;
const BUF: usize = 4096;

fn n(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn service_on(f: SimFlash) -> Vars<SimFlash> {
    let (store, _) = Store::open(f).unwrap();
    Vars::new(
        store,
        Limits {
            max_var_size: 1024,
            volatile_bytes: 512,
        },
    )
}

fn service() -> Vars<SimFlash> {
    service_on(SimFlash::new(16384, 2048))
}

/// An MM message: the communicate header, the variable header, `payload`.
fn msg(function: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&SMM_VARIABLE_GUID);
    m.extend_from_slice(&((VAR_HEADER + payload.len()) as u64).to_le_bytes());
    m.extend_from_slice(&function.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(payload);
    m
}

/// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE with `data` after the name, or `room` bytes of
/// space for a GetVariable answer.
fn access(g: &[u8; 16], name: &[u8], attrs: u32, data_size: u64, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(g);
    p.extend_from_slice(&data_size.to_le_bytes());
    p.extend_from_slice(&(name.len() as u64).to_le_bytes());
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(name);
    p.extend_from_slice(data);
    p
}

/// Sends a message; the EFI status and the reply's payload.
fn call(v: &mut Vars<SimFlash>, m: &[u8]) -> (u64, Vec<u8>) {
    let (out, o) = mm::communicate(v, m, BUF).expect("an MM-level error");
    assert_eq!(
        out.len(),
        m.len(),
        "the reply is the message, edited in place"
    );
    let st = u64::from_le_bytes(out[COMM_HEADER + 8..COMM_HEADER + 16].try_into().unwrap());
    assert_eq!(st, o.status);
    (st, out[COMM_HEADER + VAR_HEADER..].to_vec())
}

fn set(v: &mut Vars<SimFlash>, g: &[u8; 16], name: &str, attrs: u32, data: &[u8]) -> u64 {
    call(
        v,
        &msg(
            func::SET_VARIABLE,
            &access(g, &n(name), attrs, data.len() as u64, data),
        ),
    )
    .0
}

/// GetVariable with `room` bytes for the data: (status, attributes, DataSize, data).
fn get(v: &mut Vars<SimFlash>, g: &[u8; 16], name: &str, room: usize) -> (u64, u32, u64, Vec<u8>) {
    let nm = n(name);
    let (st, p) = call(
        v,
        &msg(
            func::GET_VARIABLE,
            &access(g, &nm, 0, room as u64, &std::vec![0; room]),
        ),
    );
    let size = u64::from_le_bytes(p[16..24].try_into().unwrap());
    let attrs = u32::from_le_bytes(p[32..36].try_into().unwrap());
    let d = 36 + nm.len();
    let data = if st == status::SUCCESS {
        p[d..d + size as usize].to_vec()
    } else {
        Vec::new()
    };
    (st, attrs, size, data)
}

/// GetNextVariableName from (`g`, `name`) with a name buffer of `cap` bytes.
fn next(v: &mut Vars<SimFlash>, g: &[u8; 16], name: &[u8], cap: usize) -> (u64, [u8; 16], Vec<u8>) {
    let mut p = Vec::new();
    p.extend_from_slice(g);
    p.extend_from_slice(&(cap as u64).to_le_bytes());
    let mut field = std::vec![0u8; cap];
    field[..name.len()].copy_from_slice(name);
    p.extend_from_slice(&field);
    let (st, out) = call(v, &msg(func::GET_NEXT_VARIABLE_NAME, &p));
    let size = u64::from_le_bytes(out[16..24].try_into().unwrap()) as usize;
    let g: [u8; 16] = out[0..16].try_into().unwrap();
    let name = if st == status::SUCCESS {
        out[24..24 + size].to_vec()
    } else {
        Vec::new()
    };
    (st, g, name)
}

#[test]
fn set_then_get_and_buffer_too_small_says_how_much() {
    let mut v = service();
    assert_eq!(
        set(&mut v, &VENDOR, "Boot0000", NV_BS_RT, b"hello"),
        status::SUCCESS
    );
    assert_eq!(
        get(&mut v, &VENDOR, "Boot0000", 16),
        (status::SUCCESS, NV_BS_RT, 5, b"hello".to_vec())
    );
    let (st, attrs, size, _) = get(&mut v, &VENDOR, "Boot0000", 3);
    assert_eq!((st, attrs, size), (status::BUFFER_TOO_SMALL, NV_BS_RT, 5));
    assert_eq!(get(&mut v, &VENDOR, "Nope", 8).0, status::NOT_FOUND);
    assert_eq!(
        get(&mut v, &GLOBAL_VARIABLE, "Boot0000", 8).0,
        status::NOT_FOUND
    );
}

#[test]
fn non_volatile_variables_survive_a_reboot_and_volatile_ones_do_not() {
    let mut v = service();
    set(&mut v, &VENDOR, "Kept", NV_BS_RT, b"nv");
    set(&mut v, &VENDOR, "Gone", attr::BOOTSERVICE_ACCESS, b"ram");
    assert_eq!(get(&mut v, &VENDOR, "Gone", 8).3, b"ram");
    let Vars { store, .. } = v;
    let mut v = service_on(store.into_flash().reboot());
    assert_eq!(get(&mut v, &VENDOR, "Kept", 8).3, b"nv");
    assert_eq!(get(&mut v, &VENDOR, "Gone", 8).0, status::NOT_FOUND);
}

#[test]
fn next_name_walks_every_variable_once_then_not_found() {
    let mut v = service();
    for (g, name) in [
        (&VENDOR, "B"),
        (&GLOBAL_VARIABLE, "A"),
        (&VENDOR, "A"),
        (&VENDOR, "LongerName"),
    ] {
        assert_eq!(set(&mut v, g, name, NV_BS_RT, b"x"), status::SUCCESS);
    }
    let mut seen = Vec::new();
    let (mut g, mut name) = ([0u8; 16], n(""));
    loop {
        let (st, ng, nn) = next(&mut v, &g, &name, 64);
        if st == status::NOT_FOUND {
            break;
        }
        assert_eq!(st, status::SUCCESS);
        seen.push((ng, nn.clone()));
        (g, name) = (ng, nn);
    }
    // The four set here, and the firmware's SetupMode, SecureBoot and SignatureSupport.
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "no repeats");
    // A name buffer too small: the size needed.
    let (st, _, _) = next(&mut v, &[0; 16], &n(""), 2);
    assert_eq!(st, status::BUFFER_TOO_SMALL);
    // A current name that is no variable.
    assert_eq!(
        next(&mut v, &VENDOR, &n("Zzz"), 64).0,
        status::INVALID_PARAMETER
    );
    // No NUL inside the name buffer.
    assert_eq!(next(&mut v, &VENDOR, b"Z\0", 2).0, status::ACCESS_DENIED);
}

#[test]
fn delete_and_append() {
    let mut v = service();
    set(&mut v, &VENDOR, "V", NV_BS_RT, b"abc");
    assert_eq!(
        set(&mut v, &VENDOR, "V", NV_BS_RT | attr::APPEND_WRITE, b"def"),
        status::SUCCESS
    );
    assert_eq!(get(&mut v, &VENDOR, "V", 16).3, b"abcdef");
    // Appending nothing changes nothing.
    assert_eq!(
        set(&mut v, &VENDOR, "V", NV_BS_RT | attr::APPEND_WRITE, b""),
        status::SUCCESS
    );
    assert_eq!(get(&mut v, &VENDOR, "V", 16).3, b"abcdef");
    // Empty data deletes; so do attributes 0.
    assert_eq!(set(&mut v, &VENDOR, "V", NV_BS_RT, b""), status::SUCCESS);
    assert_eq!(get(&mut v, &VENDOR, "V", 16).0, status::NOT_FOUND);
    assert_eq!(set(&mut v, &VENDOR, "V", NV_BS_RT, b""), status::NOT_FOUND);
    set(&mut v, &VENDOR, "W", NV_BS_RT, b"w");
    assert_eq!(set(&mut v, &VENDOR, "W", 0, b"ignored"), status::SUCCESS);
    assert_eq!(get(&mut v, &VENDOR, "W", 16).0, status::NOT_FOUND);
    // Appending to nothing creates.
    assert_eq!(
        set(&mut v, &VENDOR, "X", NV_BS_RT | attr::APPEND_WRITE, b"x"),
        status::SUCCESS
    );
    assert_eq!(
        get(&mut v, &VENDOR, "X", 16),
        (status::SUCCESS, NV_BS_RT, 1, b"x".to_vec())
    );
}

#[test]
fn attribute_rules() {
    let mut v = service();
    let cases = [
        (
            attr::RUNTIME_ACCESS | attr::NON_VOLATILE,
            status::INVALID_PARAMETER,
        ),
        (attr::NON_VOLATILE, status::INVALID_PARAMETER),
        (
            NV_BS | attr::AUTHENTICATED_WRITE_ACCESS,
            status::UNSUPPORTED,
        ),
        (
            NV_BS | attr::ENHANCED_AUTHENTICATED_ACCESS,
            status::UNSUPPORTED,
        ),
        (
            NV_BS | attr::HARDWARE_ERROR_RECORD,
            status::INVALID_PARAMETER,
        ),
        (NV_BS | 0x100, status::INVALID_PARAMETER),
        (
            NV_BS_RT | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
            status::SECURITY_VIOLATION,
        ),
    ];
    for (a, want) in cases {
        assert_eq!(
            set(&mut v, &VENDOR, "V", a, b"x"),
            want,
            "attributes {a:#x}"
        );
    }
    assert_eq!(set(&mut v, &VENDOR, "V", NV_BS, b"x"), status::SUCCESS);
    // Other attributes for an existing variable.
    assert_eq!(
        set(&mut v, &VENDOR, "V", NV_BS_RT, b"y"),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut v, &VENDOR, "V", attr::BOOTSERVICE_ACCESS, b"y"),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut v, &VENDOR, "V", NV_BS_RT, b""),
        status::INVALID_PARAMETER
    );
    assert_eq!(get(&mut v, &VENDOR, "V", 8).3, b"x");
    // An empty name.
    assert_eq!(
        set(&mut v, &VENDOR, "", NV_BS, b"x"),
        status::INVALID_PARAMETER
    );
    // Too large: name + data above the limit.
    assert_eq!(
        set(&mut v, &VENDOR, "Big", NV_BS, &[0; 1020]),
        status::INVALID_PARAMETER
    );
}

#[test]
fn boot_services_variables_vanish_at_exit_boot_services() {
    let mut v = service();
    set(&mut v, &VENDOR, "Boot", NV_BS, b"bs");
    set(&mut v, &VENDOR, "Run", NV_BS_RT, b"rt");
    assert_eq!(
        call(&mut v, &msg(func::EXIT_BOOT_SERVICE, &[])).0,
        status::SUCCESS
    );
    assert_eq!(get(&mut v, &VENDOR, "Boot", 8).0, status::NOT_FOUND);
    assert_eq!(get(&mut v, &VENDOR, "Run", 8).3, b"rt");
    let (st, g, name) = next(&mut v, &[0; 16], &n(""), 64);
    assert_eq!((st, g, name), (status::SUCCESS, VENDOR, n("Run")));
    // Then only the firmware's runtime globals.
    let (st, g, _) = next(&mut v, &VENDOR, &n("Run"), 64);
    assert_eq!((st, g), (status::SUCCESS, GLOBAL_VARIABLE));
    // No new boot-services-only variables; the hidden one can be neither deleted nor
    // replaced by a runtime one.
    assert_eq!(
        set(&mut v, &VENDOR, "New", NV_BS, b"x"),
        status::INVALID_PARAMETER
    );
    assert_eq!(set(&mut v, &VENDOR, "Boot", 0, b""), status::NOT_FOUND);
    assert_eq!(
        set(&mut v, &VENDOR, "Boot", NV_BS_RT, b"x"),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut v, &VENDOR, "Run", NV_BS_RT, b"rt2"),
        status::SUCCESS
    );
    // Query for boot-services-only storage is refused at runtime.
    let mut q = std::vec![0u8; 28];
    q[24..28].copy_from_slice(&NV_BS.to_le_bytes());
    assert_eq!(
        call(&mut v, &msg(func::QUERY_VARIABLE_INFO, &q)).0,
        status::INVALID_PARAMETER
    );
}

/// SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY: `prop` = (revision, property,
/// attributes, min, max).
fn property_msg(
    function: u64,
    g: &[u8; 16],
    name: &[u8],
    prop: (u16, u16, u32, u64, u64),
) -> Vec<u8> {
    let (rev, property, attrs, min, max) = prop;
    let mut p = Vec::new();
    p.extend_from_slice(g);
    p.extend_from_slice(&(name.len() as u64).to_le_bytes());
    p.extend_from_slice(&rev.to_le_bytes());
    p.extend_from_slice(&property.to_le_bytes());
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(&min.to_le_bytes());
    p.extend_from_slice(&max.to_le_bytes());
    p.extend_from_slice(name);
    msg(function, &p)
}

#[test]
fn read_only_and_size_properties() {
    let mut v = service();
    set(&mut v, &VENDOR, "Ro", NV_BS_RT, b"fixed");
    let ro = property_msg(
        func::VAR_CHECK_VARIABLE_PROPERTY_SET,
        &VENDOR,
        &n("Ro"),
        (1, 1, 0, 0, u64::MAX),
    );
    assert_eq!(call(&mut v, &ro).0, status::SUCCESS);
    assert_eq!(
        set(&mut v, &VENDOR, "Ro", NV_BS_RT, b"changed"),
        status::WRITE_PROTECTED
    );
    assert_eq!(set(&mut v, &VENDOR, "Ro", 0, b""), status::WRITE_PROTECTED);
    assert_eq!(get(&mut v, &VENDOR, "Ro", 8).3, b"fixed");
    let (st, p) = call(
        &mut v,
        &property_msg(
            func::VAR_CHECK_VARIABLE_PROPERTY_GET,
            &VENDOR,
            &n("Ro"),
            (0, 0, 0, 0, 0),
        ),
    );
    assert_eq!(st, status::SUCCESS);
    assert_eq!(&p[24..28], &[1, 0, 1, 0], "revision 1, read-only");
    let none = property_msg(
        func::VAR_CHECK_VARIABLE_PROPERTY_GET,
        &VENDOR,
        &n("Other"),
        (0, 0, 0, 0, 0),
    );
    assert_eq!(call(&mut v, &none).0, status::NOT_FOUND);
    // Size and attribute limits.
    let sized = property_msg(
        func::VAR_CHECK_VARIABLE_PROPERTY_SET,
        &VENDOR,
        &n("S"),
        (1, 0, NV_BS_RT, 2, 4),
    );
    assert_eq!(call(&mut v, &sized).0, status::SUCCESS);
    assert_eq!(
        set(&mut v, &VENDOR, "S", NV_BS_RT, b"x"),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut v, &VENDOR, "S", NV_BS_RT, b"xxxxx"),
        status::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut v, &VENDOR, "S", NV_BS, b"xxx"),
        status::INVALID_PARAMETER
    );
    assert_eq!(set(&mut v, &VENDOR, "S", NV_BS_RT, b"xxx"), status::SUCCESS);
    // A wrong revision; min above max.
    let bad = property_msg(
        func::VAR_CHECK_VARIABLE_PROPERTY_SET,
        &VENDOR,
        &n("T"),
        (2, 1, 0, 0, 1),
    );
    assert_eq!(call(&mut v, &bad).0, status::INVALID_PARAMETER);
    let bad = property_msg(
        func::VAR_CHECK_VARIABLE_PROPERTY_SET,
        &VENDOR,
        &n("T"),
        (1, 0, 0, 5, 1),
    );
    assert_eq!(call(&mut v, &bad).0, status::INVALID_PARAMETER);
    // The lock protocol, then ReadyToBoot closes both.
    let mut lock = Vec::new();
    lock.extend_from_slice(&VENDOR);
    lock.extend_from_slice(&(n("L").len() as u64).to_le_bytes());
    lock.extend_from_slice(&n("L"));
    assert_eq!(
        call(&mut v, &msg(func::LOCK_VARIABLE, &lock)).0,
        status::SUCCESS
    );
    assert_eq!(
        set(&mut v, &VENDOR, "L", NV_BS_RT, b"x"),
        status::WRITE_PROTECTED
    );
    assert_eq!(
        call(&mut v, &msg(func::READY_TO_BOOT, &[])).0,
        status::SUCCESS
    );
    assert_eq!(call(&mut v, &ro).0, status::ACCESS_DENIED);
    assert_eq!(
        call(&mut v, &msg(func::LOCK_VARIABLE, &lock)).0,
        status::ACCESS_DENIED
    );
}

#[test]
fn query_info_and_payload_size() {
    let mut v = service();
    let mut q = std::vec![0u8; 28];
    q[24..28].copy_from_slice(&NV_BS_RT.to_le_bytes());
    let (st, p) = call(&mut v, &msg(func::QUERY_VARIABLE_INFO, &q));
    assert_eq!(st, status::SUCCESS);
    let field = |p: &[u8], i: usize| u64::from_le_bytes(p[i * 8..i * 8 + 8].try_into().unwrap());
    let (max, free) = (field(&p, 0), field(&p, 1));
    assert_eq!(max, free, "empty");
    assert_eq!(field(&p, 2), 1024);
    set(&mut v, &VENDOR, "V", NV_BS_RT, &[0; 100]);
    let (_, p) = call(&mut v, &msg(func::QUERY_VARIABLE_INFO, &q));
    assert!(field(&p, 1) < free && free - field(&p, 1) >= 100);
    // Volatile storage is counted apart.
    q[24..28].copy_from_slice(&attr::BOOTSERVICE_ACCESS.to_le_bytes());
    let (_, p) = call(&mut v, &msg(func::QUERY_VARIABLE_INFO, &q));
    // SetupMode, SecureBoot and SignatureSupport use 126 bytes.
    assert_eq!((field(&p, 0), field(&p, 1)), (512, 512 - 126));
    for bad in [0, attr::RUNTIME_ACCESS, attr::NON_VOLATILE] {
        q[24..28].copy_from_slice(&bad.to_le_bytes());
        assert_eq!(
            call(&mut v, &msg(func::QUERY_VARIABLE_INFO, &q)).0,
            status::INVALID_PARAMETER
        );
    }
    let (st, p) = call(&mut v, &msg(func::GET_PAYLOAD_SIZE, &[0; 8]));
    assert_eq!(st, status::SUCCESS);
    assert_eq!(
        field(&p, 0),
        1024 + 48,
        "the largest variable, not the whole buffer"
    );
    let (out, _) = mm::communicate(&mut v, &msg(func::GET_PAYLOAD_SIZE, &[0; 8]), 256).unwrap();
    assert_eq!(
        field(&out[40..], 0),
        256 - 40,
        "the buffer, when it is smaller"
    );
}

#[test]
fn limits_give_out_of_resources() {
    let mut v = service();
    assert_eq!(
        set(&mut v, &VENDOR, "R1", attr::BOOTSERVICE_ACCESS, &[0; 300]),
        status::SUCCESS
    );
    assert_eq!(
        set(&mut v, &VENDOR, "R2", attr::BOOTSERVICE_ACCESS, &[0; 100]),
        status::OUT_OF_RESOURCES
    );
    // Replacing counts the old value out (the firmware's SetupMode, SecureBoot and
    // SignatureSupport use 126 bytes).
    assert_eq!(
        set(&mut v, &VENDOR, "R1", attr::BOOTSERVICE_ACCESS, &[1; 380]),
        status::SUCCESS
    );
    // Non-volatile: the store's bank (8 KiB here) fills.
    let mut full = false;
    for i in 0..20 {
        match set(&mut v, &VENDOR, &std::format!("N{i}"), NV_BS, &[0; 1000]) {
            status::SUCCESS => {}
            status::OUT_OF_RESOURCES => {
                full = true;
                break;
            }
            s => panic!("{}", status::name(s)),
        }
    }
    assert!(full);
}

#[test]
fn messages_that_are_not_messages() {
    let mut v = service();
    assert_eq!(
        mm::communicate(&mut v, &[0; 23], BUF).err(),
        Some(rc::INVALID_PARAMETER)
    );
    // MessageLength beyond the buffer, or overflowing.
    let mut m = msg(func::GET_PAYLOAD_SIZE, &[0; 8]);
    let too_long = (m.len() as u64).to_le_bytes();
    m[16..24].copy_from_slice(&too_long);
    assert_eq!(
        mm::communicate(&mut v, &m, BUF).err(),
        Some(rc::INVALID_PARAMETER)
    );
    m[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        mm::communicate(&mut v, &m, BUF).err(),
        Some(rc::INVALID_PARAMETER)
    );
    // Shorter than the variable header.
    let mut m = msg(func::GET_PAYLOAD_SIZE, &[]);
    m[16..24].copy_from_slice(&8u64.to_le_bytes());
    assert_eq!(
        mm::communicate(&mut v, &m, BUF).err(),
        Some(rc::INVALID_PARAMETER)
    );
    // Another service's GUID.
    let mut m = msg(func::GET_PAYLOAD_SIZE, &[0; 8]);
    m[0] ^= 1;
    assert_eq!(
        mm::communicate(&mut v, &m, BUF).err(),
        Some(rc::NOT_SUPPORTED)
    );
    // Unknown and unoffered functions.
    for f in [
        0,
        func::GET_STATISTICS,
        func::INIT_RUNTIME_VARIABLE_CACHE_CONTEXT,
        13,
        14,
        99,
    ] {
        assert_eq!(
            call(&mut v, &msg(f, &[0; 64])).0,
            status::UNSUPPORTED,
            "function {f}"
        );
    }
}

#[test]
fn malformed_payloads_are_access_denied_and_change_nothing() {
    let mut v = service();
    set(&mut v, &VENDOR, "V", NV_BS_RT, b"keep");
    let name = n("V");
    // Shorter than the structure.
    let mut cases: Vec<Vec<u8>> = std::vec![
        msg(func::SET_VARIABLE, &[0; 35]),
        msg(func::GET_VARIABLE, &[0; 35]),
        msg(func::GET_NEXT_VARIABLE_NAME, &[0; 23]),
        msg(func::QUERY_VARIABLE_INFO, &[0; 27]),
        msg(func::GET_PAYLOAD_SIZE, &[0; 7]),
        msg(func::VAR_CHECK_VARIABLE_PROPERTY_SET, &[0; 47]),
    ];
    // DataSize past the message, and overflowing with NameSize.
    cases.push(msg(
        func::SET_VARIABLE,
        &access(&VENDOR, &name, NV_BS_RT, 100, b"new"),
    ));
    cases.push(msg(
        func::SET_VARIABLE,
        &access(&VENDOR, &name, NV_BS_RT, u64::MAX - 2, b"new"),
    ));
    // NameSize past the message, odd, zero, without its NUL.
    let mut a = access(&VENDOR, &name, NV_BS_RT, 3, b"new");
    a[24..32].copy_from_slice(&1000u64.to_le_bytes());
    cases.push(msg(func::SET_VARIABLE, &a));
    for ns in [0u64, 1, 3] {
        let mut a = access(&VENDOR, &name, NV_BS_RT, 3, b"new");
        a[24..32].copy_from_slice(&ns.to_le_bytes());
        cases.push(msg(func::SET_VARIABLE, &a));
    }
    cases.push(msg(
        func::SET_VARIABLE,
        &access(&VENDOR, b"V\0", NV_BS_RT, 3, b"new"),
    ));
    cases.push(msg(
        func::GET_VARIABLE,
        &access(&VENDOR, b"V\0", 0, 8, &[0; 8]),
    ));
    for m in &cases {
        assert_eq!(call(&mut v, m).0, status::ACCESS_DENIED, "{m:x?}");
    }
    // An interior NUL makes an invalid name, not a shorter one.
    assert_eq!(
        call(
            &mut v,
            &msg(
                func::SET_VARIABLE,
                &access(&VENDOR, b"V\0\0\0A\0\0\0", NV_BS_RT, 1, b"x")
            )
        )
        .0,
        status::INVALID_PARAMETER
    );
    assert_eq!(get(&mut v, &VENDOR, "V", 8).3, b"keep");
    assert_eq!(
        v.all().count(),
        4,
        "V, SetupMode, SecureBoot, SignatureSupport"
    );
}

#[test]
fn a_power_cut_during_set_leaves_old_or_new() {
    let mut v = service();
    set(&mut v, &VENDOR, "V", NV_BS_RT, b"old");
    let Vars { store, .. } = v;
    let base = store.into_flash().reboot();
    for cut in 0..400 {
        let mut f = base.clone();
        f.cut_after(cut);
        let mut v = service_on(f);
        let st = set(&mut v, &VENDOR, "V", NV_BS_RT, b"new value");
        let Vars { store, .. } = v;
        let f = store.into_flash();
        let mut v = service_on(f.reboot());
        let got = get(&mut v, &VENDOR, "V", 16).3;
        if st == status::SUCCESS {
            assert_eq!(got, b"new value", "cut {cut}");
            assert!(!f.was_cut());
            return;
        }
        assert_eq!(st, status::DEVICE_ERROR, "cut {cut}");
        assert!(got == b"old" || got == b"new value", "cut {cut}: {got:?}");
    }
    panic!("the write never completed");
}

#[test]
fn setup_mode_and_secure_boot_are_the_firmware_s() {
    let mut v = service();
    let rt = attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
    assert_eq!(
        get(&mut v, &GLOBAL_VARIABLE, "SetupMode", 4),
        (status::SUCCESS, rt, 1, std::vec![1])
    );
    assert_eq!(
        get(&mut v, &GLOBAL_VARIABLE, "SecureBoot", 4),
        (status::SUCCESS, rt, 1, std::vec![0])
    );
    for name in ["SetupMode", "SecureBoot"] {
        assert_eq!(
            set(&mut v, &GLOBAL_VARIABLE, name, rt, &[0]),
            status::WRITE_PROTECTED
        );
        assert_eq!(
            set(&mut v, &GLOBAL_VARIABLE, name, 0, &[]),
            status::WRITE_PROTECTED
        );
        let p = property_msg(
            func::VAR_CHECK_VARIABLE_PROPERTY_SET,
            &GLOBAL_VARIABLE,
            &n(name),
            (1, 0, 0, 0, 9),
        );
        assert_eq!(call(&mut v, &p).0, status::ACCESS_DENIED);
    }
    // Still there after ExitBootServices (runtime variables).
    call(&mut v, &msg(func::EXIT_BOOT_SERVICE, &[]));
    assert_eq!(get(&mut v, &GLOBAL_VARIABLE, "SetupMode", 4).3, [1]);
}
