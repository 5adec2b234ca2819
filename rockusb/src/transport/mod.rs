//! Transports move the protocol's bytes: vendor control OUT transfers for MaskROM
//! downloads, and bulk OUT/IN transfers for commands. They know nothing of what the bytes mean.

#[cfg(feature = "libusb")]
pub mod usb;

use crate::protocol::ControlSetup;

/// A failed transfer, in libusb's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the transfer timed out")]
    Timeout,
    #[error("the device stalled the endpoint (refused the transfer)")]
    Stall,
    #[error("the device sent more data than was asked for")]
    Overflow,
    #[error("the device is gone (disconnected or re-enumerated)")]
    Disconnected,
    #[error(
        "the board dropped off the bus and came back in MaskROM: it was reset (power dip, \
         cable or hub), so its loader is gone"
    )]
    BackInMaskrom,
    #[error("permission denied opening the device")]
    Access,
    #[error("the device is busy: another program has claimed it")]
    Busy,
    /// Windows: libusb reaches a device only through the WinUSB driver (or libusbK), and
    /// this one has another driver or none (`usb::open_error` decides).
    #[error(
        "the board was found, but Windows has no WinUSB driver bound to it, so libusb cannot \
         open it (libusb said: {cause})"
    )]
    NoWinUsbDriver { vid: u16, pid: u16, cause: String },
    #[error("USB error: {0}")]
    Other(String),
}

/// What to do about an error that is the host's to fix, not the board's.
const UDEV_HINT: &str = "Install the udev rules (`rockusb udev | sudo tee \
     /etc/udev/rules.d/70-rockusb.rules`), then replug the board, or run as root";
const BUSY_HINT: &str =
    "Another program (rkdeveloptool, upgrade_tool, another rockusb) has claimed it; close it";

impl TransportError {
    /// The one place that says what the user can do about an error opening a board.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::Access => Some(UDEV_HINT.into()),
            TransportError::Busy => Some(BUSY_HINT.into()),
            TransportError::NoWinUsbDriver { vid, pid, .. } => Some(winusb_hint(*vid, *pid)),
            _ => None,
        }
    }
}

/// What to do when Windows has no libusb-capable driver on a board.
fn winusb_hint(vid: u16, pid: u16) -> String {
    format!(
        "Install the WinUSB driver for it with Zadig (https://zadig.akeo.ie): Options > List \
         All Devices, pick the device with USB ID {vid:04X} {pid:04X} ({vid:04x}:{pid:04x}), \
         choose WinUSB and press Install Driver (or Replace Driver), then replug the board. \
         Rockchip's DriverAssistant driver (for RKDevTool) is not libusb-compatible: rockusb \
         cannot use a board bound to it, so replace it with WinUSB. If WinUSB is installed \
         already, close any other program using the board (RKDevTool, another rockusb)"
    )
}

/// Moves bytes to and from one device.
pub trait Transport {
    /// A vendor control OUT transfer; returns the bytes accepted.
    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<usize, TransportError>;
    /// A bulk OUT transfer; returns the bytes sent.
    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError>;
    /// A bulk IN transfer into `buf`; returns the bytes received (may be short).
    fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError>;
    /// Recovers the bulk endpoints after a stall or a dropped command (clear halt / reset).
    fn recover(&mut self) -> Result<(), TransportError>;
    /// Overrides the base timeout of each transfer (`None` restores the default). Used to
    /// probe quickly: a BootROM never answers a command block.
    fn set_timeout(&mut self, _timeout: Option<std::time::Duration>) {}
    /// Opens the device again after it dropped off the bus and re-enumerated (a hub or
    /// cable glitch): same port path, new address, loader still running. Transports that
    /// cannot find their device again say [`TransportError::Disconnected`].
    fn reattach(&mut self) -> Result<(), TransportError> {
        Err(TransportError::Disconnected)
    }
}

/// A reference to a transport, or a boxed one, is a transport too.
macro_rules! forward_transport {
    ($holder:ty) => {
        impl<T: Transport + ?Sized> Transport for $holder {
            fn control_out(
                &mut self,
                setup: ControlSetup,
                data: &[u8],
            ) -> Result<usize, TransportError> {
                (**self).control_out(setup, data)
            }
            fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError> {
                (**self).bulk_out(data)
            }
            fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
                (**self).bulk_in(buf)
            }
            fn recover(&mut self) -> Result<(), TransportError> {
                (**self).recover()
            }
            fn set_timeout(&mut self, timeout: Option<std::time::Duration>) {
                (**self).set_timeout(timeout)
            }
            fn reattach(&mut self) -> Result<(), TransportError> {
                (**self).reattach()
            }
        }
    };
}

forward_transport!(&mut T);
forward_transport!(Box<T>);
