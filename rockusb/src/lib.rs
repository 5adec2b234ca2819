//! rockusb
