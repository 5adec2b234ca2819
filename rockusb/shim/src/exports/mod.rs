//! The exported libusb-1.0 functions, grouped by what they act on. Every one that can
//! fail returns a libusb error code; none lets a panic reach C.

pub mod context;
pub mod enumerate;
pub mod handle;
pub mod transfer;
