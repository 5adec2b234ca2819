//! libusb-1.0 stand-in for virtual boards.
