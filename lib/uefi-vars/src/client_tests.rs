//! The client against the real partition, and against one that lies.
extern crate std;

use crate::client::{Channel, Client, ClientError, from_utf16z, utf16z};
use crate::partition::VarPartition;
use crate::partition_tests::Shared;
use crate::{GLOBAL_VARIABLE, Limits, Vars, attr, status};
use std::sync::{Arc, Mutex};
use std::vec;
use std::vec::Vec;
use varstore::Store;
use varstore::sim::SimFlash;

/// The partition, called directly, with an optional meddler run on the buffer afterwards.
struct Direct {
    p: VarPartition<Shared, SimFlash>,
    buf: Shared,
    after: Option<fn(&mut [u8])>,
}

impl Channel for Direct {
    fn call(&mut self, offset: u64) -> Result<i64, &'static str> {
        let r = self.p.request([offset, 0, 0, 0, 0]);
        if let Some(f) = self.after {
            f(&mut self.buf.0.lock().unwrap());
        }
        Ok(r)
    }
}

fn client(size: usize) -> Client<Shared, Direct> {
    let (store, _) = Store::open(SimFlash::new(65536, 8192)).unwrap();
    let vars = Vars::new(
        store,
        Limits {
            max_var_size: 8192,
            volatile_bytes: 4096,
        },
    );
    let buf = Shared(Arc::new(Mutex::new(vec![0; size])));
    let p = VarPartition::new(vars, buf.clone());
    Client::new(
        buf.clone(),
        Direct {
            p,
            buf,
            after: None,
        },
    )
    .unwrap()
}

const NV: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

#[test]
fn set_get_list_query_and_delete() {
    let mut c = client(16384);
    assert_eq!(c.payload_size(), 8192 + 48);
    c.set(&GLOBAL_VARIABLE, "BootOrder", NV, &[1, 0]).unwrap();
    c.set(&[5; 16], "Catena", NV, b"hello").unwrap();
    assert_eq!(
        c.get(&GLOBAL_VARIABLE, "BootOrder").unwrap(),
        (NV, vec![1, 0])
    );
    assert_eq!(
        c.get(&[5; 16], "Nope"),
        Err(ClientError::Efi(status::NOT_FOUND))
    );
    let names: Vec<_> = c
        .names()
        .unwrap()
        .into_iter()
        .map(|(g, n)| (g, from_utf16z(&n)))
        .collect();
    // With the firmware's SetupMode, SecureBoot and SignatureSupport.
    assert_eq!(names.len(), 5);
    assert!(names.contains(&(GLOBAL_VARIABLE, "BootOrder".into())));
    assert!(names.contains(&(GLOBAL_VARIABLE, "SetupMode".into())));
    let (max, free, largest) = c.query(NV).unwrap();
    assert!(free < max && largest == 8192);
    c.set(&[5; 16], "Catena", NV, b"").unwrap();
    assert_eq!(c.names().unwrap().len(), 4);
    // A large variable: more than a first guess would hold, less than the payload.
    let big = vec![0x5a; 6000];
    c.set(&[5; 16], "Big", NV, &big).unwrap();
    assert_eq!(c.get(&[5; 16], "Big").unwrap().1, big);
    assert_eq!(
        c.set(&[5; 16], "Huge", NV, &[0; 9000]),
        Err(ClientError::TooLarge)
    );
    assert_eq!(utf16z("A"), [b'A', 0, 0, 0]);
}

#[test]
fn a_lying_partition_is_caught() {
    let mut c = client(16384);
    c.set(&[5; 16], "V", NV, b"value").unwrap();
    type Meddle = fn(&mut [u8]);
    let cases: [(Meddle, &str); 4] = [
        (|b| b[0] ^= 1, "reply header GUID changed"),
        (|b| b[16] ^= 1, "reply length is not the message's"),
        (|b| b[24] ^= 1, "reply function changed"),
        // GetVariable's DataSize claims more than the room it was given.
        (
            |b| b[40 + 16..40 + 24].copy_from_slice(&u64::MAX.to_le_bytes()),
            "DataSize beyond the room given",
        ),
    ];
    for (f, want) in cases {
        c.channel().after = Some(f);
        assert_eq!(c.get(&[5; 16], "V"), Err(ClientError::Reply(want)));
    }
    // A walk that never ends: every answer is the same name.
    c.channel().after = None;
    c.set(&[5; 16], "W", NV, b"w").unwrap();
    c.channel().after = Some(|b| {
        // Rewrite the next name to "V" whatever was asked.
        let at = 40 + 24;
        b[at..at + 4].copy_from_slice(&[b'V', 0, 0, 0]);
        b[40 + 16..40 + 24].copy_from_slice(&4u64.to_le_bytes());
        b[40..56].copy_from_slice(&[5; 16]);
    });
    assert_eq!(c.names(), Err(ClientError::Reply("the walk does not end")));
}

#[test]
fn mm_errors_are_named() {
    let mut c = client(16384);
    c.channel().after = Some(|b| b[0] = 0);
    // The meddler runs after the call: the partition answered 0 and the GUID is then wrong.
    assert!(matches!(c.get(&[5; 16], "V"), Err(ClientError::Reply(_))));
    assert_eq!(ClientError::Mm(-1).name(), "mm-not-supported");
    assert_eq!(
        ClientError::Efi(status::SECURITY_VIOLATION).name(),
        "security-violation"
    );
}

#[test]
fn probed_reads_as_linux_does() {
    let mut c = client(16384);
    c.set(&[5; 16], "V", NV, b"value").unwrap();
    assert_eq!(
        c.get_probed(&[5; 16], "V").unwrap(),
        Some((NV, b"value".to_vec()))
    );
    assert_eq!(c.get_probed(&[5; 16], "Absent").unwrap(), None);
    // A service whose probe answers SUCCESS is named.
    c.channel().after = Some(|b| b[32..40].copy_from_slice(&0u64.to_le_bytes()));
    assert_eq!(
        c.get_probed(&[5; 16], "V"),
        Err(ClientError::Reply("size probe answered success"))
    );
}
