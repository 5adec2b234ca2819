//! Write parity, transfer-size negotiation and the USB 3 switch on the virtual board,
//! in-process, loader by loader (docs/protocol.md §9): what each personality offers, the
//! re-read that catches data damaged on its way to the medium, the 2048-sector limit, and
//! the re-enumeration on the same port path.

use rockusb::client::{Client, CommandError};
use rockusb::discovery::{BoardInfo, BoardMode, Bus, UsbSpeed};
use rockusb::ops::sector_io::SectorIo;
use rockusb::ops::usb3::{self, SwitchOutcome};
use rockusb::ops::{self, Event, boot::BootPlan};
use rockusb::protocol::{CommandBlock, DataDirection, Opcode, SECTOR_SIZE, StorageKind, parity};
use rockusb::transport::Transport;
use rockusb_loaders::LoaderContainer;
use rockusb_virtual::faults::Faults;
use rockusb_virtual::{BoardConfig, Personality, VirtualBoard, VirtualBus, VirtualHandle};
use std::path::Path;

const MIB: u64 = 1 << 20;

fn booted(root: &Path, personality: Personality, port_superspeed: bool) -> Bus {
    VirtualBoard::open_or_create(&root.join("m6"), || BoardConfig {
        personality,
        emmc_bytes: 64 * MIB,
        port_superspeed,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    let bus = Bus::new(VirtualBus::new(root.to_path_buf(), vec!["m6".into()]));
    let soc = rockusb_loaders::soc::by_name("RK3588").unwrap();
    let standin = LoaderContainer::parse(&rockusb_loaders::standin::build(soc)).unwrap();
    let board = bus.scan().unwrap().remove(0);
    ops::boot::boot(
        &bus,
        &board,
        &BootPlan::from_container(&standin),
        &mut ops::Quiet,
    )
    .unwrap();
    bus
}

/// A handle on the booted board, held in-process so faults can be planned on it.
fn handle(root: &Path, faults: &str) -> VirtualHandle {
    let mut board = VirtualBoard::open(&root.join("m6")).unwrap();
    board.set_faults(Faults::parse(faults).unwrap());
    VirtualHandle::open(board).unwrap()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn each_loader_offers_what_the_real_one_does() {
    for (personality, parity, switch) in [
        (Personality::Usbplug, true, false),
        (Personality::UbootUsbplug, true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        booted(dir.path(), personality, true);
        let mut h = handle(dir.path(), "");
        let cap = Client::new(&mut h).capability().unwrap();
        assert_eq!(cap.lba_write_parity(), parity, "{personality:?}");
        assert_eq!(cap.switch_usb3(), switch, "{personality:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::MainlineUboot, true);
    let mut h = handle(dir.path(), "");
    assert!(matches!(
        Client::new(&mut h).capability(),
        Err(CommandError::Unsupported { .. })
    ));
}

#[test]
fn a_parity_write_is_accepted_and_reaches_the_medium() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::Usbplug, true);
    let mut h = handle(dir.path(), "");
    let bytes = data(2048 * SECTOR_SIZE, 1);
    Client::new(&mut h).write_lba_parity(4096, &bytes).unwrap();
    let stored = h
        .board_mut()
        .read_storage(StorageKind::Emmc, 4096 * 512, bytes.len())
        .unwrap();
    assert!(stored == bytes);
}

#[test]
fn a_wrong_parity_word_is_refused_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::UbootUsbplug, true);
    let mut h = handle(dir.path(), "");
    let bytes = data(8 * SECTOR_SIZE, 2);
    let mut client = Client::new(&mut h);
    let cbw = CommandBlock::new(77, Opcode::WriteLba, DataDirection::Out, bytes.len() as u32)
        .with_address(100)
        .with_length(8)
        .with_parity(parity::write_parity(&bytes).wrapping_add(1));
    client.transport_mut().bulk_out(&cbw.to_bytes()).unwrap();
    client.transport_mut().bulk_out(&bytes).unwrap();
    let mut csw = [0u8; 13];
    assert_eq!(client.transport_mut().bulk_in(&mut csw).unwrap(), 13);
    assert_eq!(csw[12], 2, "phase error status for a parity mismatch");
}

#[test]
fn damage_on_the_way_to_the_medium_is_caught_by_parity_and_missed_without_it() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::Usbplug, true);
    // The first write reaches the medium with a byte changed, and so does the second.
    let mut h = handle(dir.path(), "medium@1,medium@2");
    let bytes = data(64 * SECTOR_SIZE, 3);
    let mut client = Client::new(&mut h);
    // Without parity the loader cannot tell: the status block says good.
    client.write_lba(200, &bytes).unwrap();
    // With parity it re-reads and refuses.
    assert!(matches!(
        client.write_lba_parity(300, &bytes),
        Err(CommandError::ParityMismatch { .. })
    ));
    // The damage is on the medium in both places.
    for lba in [200u64, 300] {
        let stored = h
            .board_mut()
            .read_storage(StorageKind::Emmc, lba * 512, bytes.len())
            .unwrap();
        assert_ne!(stored, bytes, "LBA {lba}");
    }
}

#[test]
fn a_persistent_parity_failure_fails_the_sector_loop_with_its_lba_and_a_transient_one_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::Usbplug, true);
    let bytes = data(4 * MIB as usize, 4);

    // Write 2 of the job (sectors 2048..4096 of it) is damaged once: sent again, it goes
    // through, and the whole range is on the medium.
    let mut h = handle(dir.path(), "medium@2");
    let mut client = Client::new(&mut h);
    let mut io = SectorIo::new(&mut client, 8192);
    io.set_write_parity();
    assert_eq!(
        io.command_sectors(),
        2048,
        "parity commands are held to 2048 sectors"
    );
    io.write(0, &bytes).unwrap();
    assert_eq!(io.retried, 1);
    assert_eq!(io.parity_checked_bytes, bytes.len() as u64);
    let stored = h
        .board_mut()
        .read_storage(StorageKind::Emmc, 0, bytes.len())
        .unwrap();
    assert!(stored == bytes);

    // Damaged every time it is sent (the first try and both retries): the job fails at
    // that command's sector, without trying smaller commands.
    let mut h = handle(dir.path(), "medium@2,medium@3,medium@4");
    let mut client = Client::new(&mut h);
    let mut io = SectorIo::new(&mut client, 8192);
    io.set_write_parity();
    let failure = io.write(0, &bytes).unwrap_err();
    assert_eq!(failure.lba, 2048);
    assert_eq!(failure.sectors, 2048);
    assert!(matches!(
        failure.error,
        rockusb::ops::sector_io::IoCause::Command(CommandError::ParityMismatch { .. })
    ));
    assert!(io.fallbacks.is_empty(), "{:?}", io.fallbacks);
    assert!(failure.to_string().contains("at sector 2048"), "{failure}");
}

#[test]
fn a_parity_write_over_2048_sectors_fails() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::UbootUsbplug, true);
    let mut h = handle(dir.path(), "");
    let mut client = Client::new(&mut h);
    let bytes = data(2049 * SECTOR_SIZE, 5);
    // Past the loader's 1 MiB re-read buffer (the client refuses to build such a command
    // in debug builds, so the command block is built here).
    let cbw = CommandBlock::new(9, Opcode::WriteLba, DataDirection::Out, bytes.len() as u32)
        .with_address(0)
        .with_length(2049)
        .with_parity(parity::write_parity(&bytes));
    client.transport_mut().bulk_out(&cbw.to_bytes()).unwrap();
    client.transport_mut().bulk_out(&bytes).unwrap();
    let mut csw = [0u8; 13];
    client.transport_mut().bulk_in(&mut csw).unwrap();
    assert_eq!(csw[12], 1, "status failed");
    // 2048 sectors are fine.
    client
        .write_lba_parity(0, &bytes[..2048 * SECTOR_SIZE])
        .unwrap();
}

#[test]
fn mainline_uboot_ignores_the_parity_word() {
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::MainlineUboot, true);
    let mut h = handle(dir.path(), "medium@1");
    // It reads a 10-byte CDB: no re-read, so the damage goes unnoticed.
    Client::new(&mut h)
        .write_lba_parity(0, &data(16 * SECTOR_SIZE, 6))
        .unwrap();
}

#[test]
fn test_unit_ready_announces_the_transfer_size_where_the_loader_does() {
    let cases = [
        (Personality::UbootUsbplug, Some(4 << 20)),
        (Personality::Usbplug, None),
        (Personality::MainlineUboot, None),
    ];
    for (personality, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        booted(dir.path(), personality, true);
        let mut h = handle(dir.path(), "");
        let mut client = Client::new(&mut h);
        assert_eq!(
            client.negotiate_transfer_size().unwrap(),
            expected,
            "{personality:?}"
        );
    }
    // Vendor U-Boot answers 32 KiB on SPI-NOR, and the plain TEST_UNIT_READY still works.
    let dir = tempfile::tempdir().unwrap();
    booted(dir.path(), Personality::UbootUsbplug, true);
    let mut h = handle(dir.path(), "");
    let mut client = Client::new(&mut h);
    client.change_storage(StorageKind::SpiNor).unwrap();
    assert_eq!(client.negotiate_transfer_size().unwrap(), Some(32 << 10));
    client.test_unit_ready().unwrap();
}

fn switch(bus: &Bus, allow: bool) -> (BoardInfo, SwitchOutcome, Vec<Event>) {
    let board = bus.scan().unwrap().remove(0);
    let client = Client::new(bus.open(&board.port_path).unwrap());
    let mut events = Vec::new();
    let usb3::Connected {
        board: up,
        mut client,
        outcome,
    } = usb3::switch_if_offered(bus, board, client, allow, &mut |e| events.push(e)).unwrap();
    // The client it hands back talks to the board as it is now.
    client.test_unit_ready().unwrap();
    (up, outcome, events)
}

#[test]
fn the_usb3_switch_re_enumerates_on_the_same_port_path_at_superspeed() {
    let dir = tempfile::tempdir().unwrap();
    let bus = booted(dir.path(), Personality::UbootUsbplug, true);
    let before = bus.scan().unwrap().remove(0);
    assert_eq!((before.speed, before.bcd_usb), (UsbSpeed::High, 0x0200));
    let (up, outcome, _) = switch(&bus, true);
    assert_eq!(outcome, SwitchOutcome::Switched);
    assert_eq!(up.port_path, before.port_path);
    assert_ne!(up.address, before.address);
    assert_eq!(up.mode, BoardMode::Loader);
    assert_eq!((up.speed, up.bcd_usb), (UsbSpeed::Super, 0x0300));
    // The storage works at the new speed, and a second run does not switch again.
    let (_, again, _) = switch(&bus, true);
    assert_eq!(again, SwitchOutcome::AlreadySuperSpeed);
    // A reset brings it back at high speed (MaskROM is high speed only).
    let mut c = Client::new(bus.open(&up.port_path).unwrap());
    c.reset(rockusb::client::ResetKind::Maskrom).unwrap();
    let after = bus.scan().unwrap().remove(0);
    assert_eq!(
        (after.mode, after.speed),
        (BoardMode::Maskrom, UsbSpeed::High)
    );
}

#[test]
fn the_usb3_switch_is_skipped_where_it_cannot_help_and_falls_back_where_the_link_fails() {
    // The rkbin usbplug has no switch.
    let dir = tempfile::tempdir().unwrap();
    let bus = booted(dir.path(), Personality::Usbplug, true);
    assert_eq!(switch(&bus, true).1, SwitchOutcome::NotOffered);

    // --usb2.
    let dir = tempfile::tempdir().unwrap();
    let bus = booted(dir.path(), Personality::UbootUsbplug, true);
    let (up, outcome, _) = switch(&bus, false);
    assert_eq!(
        (outcome, up.speed),
        (SwitchOutcome::Declined, UsbSpeed::High)
    );

    // A port the bus knows to be USB 2.0 only: not tried, and said.
    let dir = tempfile::tempdir().unwrap();
    let bus = booted(dir.path(), Personality::UbootUsbplug, false);
    let before = bus.scan().unwrap().remove(0);
    let (up, outcome, events) = switch(&bus, true);
    assert_eq!(outcome, SwitchOutcome::PortHighSpeedOnly);
    assert_eq!(up.address, before.address, "no re-enumeration");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning { message } if message.contains("USB 2.0 only")))
    );

    // The board itself, asked to switch on such a port, comes back at high speed on the
    // same port path.
    let mut board = VirtualBoard::open(&dir.path().join("m6")).unwrap();
    let address = board.identity().unwrap().address;
    let mut h = VirtualHandle::open(board).unwrap();
    Client::new(&mut h).switch_usb3().unwrap();
    board = VirtualBoard::open(&dir.path().join("m6")).unwrap();
    let id = board.identity().unwrap();
    assert_eq!(
        (id.port_path.as_str(), id.superspeed, id.bcd_usb),
        ("1-1", false, 0x0200)
    );
    assert_ne!(id.address, address);
    assert!(board.state().last_event.contains("back at high speed"));
}
