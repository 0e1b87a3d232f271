//! QEMU virt with secure=on: the few facts a platform port fixes (as TF-A's
//! `plat/qemu/qemu/include/platform_def.h` does). Everything else comes from the DT.

/// QEMU puts the DTB at the start of DRAM for `-bios` boots, in a 1 MiB slot
/// (`docs/system/arm/virt.rst`; measured: header totalsize 0x100000).
pub const DTB_ADDR: u64 = 0x4000_0000;
/// The DTB slot we may grow the tree into.
pub const DTB_SLOT: usize = 0x10_0000;
/// The secure UART (second `-serial`).
pub const SECURE_UART: usize = 0x0904_0000;
/// Where a raw BL33 from fw_cfg (`opt/catena/bl33`, U-Boot) is loaded and entered: far above
/// the DT slot, the carve-outs and U-Boot's default load addresses (`kernel_addr_r`
/// 0x4040_0000, `ramdisk_addr_r` 0x4400_0000); U-Boot relocates itself to the top of RAM.
pub const BL33_BASE: u64 = 0x6000_0000;
/// CPUs this port supports (Aff0 0..7, Aff1..3 zero).
pub const MAX_CPUS: usize = 8;
/// Per-CPU EL3 stack (matches the linker script).
pub const STACK_SIZE: usize = 0x8000;
/// The TPM service's CRB (five 4 KiB locality pages, DEN0138 §2): normal-world RAM between the
/// DT slot and the kernel (which lands on the next 2 MiB boundary), reserved in the DT.
pub const TPM_CRB: (u64, u64) = (DTB_ADDR + DTB_SLOT as u64, 0x5000);
/// QEMU virt's secure flash (flash0, `secflash@0`): where this image is loaded, and where the
/// variable store lives.
pub const SECURE_FLASH: (u64, u64) = (0, 0x0400_0000);
/// The variable store: flash0's last MiB (four 256 KiB blocks, two banks), above the image
/// (linker.ld checks the image stays below it).
pub const VARSTORE: (u32, u32) = (0x03F0_0000, 0x10_0000);
/// The variable partition's MM communicate buffer: normal-world RAM after the TPM's CRB, below
/// the kernel's 2 MiB boundary, reserved in the DT.
/// (Kept in `lib/fw-dt`, where `cargo xtask` finds it too when it edits a DT the way this
/// firmware does, for the FIT of the `uboot-fit` scenario.)
pub const MM_BUFFER: (u64, u64) = fw_dt::VIRT_MM_BUFFER;
/// The measured-boot event log handed to the normal world: after the MM buffer, below the
/// kernel's 2 MiB boundary, reserved in the DT and named on the TPM node.
pub const EVENT_LOG: (u64, u64) = (0x4016_0000, 0x1_0000);
