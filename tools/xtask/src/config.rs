//! `qemu.toml`: machines and scenarios as data, and the QEMU command line they make.

use crate::build::Images;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Scenario booted by `run` without a name.
    pub default_scenario: String,
    /// Defaults for every machine.
    pub defaults: Defaults,
    /// Machines by name.
    pub machines: BTreeMap<String, Machine>,
    /// Scenarios by name.
    pub scenarios: BTreeMap<String, Scenario>,
    /// Benchmarks by name.
    #[serde(default)]
    pub bench: BTreeMap<String, Bench>,
}

/// A benchmark: the same work booted two ways, counted in guest instructions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// One line for humans.
    pub description: String,
    /// The scenario measured.
    pub with: String,
    /// The scenario it is compared against.
    pub without: String,
    /// The kernel parameter that runs the work `=N` times between the counting markers.
    pub param: String,
    /// The parameter for the `without` side, when it differs (`bench tpm`: the firmware's).
    pub param_without: Option<String>,
    /// The event (pattern) that reports the work done, with `ok=N` (default `ffa-bench`).
    pub event: Option<String>,
    /// The `without` side's event, when it differs.
    pub event_without: Option<String>,
    /// N.
    pub calls: u32,
    /// A kernel parameter that runs `=N` pairs (one call each way, back to back) in one boot
    /// without the counter and reports both sides' median times by the guest's counter
    /// (`chain_ns=`, `direct_ns=` on `event`), the device's own work included.
    pub pairs: Option<String>,
}

/// Defaults for every machine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// `-cpu`.
    pub cpu: String,
    /// `-smp`.
    pub smp: u32,
    /// `-m`.
    pub memory: String,
    /// Seconds before a run is killed.
    pub timeout: u64,
}

/// A QEMU machine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// `-M` value.
    pub machine: String,
    /// `-cpu`, overriding the default.
    pub cpu: Option<String>,
    /// `-smp`, overriding the default.
    pub smp: Option<u32>,
    /// `-m`, overriding the default.
    pub memory: Option<String>,
}

/// The status a scenario must end with.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// `done status=ok`.
    Ok,
    /// `done status=fail`.
    Fail,
}

/// A boot scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line for humans.
    pub description: String,
    /// A `[machines.*]` name.
    pub machine: String,
    /// Kernel command line.
    #[serde(default)]
    pub cmdline: String,
    /// Final status the guest must report.
    pub expect: Expect,
    /// With `expect = "fail"`, the reason it must give.
    pub reason: Option<String>,
    /// Ordered expected events.
    #[serde(default)]
    pub events: Vec<String>,
    /// Events that must not appear.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// Booted by `cargo xtask test`.
    #[serde(default)]
    pub test: bool,
    /// Seconds before the run is killed, overriding the default.
    pub timeout: Option<u64>,
    /// Boot through the EL3 firmware (`-bios firmware.bin`; the kernel goes through fw_cfg).
    #[serde(default)]
    pub firmware: bool,
    /// Extra QEMU arguments.
    #[serde(default)]
    pub qemu_args: Vec<String>,
    /// Boot the kernel built with the `test-hooks` feature (`Image-hooks`).
    #[serde(default)]
    pub hooks: bool,
    /// A TPM: a fresh swtpm behind QEMU's `tpm-tis-device`.
    #[serde(default)]
    pub tpm: bool,
    /// Kill swtpm when the kernel prints this event (the TPM stops answering mid-run).
    pub tpm_stop: Option<String>,
    /// Lines typed on the console, one after each `shell state=prompt` event.
    #[serde(default)]
    pub input: Vec<String>,
    /// Boot on QEMU's own DT for this machine with FDT_NOP tokens added (`-dtb`).
    pub dt_nops: Option<DtNops>,
    /// Persistent secure flash: the firmware boots from flash0 as a writable pflash drive
    /// (`target/catena/state/STATE/flash0.img`, kept across runs) instead of `-bios`, so the
    /// variable store outlives the run.
    #[serde(default)]
    pub flash: bool,
    /// The state directory's name (default: the scenario's): scenarios that share one see
    /// each other's variables, in name order under `test`.
    pub state: Option<String>,
    /// `test` starts this scenario from a fresh state (the first of a sequence).
    #[serde(default)]
    pub fresh_state: bool,
    /// A power-cut campaign on the variable store (`cargo xtask run` / `test` drive it).
    pub powercut: Option<Powercut>,
    /// Secure Boot enrolment from the scenario's own test PKI (made per state).
    pub enroll: Option<Enroll>,
    /// `test` checks the exported evidence with tpm2-tools (`tpm2_eventlog`'s replay equals
    /// the PCRs the kernel read).
    #[serde(default)]
    pub evidence_check: bool,
    /// Boot through U-Boot instead of straight into the kernel (`docs/boards.md`).
    pub boot: Option<BootPath>,
    /// Hand the kernel the initramfs (`-initrd`; QEMU's loader names it in `/chosen`).
    #[serde(default)]
    pub initrd: bool,
    /// Boot another operating system in the kernel's place (`"linux"`: Debian's arm64 Linux
    /// with a busybox initramfs, `tools/xtask/src/linux.rs`).
    pub os: Option<Os>,
}

/// An operating system booted in Catena's kernel's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Os {
    /// Debian's arm64 Linux (7.2 or later), its FF-A and `tpm_crb_ffa` modules loaded by a
    /// busybox `/init` that reports `@event linux ...` lines.
    Linux,
}

/// A boot path through U-Boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootPath {
    /// QEMU virt: our firmware runs Debian's `u-boot-qemu` as BL33, which `booti`s the Image
    /// it loads over fw_cfg (environment in flash1).
    Uboot,
    /// The same, with a FIT (kernel + DT, SHA-256 hashes) and `bootm`.
    UbootFit,
    /// QEMU `raspi3b`: Debian's `u-boot-rpi` rpi_3 build on the Raspberry Pi 3 Model B DT,
    /// `booti` of the Image from an SD card.
    Raspi3b,
}

/// What a scenario enrols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enroll {
    /// PK, KEK, db, dbx.
    Standard,
    /// Those, then the updates the guest must refuse.
    WithRefused,
    /// Those, then a db of four certificates and a dbx revoking three of them (by
    /// certificate, TBS hash and file hash).
    Revocations,
    /// The standard four, then only the revoking dbx (a dbx change, for `attest --tamper dbx`).
    DbxUpdate,
}

/// The `varstore-powercut` campaign: after `setup`, boot N = 1, 2, ... with the flash's power
/// cut before step N of `write`; after each cut, boot again and check that every variable in
/// `expect` is one of its allowed values and that the store still takes a write.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Powercut {
    /// `catena.efivar_ops` for the first boot (the old values).
    pub setup: String,
    /// `catena.efivar_ops` for the boots that are cut.
    pub write: String,
    /// Variable -> the values it may hold after a cut (old or new, never anything else).
    pub expect: BTreeMap<String, Vec<String>>,
    /// Give up after this many steps (the write must complete before).
    pub max_steps: u32,
}

/// NOP tokens to add to a DT, as a boot loader editing it with libfdt might leave them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtNops {
    /// NOPs before every token.
    #[serde(default)]
    pub per_token: usize,
    /// A node (full unit name) turned into NOPs, as `fdt_nop_node` deletes one.
    pub nop_out: Option<String>,
}

/// Whether a QEMU argument makes a network card that needs an option ROM (`-nic`/`-net`
/// other than `none` make virt's default virtio-net-pci; PCI NIC models by name).
fn needs_option_rom(arg: &str) -> bool {
    const PCI_NICS: [&str; 5] = ["virtio-net-pci", "e1000", "rtl8139", "ne2k_pci", "pcnet"];
    matches!(arg, "-nic" | "-net" | "--nic" | "--net")
        || PCI_NICS
            .iter()
            .any(|m| arg.split(',').next().is_some_and(|d| d == *m))
}

impl Config {
    /// Reads and checks `qemu.toml`.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks the text of `qemu.toml`.
    pub fn parse(text: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text)?;
        if !cfg.scenarios.contains_key(&cfg.default_scenario) {
            bail!(
                "default_scenario `{}` is not a scenario",
                cfg.default_scenario
            );
        }
        for (name, b) in &cfg.bench {
            for sc in [&b.with, &b.without] {
                if !cfg.scenarios.contains_key(sc) {
                    bail!("bench `{name}` uses unknown scenario `{sc}`");
                }
            }
        }
        for (name, s) in &cfg.scenarios {
            if !cfg.machines.contains_key(&s.machine) {
                bail!("scenario `{name}` uses unknown machine `{}`", s.machine);
            }
            if s.reason.is_some() && s.expect != Expect::Fail {
                bail!("scenario `{name}`: `reason` only goes with expect = \"fail\"");
            }
            for p in s.events.iter().chain(&s.forbid).chain(&s.tpm_stop) {
                crate::judge::Pattern::parse(p)
                    .with_context(|| format!("scenario `{name}`: bad event pattern `{p}`"))?;
            }
            if s.tpm_stop.is_some() && !s.tpm {
                bail!("scenario `{name}`: `tpm_stop` needs `tpm = true`");
            }
            // A test hook on the command line needs the image that has them, unless the
            // scenario is there to see the product image call it unknown.
            for word in s.cmdline.split_whitespace() {
                let hook = word.split('=').next().unwrap_or(word);
                let expected_unknown = s.events.iter().any(|e| {
                    e.contains(&format!("param name={word}")) && e.contains("result=unknown")
                });
                if bootparams::HOOKS.contains(&hook) && !s.hooks && !expected_unknown {
                    bail!(
                        "scenario `{name}`: `{hook}` is a test hook; set `hooks = true` to boot \
                         the image that has it"
                    );
                }
            }
            if s.tpm && s.dt_nops.is_some() {
                // Dumping the DT would connect QEMU to swtpm, which ends when QEMU does.
                bail!("scenario `{name}`: `tpm` and `dt_nops` do not go together");
            }
            if s.initrd && matches!(s.boot, Some(BootPath::UbootFit | BootPath::Raspi3b)) {
                bail!(
                    "scenario `{name}`: `initrd` goes through QEMU's loader, our firmware \
                     (fw_cfg) or U-Boot's booti (`boot = \"uboot\"`), not yet a FIT or the \
                     Raspberry Pi's SD card"
                );
            }
            match s.boot {
                Some(BootPath::Uboot | BootPath::UbootFit) if !s.firmware => bail!(
                    "scenario `{name}`: the virt U-Boot path runs under our firmware \
                     (`firmware = true`)"
                ),
                // The FIT's DT is made before the boot, edited as the firmware edits it
                // without a TPM (the TPM's edits depend on what the firmware measured).
                Some(BootPath::UbootFit) if s.tpm => {
                    bail!("scenario `{name}`: the FIT path's DT is made without a TPM")
                }
                Some(BootPath::Raspi3b) if s.firmware || s.tpm || s.flash => bail!(
                    "scenario `{name}`: the raspi3b board has no secure firmware, TPM or secure \
                     flash"
                ),
                _ => {}
            }
            if s.os.is_some() && (s.hooks || s.initrd || s.boot.is_some() || !s.firmware) {
                bail!(
                    "scenario `{name}`: another OS boots under our firmware (`firmware = \
                     true`) with its own initramfs: no `hooks`, `initrd` or `boot`"
                );
            }
            if let Some(a) = s.qemu_args.iter().find(|a| needs_option_rom(a)) {
                bail!(
                    "scenario `{name}`: qemu_args `{a}` makes a PCI network card, whose option \
                     ROM is not installed with QEMU; use `-netdev user,id=n0 -device \
                     virtio-net-device,netdev=n0`"
                );
            }
        }
        Ok(cfg)
    }

    /// A scenario by name, with a helpful error.
    pub fn scenario(&self, name: &str) -> Result<&Scenario> {
        self.scenarios.get(name).with_context(|| {
            let names: Vec<&str> = self.scenarios.keys().map(String::as_str).collect();
            format!(
                "no scenario `{name}` in qemu.toml (have: {})",
                names.join(", ")
            )
        })
    }

    /// QEMU arguments for a scenario (without the binary). `secure_log` receives the secure
    /// UART when the scenario boots through the firmware.
    pub fn qemu_args(
        &self,
        scenario: &Scenario,
        images: &Images,
        secure_log: &Path,
        interactive: bool,
        flash: Option<&Path>,
    ) -> Vec<String> {
        let m = &self.machines[&scenario.machine];
        let mut args: Vec<String> = vec![
            "-M".into(),
            m.machine.clone(),
            "-cpu".into(),
            m.cpu.clone().unwrap_or_else(|| self.defaults.cpu.clone()),
            "-smp".into(),
            m.smp.unwrap_or(self.defaults.smp).to_string(),
            "-m".into(),
            m.memory
                .clone()
                .unwrap_or_else(|| self.defaults.memory.clone()),
            "-kernel".into(),
            if scenario.hooks {
                &images.image_hooks
            } else {
                &images.image
            }
            .display()
            .to_string(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            // No default NIC: virt's default is virtio-net-pci, whose option ROM comes from
            // `ipxe-qemu`, a package QEMU only recommends. A scenario that wants a network
            // names its own device (virtio-mmio `virtio-net-device`, no ROM needed).
            "-nic".into(),
            "none".into(),
        ];
        // Interactive: init starts the shell on the console (`catena.shell`).
        let cmdline = match (interactive, scenario.cmdline.is_empty()) {
            (false, _) => scenario.cmdline.clone(),
            (true, true) => String::from("catena.shell"),
            (true, false) => format!("{} catena.shell", scenario.cmdline),
        };
        if !cmdline.is_empty() {
            args.push("-append".into());
            args.push(cmdline);
        }
        match (scenario.firmware, flash) {
            // flash0, writable and persistent (secure-only with secure=on): the image holds
            // the firmware at its start and the variable store in its last MiB.
            (true, Some(f)) => args.extend([
                "-drive".into(),
                format!("if=pflash,unit=0,format=raw,file={}", f.display()),
            ]),
            (true, None) => args.extend(["-bios".into(), images.firmware.display().to_string()]),
            (false, _) => {}
        }
        if scenario.initrd {
            args.extend(["-initrd".into(), images.initramfs.display().to_string()]);
        }
        if interactive {
            args.extend(["-serial".into(), "mon:stdio".into()]);
        } else {
            args.extend([
                "-monitor".into(),
                "none".into(),
                "-serial".into(),
                "stdio".into(),
            ]);
        }
        args.extend(scenario.qemu_args.iter().cloned());
        if scenario.firmware {
            // The second UART is the secure one: the firmware's log.
            args.extend(["-serial".into(), format!("file:{}", secure_log.display())]);
        }
        args
    }

    /// Timeout for a scenario.
    pub fn timeout(&self, scenario: &Scenario) -> u64 {
        scenario.timeout.unwrap_or(self.defaults.timeout)
    }
}

/// The files a U-Boot boot path adds to QEMU's command line.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// U-Boot itself (`u-boot.bin`).
    pub uboot: PathBuf,
    /// virt: flash1 with U-Boot's environment. raspi3b: the SD card image.
    pub disk: PathBuf,
    /// virt with a FIT: the FIT, given to U-Boot as fw_cfg's kernel.
    pub fit: Option<PathBuf>,
    /// raspi3b: the board's DT.
    pub dtb: Option<PathBuf>,
}

/// Turns [`Config::qemu_args`]'s direct boot into a boot through U-Boot.
/// - virt: our firmware gets U-Boot as fw_cfg `opt/catena/bl33`, U-Boot its environment in
///   flash1; the Image (or the FIT) stays fw_cfg's kernel, which U-Boot loads (`qfw load`).
/// - raspi3b: QEMU loads U-Boot as the board's kernel and the board DT; the Image is on the SD
///   card; U-Boot and the DT's `stdout-path` use the second UART (the mini-UART), so the first
///   (PL011) goes nowhere.
pub fn boot_args(args: &mut Vec<String>, path: BootPath, files: &BootFiles) {
    let kernel = args.iter().position(|a| a == "-kernel").map(|i| i + 1);
    match path {
        BootPath::Uboot | BootPath::UbootFit => {
            if let (Some(i), Some(fit)) = (kernel, &files.fit) {
                args[i] = fit.display().to_string();
            }
            args.extend([
                "-fw_cfg".into(),
                format!("name=opt/catena/bl33,file={}", files.uboot.display()),
                "-drive".into(),
                format!("if=pflash,unit=1,format=raw,file={}", files.disk.display()),
            ]);
        }
        BootPath::Raspi3b => {
            if let Some(i) = kernel {
                args[i] = files.uboot.display().to_string();
            }
            if let Some(i) = args.iter().position(|a| a == "-serial") {
                args.splice(i..i, ["-serial".to_string(), "null".to_string()]);
            }
            if let Some(dtb) = &files.dtb {
                args.extend(["-dtb".into(), dtb.display().to_string()]);
            }
            args.extend([
                "-drive".into(),
                format!("if=sd,format=raw,file={}", files.disk.display()),
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_qemu_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../qemu.toml");
        let cfg = Config::load(&path).unwrap();
        for needed in ["el2", "el1", "fault", "full"] {
            assert!(cfg.scenarios[needed].test, "{needed} is a test scenario");
        }
        let el2 = cfg.scenario("el2").unwrap();
        let images = Images {
            image: "Image".into(),
            elf: "kernel.elf".into(),
            image_hooks: "Image-hooks".into(),
            elf_hooks: "kernel-hooks.elf".into(),
            firmware: "firmware.bin".into(),
            initramfs: "initramfs.cpio".into(),
        };
        let args = cfg.qemu_args(el2, &images, Path::new("s.log"), false, None);
        assert!(!args.contains(&"-bios".to_string()));
        assert!(args.windows(2).any(|w| w == ["-kernel", "Image"]));
        let probes = cfg.scenario("hyp-probes").unwrap();
        let hooked = cfg.qemu_args(probes, &images, Path::new("s.log"), false, None);
        assert!(hooked.windows(2).any(|w| w == ["-kernel", "Image-hooks"]));
        assert!(
            args.windows(2)
                .any(|w| w == ["-M", "virt,virtualization=on,gic-version=3"])
        );
        assert!(args.windows(2).any(|w| w == ["-cpu", "cortex-a72"]));
        assert!(args.windows(2).any(|w| w == ["-smp", "2"]));
        assert_eq!(
            args.contains(&"-append".to_string()),
            !el2.cmdline.is_empty()
        );
        // Interactive runs add the shell to the command line.
        let i = cfg.qemu_args(el2, &images, Path::new("s.log"), true, None);
        assert!(i.iter().any(|a| a.ends_with(" catena.shell")));
        assert!(args.windows(2).any(|w| w == ["-nic", "none"]));
        let full = cfg.scenario("full").unwrap();
        let args = cfg.qemu_args(full, &images, Path::new("s.log"), false, None);
        assert!(args.windows(2).any(|w| w == ["-bios", "firmware.bin"]));
        // With persistent flash: flash0 as a pflash drive instead of -bios.
        let f = cfg.qemu_args(
            full,
            &images,
            Path::new("s.log"),
            false,
            Some(Path::new("f.img")),
        );
        assert!(!f.contains(&"-bios".to_string()));
        assert!(
            f.windows(2)
                .any(|w| w == ["-drive", "if=pflash,unit=0,format=raw,file=f.img"])
        );
        assert!(args.windows(2).any(|w| w == ["-serial", "file:s.log"]));
        assert!(
            args.windows(2)
                .any(|w| w == ["-append", full.cmdline.as_str()])
        );
        assert!(
            cfg.scenario("nope")
                .unwrap_err()
                .to_string()
                .contains("have:")
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let base = r#"
default_scenario = "a"
[defaults]
cpu = "cortex-a72"
smp = 1
memory = "1G"
timeout = 5
[machines.m]
machine = "virt"
"#;
        let ok =
            format!("{base}[scenarios.a]\ndescription = \"\"\nmachine = \"m\"\nexpect = \"ok\"\n");
        assert!(Config::parse(&ok).is_ok());
        let bad_machine = ok.replace("machine = \"m\"\nexpect", "machine = \"x\"\nexpect");
        assert!(
            Config::parse(&bad_machine)
                .unwrap_err()
                .to_string()
                .contains("unknown machine")
        );
        let bad_pattern = format!("{ok}events = [\"boot el\"]\n");
        assert!(Config::parse(&bad_pattern).is_err());
        let reason_without_fail = format!("{ok}reason = \"x\"\n");
        assert!(Config::parse(&reason_without_fail).is_err());
        let typo = format!("{ok}tset = true\n");
        assert!(Config::parse(&typo).is_err());
        for nic in [
            r#"["-nic", "user"]"#,
            r#"["-device", "e1000,netdev=n0"]"#,
            r#"["-device", "virtio-net-pci"]"#,
        ] {
            let with_nic = format!("{ok}qemu_args = {nic}\n");
            assert!(
                Config::parse(&with_nic)
                    .unwrap_err()
                    .to_string()
                    .contains("option ROM"),
                "{nic}"
            );
        }
        let hook = format!("{ok}cmdline = \"catena.hyp_probes\"\n");
        assert!(
            Config::parse(&hook)
                .unwrap_err()
                .to_string()
                .contains("test hook")
        );
        assert!(Config::parse(&format!("{hook}hooks = true\n")).is_ok());
        let mmio_net = format!(
            "{ok}qemu_args = [\"-netdev\", \"user,id=n0\", \"-device\", \"virtio-net-device,netdev=n0\"]\n"
        );
        assert!(Config::parse(&mmio_net).is_ok());
    }

    #[test]
    fn u_boot_paths_rewrite_the_direct_boot() {
        let base = || -> Vec<String> {
            ["-M", "m", "-kernel", "Image", "-serial", "stdio"]
                .map(String::from)
                .to_vec()
        };
        let files = BootFiles {
            uboot: "u-boot.bin".into(),
            disk: "disk.img".into(),
            fit: Some("catena.itb".into()),
            dtb: Some("rpi.dtb".into()),
        };
        let mut v = base();
        boot_args(&mut v, BootPath::UbootFit, &files);
        assert!(v.windows(2).any(|w| w == ["-kernel", "catena.itb"]));
        assert!(
            v.windows(2)
                .any(|w| w == ["-fw_cfg", "name=opt/catena/bl33,file=u-boot.bin"])
        );
        assert!(
            v.windows(2)
                .any(|w| w == ["-drive", "if=pflash,unit=1,format=raw,file=disk.img"])
        );
        let mut r = base();
        boot_args(&mut r, BootPath::Raspi3b, &files);
        assert!(r.windows(2).any(|w| w == ["-kernel", "u-boot.bin"]));
        // The first UART (PL011) goes nowhere, the second (the mini-UART) is the console.
        assert!(
            r.windows(4)
                .any(|w| w == ["-serial", "null", "-serial", "stdio"])
        );
        assert!(r.windows(2).any(|w| w == ["-dtb", "rpi.dtb"]));
        assert!(
            r.windows(2)
                .any(|w| w == ["-drive", "if=sd,format=raw,file=disk.img"])
        );
    }
}
