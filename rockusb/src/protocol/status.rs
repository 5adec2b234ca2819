//! Status blocks (the 13-byte CSW): "USBS", the echoed tag, a residue and a status byte.
//!
//! The residue is not trusted (docs/protocol.md §3.2): vendor U-Boot writes it
//! little-endian, mainline U-Boot big-endian, and the RK3588 usbplug puts the reply length
//! there. Only the signature, the tag and the status decide the outcome.

use super::ProtocolError;

pub const STATUS_BLOCK_LEN: usize = 13;
const SIGNATURE: &[u8; 4] = b"USBS";

/// The status byte of a status block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Failed,
    PhaseError,
}

impl Status {
    fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            0 => Ok(Status::Good),
            1 => Ok(Status::Failed),
            2 => Ok(Status::PhaseError),
            other => Err(ProtocolError::UnknownStatus(other)),
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Status::Good => 0,
            Status::Failed => 1,
            Status::PhaseError => 2,
        }
    }
}

/// A parsed status block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandStatus {
    pub tag: u32,
    /// The raw residue bytes, kept for diagnostics only.
    pub residue_raw: [u8; 4],
    pub status: Status,
}

impl CommandStatus {
    /// A status block as a device builds it; `residue_raw` is written as given.
    pub fn new(tag: u32, residue_raw: [u8; 4], status: Status) -> Self {
        CommandStatus {
            tag,
            residue_raw,
            status,
        }
    }

    pub fn to_bytes(&self) -> [u8; STATUS_BLOCK_LEN] {
        let mut out = [0u8; STATUS_BLOCK_LEN];
        out[0..4].copy_from_slice(SIGNATURE);
        out[4..8].copy_from_slice(&self.tag.to_le_bytes());
        out[8..12].copy_from_slice(&self.residue_raw);
        out[12] = self.status.to_byte();
        out
    }

    /// Parses a status block and checks it answers the command with `expected_tag`.
    pub fn parse(bytes: &[u8], expected_tag: u32) -> Result<Self, ProtocolError> {
        let bytes: &[u8; STATUS_BLOCK_LEN] = bytes
            .try_into()
            .map_err(|_| ProtocolError::StatusLength { got: bytes.len() })?;
        let signature = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if &signature != SIGNATURE {
            return Err(ProtocolError::StatusSignature(signature));
        }
        let tag = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if tag != expected_tag {
            return Err(ProtocolError::TagMismatch {
                expected: expected_tag,
                got: tag,
            });
        }
        Ok(CommandStatus {
            tag,
            residue_raw: [bytes[8], bytes[9], bytes[10], bytes[11]],
            status: Status::from_byte(bytes[12])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csw(tag: u32, status: u8) -> Vec<u8> {
        let mut v = b"USBS".to_vec();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&[0, 0, 0x02, 0x00]);
        v.push(status);
        v
    }

    #[test]
    fn parses_good_failed_and_phase_error() {
        assert_eq!(
            CommandStatus::parse(&csw(9, 0), 9).unwrap().status,
            Status::Good
        );
        assert_eq!(
            CommandStatus::parse(&csw(9, 1), 9).unwrap().status,
            Status::Failed
        );
        assert_eq!(
            CommandStatus::parse(&csw(9, 2), 9).unwrap().status,
            Status::PhaseError
        );
    }

    #[test]
    fn rejects_wrong_tag_short_read_bad_signature_and_unknown_status() {
        assert_eq!(
            CommandStatus::parse(&csw(8, 0), 9),
            Err(ProtocolError::TagMismatch {
                expected: 9,
                got: 8
            })
        );
        assert_eq!(
            CommandStatus::parse(&csw(9, 0)[..12], 9),
            Err(ProtocolError::StatusLength { got: 12 })
        );
        let mut bad = csw(9, 0);
        bad[3] = b'C';
        assert!(matches!(
            CommandStatus::parse(&bad, 9),
            Err(ProtocolError::StatusSignature(_))
        ));
        assert_eq!(
            CommandStatus::parse(&csw(9, 3), 9),
            Err(ProtocolError::UnknownStatus(3))
        );
    }

    #[test]
    fn residue_does_not_affect_the_outcome() {
        let mut block = csw(1, 0);
        block[8..12].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        let parsed = CommandStatus::parse(&block, 1).unwrap();
        assert_eq!(parsed.status, Status::Good);
        assert_eq!(CommandStatus::parse(&parsed.to_bytes(), 1).unwrap(), parsed);
    }
}
