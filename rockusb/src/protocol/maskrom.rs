//! MaskROM download framing for the 0x471 and 0x472 areas (docs/protocol.md §2.1).
//!
//! The BootROM takes each area as a stream of vendor control OUT transfers of at most
//! 4096 bytes, ending with a CRC-16/CCITT-FALSE of the payload, big-endian. It detects
//! the end of an area from a short transfer, which gives two edge cases:
//! - payload length ≡ 4095 (mod 4096): one zero byte is appended before the CRC, so the
//!   CRC never straddles two transfers;
//! - payload length ≡ 4094 (mod 4096): payload + CRC end exactly on a transfer boundary,
//!   so an extra 1-byte zero transfer marks the end.
//!
//! [`MaskromUpload`] is the host side; [`AreaReceiver`] is the device side used by the
//! virtual board. Both are pure byte logic.

use crc::{CRC_16_IBM_3740, Crc};

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no xorout), which the
/// `crc` catalogue calls CRC-16/IBM-3740.
pub const AREA_CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// The largest control transfer the BootROM accepts.
pub const MAX_TRANSFER: usize = 4096;

/// bmRequestType of every MaskROM download transfer: vendor, host-to-device, device.
pub const REQUEST_TYPE: u8 = 0x40;
/// bRequest of every MaskROM download transfer.
pub const REQUEST: u8 = 0x0C;

/// The two BootROM download areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// 0x471: SRAM, for the DDR init blob, which runs and returns to the BootROM.
    Sram,
    /// 0x472: DRAM, for the usbplug or SPL, which the BootROM jumps to.
    Dram,
}

impl Area {
    /// The wIndex value that selects the area.
    pub fn index(self) -> u16 {
        match self {
            Area::Sram => 0x0471,
            Area::Dram => 0x0472,
        }
    }

    pub fn from_index(index: u16) -> Option<Area> {
        match index {
            0x0471 => Some(Area::Sram),
            0x0472 => Some(Area::Dram),
            _ => None,
        }
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:04x}", self.index())
    }
}

/// The setup fields of a control transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSetup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
}

/// One area payload framed for the BootROM.
#[derive(Debug, Clone)]
pub struct MaskromUpload {
    area: Area,
    /// Payload, the optional pad byte, then the CRC, big-endian.
    stream: Vec<u8>,
    /// True when the stream ends on a transfer boundary and needs a 1-byte terminator.
    needs_terminator: bool,
}

impl MaskromUpload {
    /// Frames `payload` for `area`. The payload is sent as given: container entries are
    /// already in wire form (docs/protocol.md §2.4); callers scramble raw blobs before
    /// framing.
    pub fn new(area: Area, payload: &[u8]) -> Self {
        let mut stream = Vec::with_capacity(payload.len() + 3);
        stream.extend_from_slice(payload);
        if payload.len() % MAX_TRANSFER == MAX_TRANSFER - 1 {
            stream.push(0);
        }
        let crc = AREA_CRC.checksum(&stream);
        stream.extend_from_slice(&crc.to_be_bytes());
        let needs_terminator = payload.len() % MAX_TRANSFER == MAX_TRANSFER - 2;
        MaskromUpload {
            area,
            stream,
            needs_terminator,
        }
    }

    pub fn area(&self) -> Area {
        self.area
    }

    pub fn setup(&self) -> ControlSetup {
        ControlSetup {
            request_type: REQUEST_TYPE,
            request: REQUEST,
            value: 0,
            index: self.area.index(),
        }
    }

    /// The data of each control transfer, in order.
    pub fn transfers(&self) -> impl Iterator<Item = &[u8]> {
        const TERMINATOR: &[u8] = &[0];
        self.stream
            .chunks(MAX_TRANSFER)
            .chain(self.needs_terminator.then_some(TERMINATOR))
    }

    /// Total bytes put on the wire, for progress.
    pub fn wire_len(&self) -> usize {
        self.stream.len() + usize::from(self.needs_terminator)
    }
}

/// What the device side makes of a completed area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AreaOutcome {
    /// The trailing CRC matched; the payload (with any pad byte) is accepted.
    Accepted(Vec<u8>),
    /// The CRC did not match (or the area was too short to hold one).
    BadCrc { stored: Option<u16>, computed: u16 },
}

/// Device-side reassembly of one area from its control transfers.
#[derive(Debug, Default, Clone)]
pub struct AreaReceiver {
    buffer: Vec<u8>,
}

impl AreaReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received so far in the current area.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Takes one control transfer. A short transfer ends the area: returns its outcome.
    pub fn push(&mut self, transfer: &[u8]) -> Option<AreaOutcome> {
        if transfer.len() == MAX_TRANSFER {
            self.buffer.extend_from_slice(transfer);
            return None;
        }
        // A 1-byte transfer after a whole number of full transfers is the terminator of a
        // payload ≡ 4094 (mod 4096); it is not data. A framed stream never ends in a
        // 1-byte data transfer, because payload ≡ 4095 is padded to a multiple of 4096.
        let is_terminator = transfer.len() == 1 && !self.buffer.is_empty();
        if !is_terminator {
            self.buffer.extend_from_slice(transfer);
        }
        let mut stream = std::mem::take(&mut self.buffer);
        Some(Self::check(&mut stream))
    }

    fn check(stream: &mut Vec<u8>) -> AreaOutcome {
        if stream.len() < 2 {
            return AreaOutcome::BadCrc {
                stored: None,
                computed: AREA_CRC.checksum(stream),
            };
        }
        let payload_len = stream.len() - 2;
        let stored = u16::from_be_bytes([stream[payload_len], stream[payload_len + 1]]);
        let computed = AREA_CRC.checksum(&stream[..payload_len]);
        if stored == computed {
            stream.truncate(payload_len);
            AreaOutcome::Accepted(std::mem::take(stream))
        } else {
            AreaOutcome::BadCrc {
                stored: Some(stored),
                computed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(len: usize) -> Vec<usize> {
        let payload = vec![0xA5u8; len];
        MaskromUpload::new(Area::Dram, &payload)
            .transfers()
            .map(<[u8]>::len)
            .collect()
    }

    #[test]
    fn crc16_check_value() {
        assert_eq!(AREA_CRC.checksum(b"123456789"), 0x29B1);
    }

    #[test]
    fn transfer_lengths_at_the_edges() {
        assert_eq!(lengths(4094), vec![4096, 1]);
        assert_eq!(lengths(4095), vec![4096, 2]);
        assert_eq!(lengths(4096), vec![4096, 2]);
        assert_eq!(lengths(4097), vec![4096, 3]);
        assert_eq!(lengths(2048), vec![2050]);
        assert_eq!(lengths(8190), vec![4096, 4096, 1]);
    }

    #[test]
    fn len_4095_pads_one_zero_before_the_crc_byte_for_byte() {
        let payload: Vec<u8> = (0..4095u32).map(|i| (i * 7) as u8).collect();
        let upload = MaskromUpload::new(Area::Sram, &payload);
        let transfers: Vec<&[u8]> = upload.transfers().collect();
        let mut padded = payload.clone();
        padded.push(0);
        let crc = AREA_CRC.checksum(&padded).to_be_bytes();
        assert_eq!(transfers[0], &padded[..]);
        assert_eq!(transfers[1], &crc[..]);
        assert_eq!(upload.wire_len(), 4098);
    }

    #[test]
    fn len_4094_sends_crc_in_the_full_transfer_then_a_zero_byte() {
        let payload: Vec<u8> = (0..4094u32).map(|i| (i * 13) as u8).collect();
        let upload = MaskromUpload::new(Area::Sram, &payload);
        let transfers: Vec<&[u8]> = upload.transfers().collect();
        let crc = AREA_CRC.checksum(&payload).to_be_bytes();
        assert_eq!(&transfers[0][..4094], &payload[..]);
        assert_eq!(&transfers[0][4094..], &crc[..]);
        assert_eq!(transfers[1], &[0u8][..]);
    }

    #[test]
    fn setup_fields() {
        let setup = MaskromUpload::new(Area::Sram, b"x").setup();
        assert_eq!(
            setup,
            ControlSetup {
                request_type: 0x40,
                request: 0x0C,
                value: 0,
                index: 0x471
            }
        );
        assert_eq!(MaskromUpload::new(Area::Dram, b"x").setup().index, 0x472);
    }

    #[test]
    fn receiver_reassembles_every_edge_case() {
        for len in [
            1usize, 2, 2048, 4093, 4094, 4095, 4096, 4097, 8190, 8191, 12288,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let upload = MaskromUpload::new(Area::Dram, &payload);
            let mut rx = AreaReceiver::new();
            let mut outcome = None;
            for t in upload.transfers() {
                assert!(outcome.is_none(), "area ended early at len {len}");
                outcome = rx.push(t);
            }
            let mut expected = payload.clone();
            if len % 4096 == 4095 {
                expected.push(0);
            }
            assert_eq!(outcome, Some(AreaOutcome::Accepted(expected)), "len {len}");
        }
    }

    #[test]
    fn receiver_reports_a_corrupt_area() {
        let upload = MaskromUpload::new(Area::Dram, &[1u8; 5000]);
        let mut transfers: Vec<Vec<u8>> = upload.transfers().map(<[u8]>::to_vec).collect();
        transfers[0][100] ^= 0xFF;
        let mut rx = AreaReceiver::new();
        let outcome = transfers.iter().find_map(|t| rx.push(t));
        assert!(matches!(outcome, Some(AreaOutcome::BadCrc { .. })));
    }
}
