//! The verifier as a network service for the agent (`drivers/src/agent.rs`): HTTP/1.0 on
//! 127.0.0.1 (the guest reaches it at 10.0.2.2 through QEMU's user networking), one request
//! per connection, JSON with hex strings (docs/measured-boot.md):
//!
//! - `POST /register {"ek_pub","ek_cert","ak_pub"}` → the EK certificate checked against the
//!   local CA, a fresh secret wrapped for that EK and the AK's name → `{"credential"}`;
//! - `GET /nonce` → a fresh nonce → `{"nonce"}`;
//! - `POST /attest {"nonce","credential_secret","ak_pub","ek_pub","ek_cert","quote_msg",
//!   "quote_sig","eventlog","ima"}` → the whole verification → `{"verdict","failed"}`.
//!
//! Anything malformed is answered 400 with a reason; the verdict goes to the caller of
//! [`Server::start`] too.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// A running verifier service.
pub struct Server {
    /// The verdicts it reached.
    pub verdicts: mpsc::Receiver<verifier::Verdict>,
}

struct State {
    reference: verifier::Reference,
    dir: PathBuf,
    nonce: Option<Vec<u8>>,
    verdicts: mpsc::Sender<verifier::Verdict>,
}

use attest::wire::hex;

fn field(j: &serde_json::Value, k: &str) -> Result<Vec<u8>, String> {
    j.get(k)
        .and_then(|v| v.as_str())
        .and_then(attest::wire::unhex)
        .ok_or_else(|| format!("`{k}` missing or not hex"))
}

impl Server {
    /// A listener on 127.0.0.1 at an ephemeral port (its port goes into the guest's command
    /// line, and so into the reference, before [`Server::start`]).
    pub fn bind() -> Result<TcpListener> {
        TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")
    }

    /// Serves on `l` until the process ends. `reference` is completed per exchange (the secret
    /// it wraps); `dir` keeps its files.
    pub fn start(l: TcpListener, reference: verifier::Reference, dir: PathBuf) -> Result<Server> {
        let (tx, rx) = mpsc::channel();
        let mut st = State {
            reference,
            dir,
            nonce: None,
            verdicts: tx,
        };
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let _ = serve(&mut st, conn);
            }
        });
        Ok(Server { verdicts: rx })
    }
}

fn serve(st: &mut State, mut c: TcpStream) -> Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let (head, body) = loop {
        let n = c.read(&mut chunk)?;
        if n == 0 {
            anyhow::bail!("closed before a request");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            anyhow::bail!("request too large");
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < i + 4 + len {
                let n = c.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            break (head, buf[i + 4..].to_vec());
        }
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let (status, reply) = match route(st, &line, &body) {
        Ok(r) => ("200 OK", r),
        Err(why) => ("400 Bad Request", serde_json::json!({ "error": why })),
    };
    let text = reply.to_string();
    write!(
        c,
        "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    Ok(())
}

fn route(st: &mut State, line: &str, body: &[u8]) -> Result<serde_json::Value, String> {
    let mut it = line.split(' ');
    let (method, path) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    let json = || -> Result<serde_json::Value, String> {
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
    };
    match (method, path) {
        ("POST", "/register") => {
            let j = json()?;
            let (ek, cert, ak) = (
                field(&j, "ek_pub")?,
                field(&j, "ek_cert")?,
                field(&j, "ak_pub")?,
            );
            verifier::registration(&ek, &cert, &st.reference.ek_ca)?;
            let secret: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
            let mut ev = std::collections::BTreeMap::new();
            ev.insert("ek-pub".to_string(), ek);
            ev.insert("ak-pub".to_string(), ak);
            let out = st.dir.join("credential-net.bin");
            crate::attest::make_credential(&st.dir, &ev, &secret, &out)
                .map_err(|e| format!("{e:#}"))?;
            st.reference.credential_secret = Some(secret);
            let cred = std::fs::read(&out).map_err(|e| e.to_string())?;
            Ok(serde_json::json!({ "credential": hex(&cred) }))
        }
        ("GET", "/nonce") => {
            let n: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
            st.nonce = Some(n.clone());
            Ok(serde_json::json!({ "nonce": hex(&n) }))
        }
        ("POST", "/attest") => {
            let j = json()?;
            let nonce = st.nonce.take().ok_or("no nonce was given out")?;
            let e = verifier::Evidence {
                eventlog: field(&j, "eventlog")?,
                ima: field(&j, "ima")?,
                ak_pub: field(&j, "ak_pub")?,
                quote_msg: field(&j, "quote_msg")?,
                quote_sig: field(&j, "quote_sig")?,
                ek_pub: field(&j, "ek_pub")?,
                ek_cert: field(&j, "ek_cert")?,
                credential_secret: field(&j, "credential_secret")?,
            };
            // The nonce the verifier gave, not the one the agent says it used.
            let v = verifier::verify(&e, &nonce, &st.reference);
            let failed: Vec<&str> = v
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.what.as_str())
                .collect();
            let reply = serde_json::json!({
                "verdict": if v.trusted() { "trusted" } else { "untrusted" },
                "failed": failed.join("; "),
            });
            let _ = st.verdicts.send(v);
            Ok(reply)
        }
        _ => Err(format!("no such request: {method} {path}")),
    }
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b[0]
}
