//! Bounds-checked little-endian reads from untrusted bytes.

/// `len` bytes at `offset`, or `None` when they run past the end (or overflow).
pub fn slice_at(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    data.get(offset..offset.checked_add(len)?)
}

/// Fixed-size array at `offset`.
pub fn array_at<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    slice_at(data, offset, N)?.try_into().ok()
}

/// u8 at `offset`.
pub fn u8_at(data: &[u8], offset: usize) -> Option<u8> {
    data.get(offset).copied()
}

/// Little-endian u16 at `offset`.
pub fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    array_at(data, offset).map(u16::from_le_bytes)
}

/// Little-endian u32 at `offset`.
pub fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    array_at(data, offset).map(u32::from_le_bytes)
}

/// Little-endian u64 at `offset`.
pub fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    array_at(data, offset).map(u64::from_le_bytes)
}

/// Lowercase hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` rounded up to a multiple of `align` (a power of two or any non-zero value).
pub fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}
