//! The firmware's DT: read the one QEMU puts at the start of DRAM, and edit it for the normal
//! world (dtoolkit's model API: the in-place editor cannot add nodes).
//!
//! Owns: what the firmware adds or changes in the tree, and the check that the result still
//! parses. Must not: touch memory (the firmware hands it the slot as a slice).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec;
use dtinfo::Platform;
use dtoolkit::Node;
use dtoolkit::fdt::Fdt;
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

/// Reads the DT in `slot` (validated by dtinfo), first removing any FDT_NOP tokens in place
/// (EL3 runs with its MMU off: no cache maintenance is owed for the writes). Returns the
/// platform and how many NOPs were removed.
pub fn read(slot: &mut [u8]) -> Result<(Platform, usize), String> {
    let total = total_size(slot)?;
    let nops = dtinfo::strip_nops(&mut slot[..total]).map_err(|e| e.to_string())?;
    let p = Platform::parse(&slot[..total]).map_err(|e| e.to_string())?;
    Ok((p, nops))
}

fn total_size(slot: &[u8]) -> Result<usize, String> {
    let h = slot.get(..8).ok_or("DTB slot too small")?;
    let total = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if total > slot.len() || total < 40 {
        return Err(alloc::format!(
            "DTB totalsize {total} does not fit its {}-byte slot",
            slot.len()
        ));
    }
    Ok(total)
}

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, v: T) -> Result<DeviceTreeProperty, String> {
    DeviceTreeProperty::new(name, v).map_err(|e| alloc::format!("property {name}: {e:?}"))
}

/// Where the TPM service's CRB is and which TIS node it took over.
pub struct TpmEdit<'a> {
    /// The CRB pages (base, size) in normal-world RAM.
    pub crb: (u64, u64),
    /// The TIS node's path: the secure world's from now on.
    pub tis_path: &'a str,
    /// The measured-boot event log (base, size), named on the TPM node as Linux reads it
    /// (`linux,sml-base`, `linux,sml-size`: tpm-common.yaml) and reserved (mappable: Linux
    /// copies it through its linear map).
    pub event_log: Option<(u64, u64)>,
}

/// The project-local compatible of the TPM reached through DEN0138 (no upstream DT binding
/// for a CRB TPM exists; Linux finds one through ACPI's TPM2 table). Documented in
/// `docs/tpm.md`: `reg` is the CRB (one 4 KiB page per locality), the FF-A partition is found
/// by the DEN0138 UUID.
pub const TPM_CRB_FFA_COMPATIBLE: &str = "catena,tpm-crb-ffa";

/// The project-local compatible of the shared buffer the UEFI variable partition reads MM
/// communicate messages from (no upstream binding: U-Boot fixes it at build time with
/// `FFA_SHARED_MM_BUF_ADDR`, Trusted Services in the partition's manifest). Documented in
/// `docs/uefi-variables.md`: `reg` is the buffer; the partition is found by its UUID.
pub const MM_BUFFER_COMPATIBLE: &str = "catena,ffa-mm-buffer";

/// `reg` for (base, size) with two address and two size cells.
fn reg2(base: u64, size: u64) -> [u32; 4] {
    [
        (base >> 32) as u32,
        base as u32,
        (size >> 32) as u32,
        size as u32,
    ]
}

/// The TPM's part of the edit: the CRB reserved (mappable: the OS must not allocate it but
/// reaches it, so no `no-map`, per the reserved-memory binding), a node naming it, and the TIS
/// node made secure-only (`status = "disabled"`, `secure-status = "okay"`: DT spec §2.3.4 and
/// Linux's `bindings/arm/secure.txt`).
fn edit_tpm(tree: &mut DeviceTree, t: &TpmEdit) -> Result<(), String> {
    let (base, size) = t.crb;
    let err = |e| alloc::format!("{e:?}");
    reserve_mapped(tree, "tpm-crb", base, size)?;
    let name = alloc::format!("tpm@{base:x}");
    tree.root.remove_child(&name);
    let mut node = DeviceTreeNode::builder(name.as_str())
        .map_err(err)?
        .property(prop("compatible", TPM_CRB_FFA_COMPATIBLE)?)
        .property(prop("reg", reg2(base, size))?);
    if let Some((log, log_size)) = t.event_log {
        reserve_mapped(tree, "tpm-event-log", log, log_size)?;
        let log_size = u32::try_from(log_size).map_err(|_| "event log larger than 4 GiB")?;
        node = node
            .property(prop("linux,sml-base", [(log >> 32) as u32, log as u32])?)
            .property(prop("linux,sml-size", log_size)?);
    }
    tree.root.add_child(node.build());
    let tis = tree
        .find_node_mut(t.tis_path)
        .ok_or_else(|| alloc::format!("TIS node {} vanished", t.tis_path))?;
    tis.remove_property("status");
    tis.add_property(prop("status", "disabled")?);
    tis.remove_property("secure-status");
    tis.add_property(prop("secure-status", "okay")?);
    Ok(())
}

/// The variable partition's shared buffer: reserved (mappable) and named by its compatible.
fn edit_mm_buffer(tree: &mut DeviceTree, (base, size): (u64, u64)) -> Result<(), String> {
    reserve_mapped(tree, "mm-buffer", base, size)?;
    let name = alloc::format!("mm-buffer@{base:x}");
    tree.root.remove_child(&name);
    tree.root.add_child(
        DeviceTreeNode::builder(name.as_str())
            .map_err(|e| alloc::format!("{e:?}"))?
            .property(prop("compatible", MM_BUFFER_COMPATIBLE)?)
            .property(prop("reg", reg2(base, size))?)
            .build(),
    );
    Ok(())
}

/// A `/reserved-memory` entry without `no-map`: the OS must not allocate the range but may
/// map it (the reserved-memory binding).
fn reserve_mapped(tree: &mut DeviceTree, what: &str, base: u64, size: u64) -> Result<(), String> {
    use dtoolkit::Property;
    let cells = |name: &str| {
        tree.root
            .property(name)
            .and_then(|p| p.value_as::<u32>().ok())
    };
    if cells("#address-cells") != Some(2) || cells("#size-cells") != Some(2) {
        return Err(alloc::format!(
            "root cells are not 2/2: cannot describe the {what}"
        ));
    }
    let err = |e| alloc::format!("{e:?}");
    let name = alloc::format!("{what}@{base:x}");
    let resv = match tree.find_node_mut("/reserved-memory") {
        Some(r) => r,
        None => tree.root.add_child_mut(
            DeviceTreeNode::builder("reserved-memory")
                .map_err(err)?
                .property(prop("#address-cells", 2u32)?)
                .property(prop("#size-cells", 2u32)?)
                .property(prop("ranges", &[][..] as &[u8])?)
                .build(),
        ),
    };
    resv.remove_child(&name);
    resv.add_child(
        DeviceTreeNode::builder(name.as_str())
            .map_err(err)?
            .property(prop("reg", reg2(base, size))?)
            .build(),
    );
    Ok(())
}

/// QEMU virt's MM communicate buffer for the variable partition (normal-world RAM after the
/// TPM's CRB, below the kernel's 2 MiB boundary), which [`edit`] reserves and names.
pub const VIRT_MM_BUFFER: (u64, u64) = (0x4012_0000, 0x4_0000);

/// Adds `/psci` (method "smc"), `enable-method = "psci"` on every CPU, `/chosen/bootargs`
/// when given, the TPM service's CRB when there is one, and the variable partition's MM
/// buffer (base, size) when there is one; writes the tree back into `slot`.
pub fn edit(
    slot: &mut [u8],
    bootargs: Option<&str>,
    tpm: Option<&TpmEdit>,
    mm_buffer: Option<(u64, u64)>,
) -> Result<(), String> {
    let total = total_size(slot)?;
    let fdt = Fdt::new(&slot[..total]).map_err(|e| alloc::format!("dtoolkit: {e:?}"))?;
    let mut tree = DeviceTree::from_fdt(&fdt);
    // PSCI binding (Documentation/devicetree/bindings/arm/psci.yaml): 1.0 with 0.2 fallback.
    tree.root.remove_child("psci");
    let psci = DeviceTreeNode::builder("psci")
        .map_err(|e| alloc::format!("{e:?}"))?
        .property(prop("compatible", vec!["arm,psci-1.0", "arm,psci-0.2"])?)
        .property(prop("method", "smc")?)
        .build();
    tree.root.add_child(psci);
    let cpus = tree.find_node_mut("/cpus").ok_or("DT has no /cpus")?;
    for cpu in cpus.children_mut() {
        if cpu.name().starts_with("cpu@") {
            cpu.remove_property("enable-method");
            cpu.add_property(prop("enable-method", "psci")?);
        }
    }
    if let Some(args) = bootargs {
        let chosen = chosen_mut(&mut tree)?;
        chosen.remove_property("bootargs");
        chosen.add_property(prop("bootargs", args)?);
    }
    if let Some(t) = tpm {
        edit_tpm(&mut tree, t)?;
    }
    if let Some(b) = mm_buffer {
        edit_mm_buffer(&mut tree, b)?;
    }
    write_back(&tree, slot).map(|_| ())
}

/// `/chosen`, made if the tree has none.
fn chosen_mut(tree: &mut DeviceTree) -> Result<&mut DeviceTreeNode, String> {
    if tree.find_node_mut("/chosen").is_none() {
        tree.root
            .add_child(DeviceTreeNode::new("chosen").map_err(|e| alloc::format!("{e:?}"))?);
    }
    tree.find_node_mut("/chosen")
        .ok_or_else(|| "no /chosen".into())
}

/// Writes `tree` into `slot` and reads it back: the result must still be a tree the normal
/// world can read.
fn write_back(tree: &DeviceTree, slot: &mut [u8]) -> Result<Platform, String> {
    let out = tree.to_dtb();
    if out.len() > slot.len() {
        return Err(alloc::format!(
            "edited DT is {} bytes, the slot {}",
            out.len(),
            slot.len()
        ));
    }
    slot[..out.len()].copy_from_slice(&out);
    Platform::parse(&slot[..out.len()]).map_err(|e| alloc::format!("edited DT: {e}"))
}

/// Names the initramfs the firmware loaded in `/chosen` (`linux,initrd-start` and
/// `linux,initrd-end`, two cells each, as Linux reads them), writing the tree back into `slot`.
pub fn set_initrd(slot: &mut [u8], base: u64, size: u64) -> Result<(), String> {
    let end = base.checked_add(size).ok_or("initrd wraps")?;
    let total = total_size(slot)?;
    let fdt = Fdt::new(&slot[..total]).map_err(|e| alloc::format!("dtoolkit: {e:?}"))?;
    let mut tree = DeviceTree::from_fdt(&fdt);
    let chosen = chosen_mut(&mut tree)?;
    for (name, v) in [("linux,initrd-start", base), ("linux,initrd-end", end)] {
        chosen.remove_property(name);
        chosen.add_property(prop(name, [(v >> 32) as u32, v as u32])?);
    }
    let p = write_back(&tree, slot)?;
    if p.initrd.map(|r| (r.base, r.size)) != Some((base, size)) {
        return Err("the edited DT does not name the initrd".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
