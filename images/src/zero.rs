//! Finding all-zero data fast.
//!
//! Decoded images are mostly zeros and every byte of them passes through here, so the
//! test reads 64-bit words, 64 bytes per step with no branch inside the step (the
//! compiler turns it into vector loads and ORs); a byte loop is an order of magnitude
//! slower (see `benches/plan_throughput.rs`).

const STEP: usize = 64;

/// True when every byte of `data` is zero.
pub fn is_zero(data: &[u8]) -> bool {
    let mut steps = data.chunks_exact(STEP);
    for step in steps.by_ref() {
        if or_words(step) != 0 {
            return false;
        }
    }
    let rest = steps.remainder();
    let mut words = rest.chunks_exact(8);
    let mut acc = 0u64;
    for w in words.by_ref() {
        acc |= u64::from_ne_bytes(w.try_into().unwrap_or([0xff; 8]));
    }
    acc == 0 && words.remainder().iter().all(|&b| b == 0)
}

#[inline(always)]
fn or_words(step: &[u8]) -> u64 {
    step.chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([0xff; 8])))
        .fold(0, |a, w| a | w)
}

#[cfg(test)]
mod tests {
    use super::is_zero;

    #[test]
    fn finds_a_single_non_zero_byte_anywhere() {
        for len in [0usize, 1, 7, 8, 63, 64, 65, 200, 4096] {
            let mut data = vec![0u8; len];
            assert!(is_zero(&data), "len {len}");
            for at in 0..len {
                data[at] = 0x10;
                assert!(!is_zero(&data), "len {len}, non-zero at {at}");
                data[at] = 0;
            }
        }
    }
}
