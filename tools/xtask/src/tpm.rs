//! A real TPM per run: swtpm (`swtpm socket --tpm2`) with a fresh state folder and a unix
//! control socket, wired to QEMU's `tpm-tis-device` (the TIS on virt's platform bus, which
//! QEMU describes in the DT as `tcg,tpm-tis-mmio`). The process is killed by PID when the run
//! ends, however it ends; `--terminate` also ends it when QEMU closes the socket.

use crate::prereq;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The local CA that signs every run's EK certificate (`swtpm_localca`, its files kept under
/// `target/catena/state/tpm-ca`, made on first use): what a verifier trusts EK certificates by.
pub fn ca_dir() -> PathBuf {
    crate::root().join("target/catena/state/tpm-ca")
}

/// The CA's certificates, root first (`swtpm-localca-rootca-cert.pem`, `issuercert.pem`).
pub fn ca_certs() -> [PathBuf; 2] {
    let d = ca_dir().join("ca");
    [
        d.join("swtpm-localca-rootca-cert.pem"),
        d.join("issuercert.pem"),
    ]
}

/// Manufactures a TPM in `dir` as a vendor would (`swtpm_setup --create-ek-cert`): the RSA-2048
/// EK at 0x81010001 with its certificate in NV 0x01c00002 (and the ECC ones), signed by the
/// project's local CA; all four PCR banks active (the firmware's log lists them).
fn manufacture(dir: &Path) -> Result<()> {
    let ca = ca_dir();
    std::fs::create_dir_all(ca.join("ca"))?;
    let d = ca.display();
    std::fs::write(
        ca.join("localca.conf"),
        format!(
            "statedir = {d}/ca\nsigningkey = {d}/ca/signkey.pem\nissuercert = {d}/ca/issuercert.pem\ncertserial = {d}/ca/certserial\n"
        ),
    )?;
    let localca = prereq::program("swtpm_setup")?
        .path
        .with_file_name("swtpm_localca");
    std::fs::write(
        ca.join("setup.conf"),
        format!(
            "create_certs_tool = {}\ncreate_certs_tool_config = {d}/localca.conf\ncreate_certs_tool_options = /etc/swtpm-localca.options\n",
            localca.display()
        ),
    )?;
    let out = prereq::program("swtpm_setup")?
        .command()
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--overwrite",
            "--pcr-banks",
            "sha1,sha256,sha384,sha512",
        ])
        .arg("--tpmstate")
        .arg(dir)
        .arg("--config")
        .arg(ca.join("setup.conf"))
        .output()
        .context("running swtpm_setup")?;
    if !out.status.success() {
        bail!(
            "swtpm_setup failed: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A running swtpm.
pub struct Swtpm {
    child: Arc<Mutex<Child>>,
    socket: PathBuf,
    /// Its state folder (`tpm2-00.permall` appears there), and its log.
    pub dir: PathBuf,
}

impl Swtpm {
    /// Starts swtpm with its state in `dir` — fresh (the folder removed first) unless `keep`,
    /// when a TPM saved there by an earlier run is used again (`run --tpm-state DIR`) — and
    /// waits, bounded, until its control socket exists.
    pub fn start(dir: &Path, keep: bool) -> Result<Swtpm> {
        if !keep {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if !dir.join("tpm2-00.permall").exists() {
            manufacture(dir)?;
        }
        let socket = dir.join("swtpm.sock");
        // A socket left by an earlier run would end the wait below before swtpm listens.
        let _ = std::fs::remove_file(&socket);
        if socket.as_os_str().len() >= 108 {
            bail!(
                "{}: a unix socket path must be shorter than 108 bytes",
                socket.display()
            );
        }
        let swtpm = prereq::program("swtpm")?;
        let child = swtpm
            .command()
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .arg("--log")
            .arg(format!("file={},level=5", dir.join("swtpm.log").display()))
            .arg("--terminate")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting swtpm")?;
        let t = Swtpm {
            child: Arc::new(Mutex::new(child)),
            socket,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.socket.exists() {
            if let Ok(Some(status)) = t.lock().try_wait() {
                bail!(
                    "swtpm exited ({status}) before it listened; see {}",
                    t.dir.join("swtpm.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("swtpm did not create {} in 10 s", t.socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(t)
    }

    /// QEMU's arguments for it.
    pub fn qemu_args(&self) -> Vec<String> {
        qemu_args(&self.socket)
    }
}

/// The QEMU arguments that put a TPM TIS behind the socket `socket`.
pub fn qemu_args(socket: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!("socket,id=chrtpm,path={}", socket.display()),
        "-tpmdev".into(),
        "emulator,id=tpm0,chardev=chrtpm".into(),
        "-device".into(),
        "tpm-tis-device,tpmdev=tpm0".into(),
    ]
}

impl Swtpm {
    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A way to kill this swtpm mid-run (a scenario's `tpm_stop`: the TPM stops answering).
    pub fn stopper(&self) -> impl FnOnce() + Send + 'static {
        let child = Arc::clone(&self.child);
        move || {
            let mut c = child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let mut c = self.lock();
        if let Ok(None) = c.try_wait() {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tpm_is_a_tis_on_the_platform_bus_behind_the_socket() {
        let a = qemu_args(Path::new("/tmp/x/swtpm.sock"));
        assert_eq!(
            a,
            [
                "-chardev",
                "socket,id=chrtpm,path=/tmp/x/swtpm.sock",
                "-tpmdev",
                "emulator,id=tpm0,chardev=chrtpm",
                "-device",
                "tpm-tis-device,tpmdev=tpm0"
            ]
        );
    }
}
