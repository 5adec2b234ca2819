//! The protocol client against the virtual NanoPi M6, in-process: boot, info, write,
//! read, erase, the two personalities, and the BootROM's failure behaviour.

use rockusb::client::{Client, CommandError};
use rockusb::discovery::{BoardMode, Bus};
use rockusb::ops::{self, boot::BootPlan};
use rockusb::protocol::{Area, MaskromUpload, StorageKind};
use rockusb::transport::{Transport, TransportError};
use rockusb_loaders::LoaderContainer;
use rockusb_virtual::{BoardConfig, Mode, Personality, VirtualBoard, VirtualBus};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn small_board(root: &Path, name: &str, personality: Personality) -> VirtualBoard {
    VirtualBoard::open_or_create(&root.join(name), || BoardConfig {
        personality,
        emmc_bytes: 64 * MIB,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap()
}

fn bus(root: &Path, name: &str) -> Bus {
    Bus::new(VirtualBus::new(root.to_path_buf(), vec![name.to_string()]))
}

fn standin() -> LoaderContainer {
    let soc = rockusb_loaders::soc::by_name("RK3588").unwrap();
    LoaderContainer::parse(&rockusb_loaders::standin::build(soc)).unwrap()
}

fn boot(bus: &Bus, plan: &BootPlan) -> rockusb::discovery::BoardInfo {
    let board = bus.scan().unwrap().remove(0);
    assert_eq!(board.mode, BoardMode::Maskrom);
    ops::boot::boot(bus, &board, plan, &mut ops::Quiet).unwrap()
}

fn client(bus: &Bus) -> Client<Box<dyn Transport>> {
    let port = bus.scan().unwrap().remove(0).port_path;
    Client::new(bus.open(&port).unwrap())
}

#[test]
fn boot_info_write_read_erase_reach_the_backing_storage() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");

    let up = boot(&bus, &BootPlan::from_container(&standin()));
    assert_eq!(up.mode, BoardMode::Loader);
    assert_eq!(up.port_path, "1-1");

    let mut c = client(&bus);
    assert_eq!(c.chip_info().unwrap().chip_name(), "RK3588");
    assert!(c.flash_id().unwrap().is_emmc());
    let info = c.flash_info().unwrap();
    assert_eq!(info.capacity_bytes(), 64 * MIB);
    assert!(c.capability().unwrap().direct_lba());
    assert_eq!(c.storage().unwrap().current(), Some(StorageKind::Emmc));

    let data: Vec<u8> = (0..3 * MIB as usize)
        .map(|i| (i * 2654435761) as u8)
        .collect();
    let mut src = &data[..];
    ops::storage_io::write(&mut c, 4096, data.len() as u64, &mut src, &mut ops::Quiet).unwrap();
    let mut back = Vec::new();
    ops::storage_io::read(
        &mut c,
        4096,
        data.len() as u64 / 512,
        &mut back,
        &mut ops::Quiet,
    )
    .unwrap();
    assert_eq!(back, data);
    drop(c);

    let mut board = VirtualBoard::open(&dir.path().join("m6")).unwrap();
    assert_eq!(
        board
            .read_storage(StorageKind::Emmc, 4096 * 512, data.len())
            .unwrap(),
        data
    );

    let mut c = client(&bus);
    ops::storage_io::erase(&mut c, 4096, 2048, &mut ops::Quiet).unwrap();
    let erased = board
        .read_storage(StorageKind::Emmc, 4096 * 512, MIB as usize)
        .unwrap();
    assert!(erased.iter().all(|&b| b == 0));
    let kept = board
        .read_storage(StorageKind::Emmc, 4096 * 512 + MIB, MIB as usize)
        .unwrap();
    assert_eq!(kept, data[MIB as usize..2 * MIB as usize]);
}

#[test]
fn storage_switch_reads_back_and_reaches_spinor() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");
    boot(&bus, &BootPlan::from_container(&standin()));
    let mut c = client(&bus);
    let mask = c.change_storage(StorageKind::SpiNor).unwrap();
    assert_eq!(mask.current(), Some(StorageKind::SpiNor));
    assert_eq!(c.flash_info().unwrap().capacity_bytes(), 16 * MIB);
    assert_eq!(c.flash_info().unwrap().block_sectors, 0x80);
    c.write_lba(0, &[0x5a; 512]).unwrap();
    drop(c);
    let mut board = VirtualBoard::open(&dir.path().join("m6")).unwrap();
    assert_eq!(
        board.read_storage(StorageKind::SpiNor, 0, 512).unwrap(),
        [0x5a; 512]
    );
    assert_eq!(
        board.read_storage(StorageKind::Emmc, 0, 512).unwrap(),
        [0; 512]
    );
}

#[test]
fn every_rk3588_loader_boots_and_the_board_receives_its_entries_in_order() {
    let Some(data) = rockusb_testkit::testdata("every_rk3588_loader_boots") else {
        return;
    };
    let mut booted = 0;
    for path in rockusb_testkit::files_in(&data.join("loaders")) {
        let container = LoaderContainer::parse(&std::fs::read(&path).unwrap()).unwrap();
        if container.soc().map(|s| s.name) != Some("RK3588") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        small_board(dir.path(), "m6", Personality::Usbplug);
        let bus = bus(dir.path(), "m6");
        let up = boot(&bus, &BootPlan::from_container(&container));
        assert_eq!(up.mode, BoardMode::Loader, "{}", path.display());
        let board = VirtualBoard::open(&dir.path().join("m6")).unwrap();
        for (area, kind) in [
            (0x471u16, rockusb_loaders::EntryKind::Area471),
            (0x472, rockusb_loaders::EntryKind::Area472),
        ] {
            let expected: Vec<u8> = container
                .entries(kind)
                .flat_map(|e| e.data.clone())
                .collect();
            let received: Vec<u8> = board.received(area).unwrap().concat();
            assert_eq!(received, expected, "{} area {area:#x}", path.display());
            assert_eq!(
                board.received(area).unwrap().len(),
                container.entries(kind).count()
            );
        }
        booted += 1;
    }
    assert!(booted >= 4, "only {booted} RK3588 loaders found");
}

#[test]
fn a_corrupt_area_is_dropped_and_the_bootrom_refuses_until_power_cycled() {
    let dir = tempfile::tempdir().unwrap();
    let board = small_board(dir.path(), "m6", Personality::Usbplug);
    let mut handle = rockusb_virtual::VirtualHandle::open(board).unwrap();
    let upload = MaskromUpload::new(Area::Sram, &[0x11; 6000]);
    let setup = upload.setup();
    let mut transfers: Vec<Vec<u8>> = upload.transfers().map(<[u8]>::to_vec).collect();
    transfers[1][0] ^= 1; // corrupt the CRC-bearing last transfer
    for t in &transfers {
        // Every chunk is ACKed, as the BootROM does.
        assert_eq!(handle.control_out(setup, t).unwrap(), t.len());
    }
    assert!(handle.board().state().wedged);
    assert!(handle.board().received(0x471).unwrap().is_empty());
    let good = MaskromUpload::new(Area::Sram, &[0x22; 100]);
    let first = good.transfers().next().unwrap();
    assert_eq!(
        handle.control_out(good.setup(), first),
        Err(TransportError::Stall)
    );

    let mut board = handle.into_board();
    board.power_cycle().unwrap();
    let mut handle = rockusb_virtual::VirtualHandle::open(board).unwrap();
    Client::new(&mut handle).maskrom_upload(&good).unwrap();
    assert_eq!(
        handle.board().received(0x471).unwrap(),
        vec![vec![0x22; 100]]
    );
}

#[test]
fn a_usbplug_without_ddr_init_never_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let board = small_board(dir.path(), "m6", Personality::Usbplug);
    let mut handle = rockusb_virtual::VirtualHandle::open(board).unwrap();
    Client::new(&mut handle)
        .maskrom_upload(&MaskromUpload::new(Area::Dram, &[0u8; 4096]))
        .unwrap();
    assert_eq!(handle.board().state().mode, Mode::Maskrom);
    assert!(handle.board().state().wedged);
}

#[test]
fn commands_in_maskrom_time_out_and_mode_is_probed_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");
    let board = bus.scan().unwrap().remove(0);
    assert_eq!(board.mode, BoardMode::Maskrom);
    assert_eq!(board.bcd_usb, 0x0200);
    let mut c = client(&bus);
    let err = c.chip_info().unwrap_err();
    assert_eq!(err.transport(), Some(&TransportError::Timeout));

    boot(&bus, &BootPlan::from_container(&standin()));
    let after = bus.scan().unwrap().remove(0);
    // Same bcdUSB and port path, new address: only the probe tells the modes apart.
    assert_eq!(after.bcd_usb, 0x0200);
    assert_eq!(after.port_path, board.port_path);
    assert_ne!(after.address, board.address);
    assert_eq!(after.mode, BoardMode::Loader);
}

#[test]
fn a_stale_handle_is_disconnected_after_re_enumeration() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");
    let port = bus.scan().unwrap().remove(0).port_path;
    let mut stale = bus.open(&port).unwrap();
    boot(&bus, &BootPlan::from_container(&standin()));
    let mut buf = [0u8; 13];
    assert_eq!(stale.bulk_in(&mut buf), Err(TransportError::Disconnected));
}

#[test]
fn mainline_uboot_personality_lacks_flash_info_and_capability() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::MainlineUboot);
    let bus = bus(dir.path(), "m6");
    boot(&bus, &BootPlan::from_container(&standin()));
    let mut c = client(&bus);
    assert_eq!(c.flash_id().unwrap().as_text(), "EMMC");
    assert_eq!(c.chip_info().unwrap().chip_name(), "RK3588");
    // Listed but unsupported in mainline's table: status 1.
    assert!(matches!(
        c.flash_info(),
        Err(CommandError::Unsupported { .. } | CommandError::Failed { .. })
    ));
    // Not in its table at all: "FAILunknown command" and no status block.
    match c.capability() {
        Err(CommandError::Unsupported { answer, .. }) => {
            assert_eq!(answer, "FAILunknown command")
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
    c.write_lba(100, &[9u8; 1024]).unwrap();
    let mut back = [0u8; 1024];
    c.read_lba(100, &mut back).unwrap();
    assert_eq!(back, [9u8; 1024]);
}

#[test]
fn reads_and_writes_past_the_end_fail_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");
    boot(&bus, &BootPlan::from_container(&standin()));
    let mut c = client(&bus);
    let last = (64 * MIB / 512) as u32;
    assert!(matches!(
        c.write_lba(last - 1, &[1u8; 1024]),
        Err(CommandError::Failed { .. })
    ));
    let mut buf = [0u8; 1024];
    assert!(c.read_lba(last - 1, &mut buf).is_err());
    // The session is still usable afterwards.
    c.write_lba(last - 2, &[1u8; 1024]).unwrap();
}

#[test]
fn the_read_wall_returns_0xcc_past_32_mib() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = small_board(dir.path(), "m6", Personality::Usbplug);
    board.set_read_wall(true).unwrap();
    drop(board);
    let bus = bus(dir.path(), "m6");
    boot(&bus, &BootPlan::from_container(&standin()));
    let mut c = client(&bus);
    let mut buf = vec![0u8; 4096];
    c.read_lba(65536 - 4, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0xCC));
    c.read_lba(65536 - 8, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn reset_boots_from_emmc_when_an_id_block_is_there_else_falls_back_to_maskrom() {
    let dir = tempfile::tempdir().unwrap();
    small_board(dir.path(), "m6", Personality::Usbplug);
    let bus = bus(dir.path(), "m6");
    let plan = BootPlan::from_container(&standin());
    boot(&bus, &plan);
    client(&bus)
        .reset(rockusb::client::ResetKind::Reboot)
        .unwrap();
    assert_eq!(bus.scan().unwrap()[0].mode, BoardMode::Maskrom);

    boot(&bus, &plan);
    let mut c = client(&bus);
    let mut idb = vec![0u8; 512];
    idb[..4].copy_from_slice(b"RKNS");
    c.write_lba(64, &idb).unwrap();
    c.reset(rockusb::client::ResetKind::Reboot).unwrap();
    assert!(
        bus.scan().unwrap().is_empty(),
        "the board booted and left the bus"
    );
}
