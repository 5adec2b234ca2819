//! RC4 with Rockchip's fixed key, the scrambling used by the BootROM and loader files.
//!
//! Two framings exist and mixing them up is the classic cause of a board that
//! silently ignores an upload:
//! * one continuous keystream over a whole 471/472 payload ([`rc4_stream`]);
//! * a fresh keystream for every 512-byte block of a loader entry ([`rc4_blocks`]).
//!
//! RC4 is its own inverse, so the same functions encode and decode.

/// The 16-byte key used by every Rockchip tool (boot_merger, rkdeveloptool, xrock, mkimage).
pub const RC4_KEY: [u8; 16] = [
    0x7c, 0x4e, 0x03, 0x04, 0x55, 0x05, 0x09, 0x07, 0x2d, 0x2c, 0x7b, 0x38, 0x17, 0x0d, 0x17, 0x11,
];

/// Block size of the per-block framing used for loader entries and the old ID block.
pub const RC4_BLOCK: usize = 512;

/// An RC4 keystream generator.
#[derive(Clone)]
pub struct Rc4 {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// Key schedule for `key` (must not be empty).
    pub fn new(key: &[u8]) -> Self {
        let mut state = [0u8; 256];
        for (n, s) in state.iter_mut().enumerate() {
            *s = n as u8;
        }
        let mut j: u8 = 0;
        for n in 0..256 {
            j = j.wrapping_add(state[n]).wrapping_add(key[n % key.len()]);
            state.swap(n, j as usize);
        }
        Rc4 { state, i: 0, j: 0 }
    }

    /// A generator keyed with [`RC4_KEY`].
    pub fn rockchip() -> Self {
        Self::new(&RC4_KEY)
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.state[self.i as usize]);
            self.state.swap(self.i as usize, self.j as usize);
            let k = self.state[self.i as usize].wrapping_add(self.state[self.j as usize]);
            *byte ^= self.state[k as usize];
        }
    }
}

/// Encodes (or decodes) `data` as one continuous keystream, in place.
pub fn rc4_stream_in_place(data: &mut [u8]) {
    Rc4::rockchip().apply(data);
}

/// Encodes (or decodes) `data` as one continuous keystream.
pub fn rc4_stream(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    rc4_stream_in_place(&mut out);
    out
}

/// Encodes (or decodes) every 512-byte block of `data` with a fresh keystream, in place.
/// A final short block gets a keystream of its own length.
pub fn rc4_blocks_in_place(data: &mut [u8]) {
    for block in data.chunks_mut(RC4_BLOCK) {
        Rc4::rockchip().apply(block);
    }
}

/// Encodes (or decodes) every 512-byte block of `data` with a fresh keystream.
pub fn rc4_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    rc4_blocks_in_place(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_keystream_bytes_match_the_published_value() {
        let keystream = rc4_stream(&[0u8; 16]);
        let hex: String = keystream.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "6e262cf3be9f9d51ea3034ce20511f98");
    }

    #[test]
    fn stream_and_blocks_agree_on_the_first_block_only() {
        let data = vec![0u8; 1024];
        let stream = rc4_stream(&data);
        let blocks = rc4_blocks(&data);
        assert_eq!(stream[..512], blocks[..512]);
        assert_ne!(stream[512..], blocks[512..]);
        // Per-block framing restarts the keystream.
        assert_eq!(blocks[..512], blocks[512..]);
    }

    #[test]
    fn applying_twice_restores_the_input() {
        let data: Vec<u8> = (0..3000u32).map(|n| (n * 7 + 3) as u8).collect();
        assert_eq!(rc4_stream(&rc4_stream(&data)), data);
        assert_eq!(rc4_blocks(&rc4_blocks(&data)), data);
    }
}
