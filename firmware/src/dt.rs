//! The DT at the start of DRAM: read it, and edit it for the normal world (dtoolkit's model
//! API: the in-place editor cannot add nodes).

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

/// Adds `/psci` (method "smc"), `enable-method = "psci"` on every CPU, and `/chosen/bootargs`
/// when given; writes the tree back into `slot`.
pub fn edit(slot: &mut [u8], bootargs: Option<&str>) -> Result<(), String> {
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
        let chosen = match tree.find_node_mut("/chosen") {
            Some(c) => c,
            None => tree
                .root
                .add_child_mut(DeviceTreeNode::new("chosen").map_err(|e| alloc::format!("{e:?}"))?),
        };
        chosen.remove_property("bootargs");
        chosen.add_property(prop("bootargs", args)?);
    }
    let out = tree.to_dtb();
    if out.len() > slot.len() {
        return Err(alloc::format!(
            "edited DT is {} bytes, the slot {}",
            out.len(),
            slot.len()
        ));
    }
    slot[..out.len()].copy_from_slice(&out);
    // The result must still be a tree the normal world can read.
    Platform::parse(&slot[..out.len()]).map_err(|e| alloc::format!("edited DT: {e}"))?;
    Ok(())
}
