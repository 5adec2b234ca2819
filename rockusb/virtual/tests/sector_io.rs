//! The sector-I/O loop against a virtual NanoPi M6 whose loader refuses large commands.

use rockusb::client::Client;
use rockusb::discovery::{BoardInfo, Bus};
use rockusb::ops::boot::{self, BootPlan};
use rockusb::ops::sector_io::SectorIo;
use rockusb::protocol::{CommandBlock, Opcode, StorageKind};
use rockusb::transport::{Transport, TransportError};
use rockusb_virtual::config::MIB;
use rockusb_virtual::{BoardConfig, VirtualBoard, VirtualBus};
use std::path::Path;

const NAME: &str = "m6";

/// Creates the board in `root` with an eMMC of `emmc_bytes` and boots the stand-in loader.
fn booted(root: &Path, emmc_bytes: u64) -> (Bus, BoardInfo) {
    VirtualBoard::open_or_create(&root.join(NAME), || BoardConfig {
        emmc_bytes,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    let bus = Bus::new(VirtualBus::new(root.to_path_buf(), vec![NAME.into()]));
    let board = bus.scan().unwrap().remove(0);
    let soc = rockusb_loaders::soc::by_name("RK3588").unwrap();
    let container =
        rockusb_loaders::LoaderContainer::parse(&rockusb_loaders::standin::build(soc)).unwrap();
    let plan = BootPlan::from_container(&container);
    let up = boot::boot(&bus, &board, &plan, &mut rockusb::ops::Quiet).unwrap();
    (bus, up)
}

/// The same board, opened directly to inspect its storage.
fn open_board(root: &Path) -> VirtualBoard {
    VirtualBoard::open(&root.join(NAME)).unwrap()
}

/// A loader that stalls write commands longer than `limit` sectors, as a loader with
/// a small buffer would.
struct SmallBuffer {
    inner: Box<dyn Transport>,
    limit: u16,
    refusing: bool,
}

impl Transport for SmallBuffer {
    fn control_out(
        &mut self,
        setup: rockusb::protocol::ControlSetup,
        data: &[u8],
    ) -> Result<usize, TransportError> {
        self.inner.control_out(setup, data)
    }
    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        if self.refusing {
            return Err(TransportError::Stall);
        }
        if let Ok(cbw) = CommandBlock::parse(data) {
            if cbw.opcode() == Some(Opcode::WriteLba) && cbw.length() > self.limit {
                self.refusing = true;
                return Err(TransportError::Stall);
            }
        }
        self.inner.bulk_out(data)
    }
    fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.inner.bulk_in(buf)
    }
    fn recover(&mut self) -> Result<(), TransportError> {
        self.refusing = false;
        self.inner.recover()
    }
}

#[test]
fn a_refused_size_falls_back_to_smaller_commands_and_the_bytes_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, board) = booted(dir.path(), 64 * MIB);
    let mut client = Client::new(SmallBuffer {
        inner: bus.open(&board.port_path).unwrap(),
        limit: 1024,
        refusing: false,
    });
    let data: Vec<u8> = (0..3 * MIB as usize).map(|i| (i / 512) as u8 | 1).collect();
    let mut io = SectorIo::new(&mut client, 8192);
    io.write(MIB, &data).unwrap();
    assert_eq!(io.command_sectors(), 1024);
    assert_eq!(io.fallbacks, vec![(8192, 4096), (4096, 2048), (2048, 1024)]);
    let mut back = vec![0u8; data.len()];
    io.read(MIB, &mut back).unwrap();
    assert_eq!(back, data);
    drop(client);
    let mut board = open_board(dir.path());
    assert_eq!(
        board
            .read_storage(StorageKind::Emmc, MIB, data.len())
            .unwrap(),
        data
    );
}
