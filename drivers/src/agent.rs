//! The attestation agent: at the end of boot, over the network (virtio-net, smoltcp, DHCP,
//! TCP), Keylime's exchange with a verifier in one boot —
//!
//! 1. `POST /register` `{"ek_pub","ek_cert","ak_pub"}` (hex) → `{"credential"}`: the
//!    verifier checks the EK certificate and wraps a secret for that EK and the AK's name;
//! 2. `GET /nonce` → `{"nonce"}`;
//! 3. the TPM activates the credential and quotes PCRs 0-11 over the nonce;
//! 4. `POST /attest` with the secret, the quote, the AK and both logs → `{"verdict","failed"}`.
//!
//! HTTP/1.0, one request per connection, JSON with hex strings (docs/measured-boot.md).
//! Everything the verifier sends is checked: status, sizes, hex; a bounded wait everywhere.

use crate::kapi;
use crate::net::{NET, Phy};
use crate::tpm::{hex, with_tpm};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use attest::wire::{json_str, unhex};
use catena_event::Kind;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

/// How long any one step may take.
const STEP_US: u64 = 5_000_000;
/// Largest response accepted.
const MAX_RESPONSE: usize = 64 * 1024;

fn now() -> Instant {
    Instant::from_micros(kapi::now_us() as i64)
}

struct Stack<'a> {
    iface: Interface,
    phy: Phy<'a>,
    sockets: SocketSet<'static>,
    port: u16,
}

impl Stack<'_> {
    fn poll(&mut self) {
        let _ = self.iface.poll(now(), &mut self.phy, &mut self.sockets);
    }

    /// DHCP until the interface has an address and a default route.
    fn dhcp(&mut self) -> Result<String, String> {
        let h = self.sockets.add(dhcpv4::Socket::new());
        let start = kapi::now_us();
        loop {
            self.poll();
            if let Some(dhcpv4::Event::Configured(c)) =
                self.sockets.get_mut::<dhcpv4::Socket>(h).poll()
            {
                let addr = c.address;
                self.iface.update_ip_addrs(|a| {
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(addr));
                });
                if let Some(r) = c.router {
                    let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                }
                return Ok(format!("{addr}"));
            }
            if kapi::now_us() - start > STEP_US {
                return Err("no DHCP answer".into());
            }
        }
    }

    /// One HTTP/1.0 exchange; returns the body of a 200 response.
    fn http(
        &mut self,
        server: ([u8; 4], u16),
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<Vec<u8>, String> {
        let (rx, tx) = crate::net::socket_buffers();
        let sock = tcp::Socket::new(
            tcp::SocketBuffer::new(Vec::from(rx)),
            tcp::SocketBuffer::new(Vec::from(tx)),
        );
        let h: SocketHandle = self.sockets.add(sock);
        self.port = self.port.wrapping_add(1).max(49152);
        let [a, b, c, d] = server.0;
        let remote = (IpAddress::v4(a, b, c, d), server.1);
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(self.iface.context(), remote, self.port)
            .map_err(|e| format!("connect: {e:?}"))?;
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: verifier\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut sent = 0;
        let mut response = Vec::new();
        let start = kapi::now_us();
        loop {
            self.poll();
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if s.can_send() && sent < request.len() {
                sent += s
                    .send_slice(&request.as_bytes()[sent..])
                    .map_err(|e| format!("send: {e:?}"))?;
            }
            if s.can_recv() {
                s.recv(|data| {
                    response.extend_from_slice(data);
                    (data.len(), ())
                })
                .map_err(|e| format!("recv: {e:?}"))?;
                if response.len() > MAX_RESPONSE {
                    s.abort();
                    return Err("response too large".into());
                }
            }
            if sent == request.len() && !s.is_open() {
                break;
            }
            if sent == request.len() && !s.may_recv() && s.state() == tcp::State::CloseWait {
                s.close();
            }
            if kapi::now_us() - start > STEP_US {
                s.abort();
                return Err(format!("{method} {path}: no complete answer in time"));
            }
        }
        self.sockets.remove(h);
        let text = core::str::from_utf8(&response).map_err(|_| "response is not text")?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("response without a body")?;
        let status = head.split(' ').nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("{method} {path}: HTTP {status}"));
        }
        Ok(body.as_bytes().to_vec())
    }
}

/// Runs the exchange with the verifier at `server`; reports `attest state=verdict ...` or
/// `state=error reason=...`, and returns the same as a line of text.
pub fn run(server: ([u8; 4], u16)) -> String {
    match exchange(server) {
        Ok((verdict, failed)) => {
            kapi::emit(Kind::Attest, |w| {
                let w = w
                    .str("state", "verdict")
                    .str("via", "network")
                    .str("verdict", &verdict);
                if failed.is_empty() {
                    w
                } else {
                    w.str("failed", &failed)
                }
            });
            if failed.is_empty() {
                alloc::format!("the verifier says: {verdict}")
            } else {
                alloc::format!("the verifier says: {verdict} ({failed})")
            }
        }
        Err(why) => {
            kapi::emit(Kind::Attest, |w| {
                w.str("state", "error")
                    .str("via", "network")
                    .str("reason", &why)
            });
            alloc::format!("the verifier could not be reached: {why}")
        }
    }
}

fn exchange(server: ([u8; 4], u16)) -> Result<(String, String), String> {
    let mut guard = NET.lock();
    let net = guard.as_mut().ok_or("no network device")?;
    let mac = net.mac_address();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    config.random_seed = kapi::now_us();
    let mut phy = Phy(net);
    let iface = Interface::new(config, &mut phy, now());
    let mut st = Stack {
        iface,
        phy,
        sockets: SocketSet::new(vec![]),
        port: 49152,
    };
    let addr = st.dhcp()?;
    log::info!("agent: {addr} by DHCP; verifier at {:?}", server);
    // 1. Registration.
    let (ek, ek_cert, ak_pub) = with_tpm(|t| {
        let ak = t.create_ak()?;
        let _ = t.flush(ak.handle);
        Ok::<_, tpm_core::Error>((
            t.read_public(tpm_core::EK_RSA_HANDLE)?,
            t.nv_read_all(tpm_core::EK_RSA_CERT_INDEX, 4096)?,
            ak.public,
        ))
    })
    .ok_or("no TPM")?
    .map_err(|e| format!("TPM: {e}"))?;
    let body = format!(
        "{{\"ek_pub\":\"{}\",\"ek_cert\":\"{}\",\"ak_pub\":\"{}\"}}",
        hex(&ek),
        hex(&ek_cert),
        hex(&ak_pub)
    );
    let r = st.http(server, "POST", "/register", &body)?;
    let r = core::str::from_utf8(&r).map_err(|_| "register: not text")?;
    let cred = json_str(r, "credential")
        .and_then(unhex)
        .ok_or("register: no credential")?;
    let cred = tpm_core::Credential::parse(&cred).map_err(|e| format!("credential: {e}"))?;
    // 2. The nonce.
    let r = st.http(server, "GET", "/nonce", "")?;
    let r = core::str::from_utf8(&r).map_err(|_| "nonce: not text")?;
    let nonce = json_str(r, "nonce")
        .and_then(unhex)
        .filter(|n| (8..=64).contains(&n.len()))
        .ok_or("no nonce of 8 to 64 bytes")?;
    // 3. Activation and quote.
    let (secret, q) = with_tpm(|t| {
        let ak = t.create_ak()?;
        let secret = t.activate_credential(ak.handle, tpm_core::EK_RSA_HANDLE, &cred);
        let q = t.quote(ak.handle, &nonce, crate::attest::QUOTED_PCRS);
        let _ = t.flush(ak.handle);
        Ok::<_, tpm_core::Error>((secret?, q?))
    })
    .ok_or("no TPM")?
    .map_err(|e| format!("TPM: {e}"))?;
    // 4. The evidence.
    let log = crate::tpm::event_log_exported().unwrap_or_default();
    let ima = crate::ima::encoded();
    let body = format!(
        "{{\"nonce\":\"{}\",\"credential_secret\":\"{}\",\"ak_pub\":\"{}\",\"ek_pub\":\"{}\",\"ek_cert\":\"{}\",\"quote_msg\":\"{}\",\"quote_sig\":\"{}\",\"eventlog\":\"{}\",\"ima\":\"{}\"}}",
        hex(&nonce),
        hex(&secret),
        hex(&ak_pub),
        hex(&ek),
        hex(&ek_cert),
        hex(&q.attest),
        hex(&q.signature),
        hex(&log),
        hex(&ima)
    );
    let r = st.http(server, "POST", "/attest", &body)?;
    let r = core::str::from_utf8(&r).map_err(|_| "attest: not text")?;
    let verdict = json_str(r, "verdict").ok_or("attest: no verdict")?;
    if verdict != "trusted" && verdict != "untrusted" {
        return Err("attest: an unknown verdict".into());
    }
    Ok((verdict.into(), json_str(r, "failed").unwrap_or("").into()))
}
