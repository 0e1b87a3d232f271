//! Partition information descriptors (DEN0077A v1.0 table 8.25; v1.1/v1.2 table 6.1).
//! v1.0: 8 bytes (ID, execution contexts, properties). v1.1 and v1.2: 24 bytes, plus the UUID.

use crate::{FfaError, Uuid, V1_1, V1_2, Version};
use alloc::vec::Vec;

/// One partition as FFA_PARTITION_INFO_GET reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PartitionDesc {
    /// Partition ID.
    pub id: u16,
    /// Execution context count.
    pub exec_ctx: u16,
    /// Properties ([`crate::props`]).
    pub props: u32,
    /// UUID (zero unless the query was for the Nil UUID).
    pub uuid: Uuid,
}

/// Descriptor size for a caller at `v`.
pub fn desc_size(v: Version) -> usize {
    if v < V1_1 { 8 } else { 24 }
}

/// The properties a caller at `v` knows about: v1.0 defines bits 2:0, v1.1 bits 8:0, v1.2 10:0.
pub fn mask_props(v: Version, props: u32) -> u32 {
    if v < V1_1 {
        props & 0x7
    } else if v < V1_2 {
        props & 0x1ff
    } else {
        props & 0x7ff
    }
}

/// Writes descriptors for a caller at `v` into `out`; returns bytes written.
/// NO_MEMORY when they do not fit.
pub fn encode(v: Version, descs: &[PartitionDesc], out: &mut [u8]) -> Result<usize, FfaError> {
    let size = desc_size(v);
    let total = size.checked_mul(descs.len()).ok_or(FfaError::NoMemory)?;
    if total > out.len() {
        return Err(FfaError::NoMemory);
    }
    for (d, chunk) in descs.iter().zip(out.chunks_exact_mut(size)) {
        chunk[0..2].copy_from_slice(&d.id.to_le_bytes());
        chunk[2..4].copy_from_slice(&d.exec_ctx.to_le_bytes());
        chunk[4..8].copy_from_slice(&mask_props(v, d.props).to_le_bytes());
        if size == 24 {
            chunk[8..24].copy_from_slice(&d.uuid);
        }
    }
    Ok(total)
}

/// Reads `count` descriptors of `size` bytes (the size the callee reported; at least 8, and 24
/// to carry a UUID). Never reads past `buf`.
pub fn decode(buf: &[u8], count: usize, size: usize) -> Result<Vec<PartitionDesc>, FfaError> {
    if size < 8 {
        return Err(FfaError::InvalidParameters);
    }
    let total = count.checked_mul(size).ok_or(FfaError::InvalidParameters)?;
    if total > buf.len() {
        return Err(FfaError::InvalidParameters);
    }
    Ok(buf[..total]
        .chunks_exact(size)
        .map(|c| {
            let mut uuid = [0u8; 16];
            if size >= 24 {
                uuid.copy_from_slice(&c[8..24]);
            }
            PartitionDesc {
                id: u16::from_le_bytes([c[0], c[1]]),
                exec_ctx: u16::from_le_bytes([c[2], c[3]]),
                props: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                uuid,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::V1_0;

    const D: PartitionDesc = PartitionDesc {
        id: 0x8001,
        exec_ctx: 2,
        props: 0x301,
        uuid: [7; 16],
    };

    #[test]
    fn sizes_per_version() {
        let mut buf = [0u8; 64];
        assert_eq!(encode(V1_0, &[D, D], &mut buf), Ok(16));
        assert_eq!(
            &buf[0..8],
            &[0x01, 0x80, 2, 0, 0x01, 0, 0, 0],
            "v1.0 sees bits 2:0 only"
        );
        assert_eq!(encode(V1_2, &[D], &mut buf), Ok(24));
        assert_eq!(decode(&buf, 1, 24).unwrap(), [D]);
        assert_eq!(encode(V1_2, &[D; 3], &mut buf), Err(FfaError::NoMemory));
    }

    #[test]
    fn decode_is_bounded() {
        assert_eq!(decode(&[0u8; 10], 1, 24), Err(FfaError::InvalidParameters));
        assert_eq!(
            decode(&[0u8; 10], usize::MAX, 24),
            Err(FfaError::InvalidParameters)
        );
        assert_eq!(decode(&[0u8; 10], 1, 4), Err(FfaError::InvalidParameters));
        // A larger descriptor (v1.3's 48 bytes) is read by its reported size.
        let mut b = [0u8; 48];
        b[0] = 5;
        assert_eq!(decode(&b, 1, 48).unwrap()[0].id, 5);
    }
}
