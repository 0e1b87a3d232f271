//! The register frame every Catena exception vector saves — the kernel's (EL1), the hyp's
//! (EL2) and the firmware's (EL3) — and the assembly that builds it (`src/frame.S`, included
//! by each image with `global_asm!(include_str!(...))`), so the layout exists once.
#![no_std]
#![forbid(unsafe_code)]

/// Saved registers, as `frame.S` lays them out.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    /// x0–x30.
    pub x: [u64; 31],
    /// ELR_ELx.
    pub elr: u64,
    /// SPSR_ELx.
    pub spsr: u64,
    _pad: u64,
}

/// The frame's size; `frame.S` hard-codes it.
pub const FRAME_SIZE: usize = 272;
const _: () = assert!(size_of::<Frame>() == FRAME_SIZE);

/// Vector numbers (offset / 0x80) in a VBAR_ELx table.
pub mod vector {
    /// Current EL with SPx, synchronous.
    pub const SYNC_CURRENT_SPX: u64 = 4;
    /// Current EL with SPx, IRQ.
    pub const IRQ_CURRENT_SPX: u64 = 5;
    /// Lower EL in AArch64, synchronous.
    pub const SYNC_LOWER_A64: u64 = 8;
    /// IRQ taken from a lower EL in AArch64 (a process at EL0 was interrupted).
    pub const IRQ_LOWER_A64: u64 = 9;
}
