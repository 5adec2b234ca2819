//! Two virtual boards on the bus at once, seen through libusb: `rockusb` tells them apart
//! by port path and acts on the one `--device` names; rkdeveloptool refuses, as it does
//! with two real boards (it handles one device at a time).

mod shim_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::Mode;
use shim_support::*;

#[test]
fn rockusb_lists_two_boards_and_addresses_each_by_port_path() {
    let test = "rockusb_lists_two_boards_and_addresses_each_by_port_path";
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let loader = loader.to_str().unwrap();
    let boards = Boards::new(&["a", "b"], 64);

    let listed = list_boards(&boards);
    assert_served_by_shim(&boards, "the rockusb binary");
    let ports: Vec<&str> = listed.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(ports, ["1-1", "1-2"], "{listed:?}");
    assert!(listed.iter().all(|b| b.1 == "maskrom"), "{listed:?}");
    assert_ne!(listed[0].2, listed[1].2, "two boards share an address");

    // Without --device, a command must not pick one of them.
    let out = run(&mut boards.rockusb(&["boot", loader]), false, &boards);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--device"), "{stderr}");
    assert_eq!(boards.board("a").state().mode, Mode::Maskrom);
    assert_eq!(boards.board("b").state().mode, Mode::Maskrom);

    // Boot only the second board.
    ok(
        &mut boards.rockusb(&["--device", "1-2", "boot", loader]),
        &boards,
    );
    assert_eq!(boards.board("a").state().mode, Mode::Maskrom);
    assert_eq!(boards.board("b").state().mode, Mode::Loader);
    let modes: Vec<(String, String)> = list_boards(&boards)
        .into_iter()
        .map(|(port, mode, _)| (port, mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("1-1".to_string(), "maskrom".to_string()),
            ("1-2".to_string(), "loader".to_string())
        ]
    );

    // Then the first; each gets its own data at the same sector.
    ok(
        &mut boards.rockusb(&["--device", "1-1", "boot", loader]),
        &boards,
    );
    for (port, seed) in [("1-1", 1), ("1-2", 2)] {
        let data = pattern(300 * SECTOR, seed);
        let input = boards.file(&format!("in-{port}.bin"));
        std::fs::write(&input, &data).unwrap();
        ok(
            &mut boards.rockusb(&["--device", port, "write", "64", input.to_str().unwrap()]),
            &boards,
        );
    }
    for (name, port, seed) in [("a", "1-1", 1), ("b", "1-2", 2)] {
        let want = pattern(300 * SECTOR, seed);
        let output = boards.file(&format!("out-{port}.bin"));
        ok(
            &mut boards.rockusb(&[
                "--device",
                port,
                "read",
                "64",
                "300",
                "-o",
                output.to_str().unwrap(),
            ]),
            &boards,
        );
        assert!(
            std::fs::read(&output).unwrap() == want,
            "{port} read back wrong data"
        );
        let stored = boards
            .board(name)
            .read_storage(StorageKind::Emmc, 64 * SECTOR as u64, want.len())
            .unwrap();
        assert!(stored == want, "board {name} holds the other board's data");
    }
}

#[test]
fn rkdeveloptool_lists_two_boards_but_refuses_to_act() {
    let test = "rkdeveloptool_lists_two_boards_but_refuses_to_act";
    if !have_rkdeveloptool(test) {
        return;
    }
    let boards = Boards::new(&["a", "b"], 64);
    let out = boards.rkdeveloptool_ok(&["ld"]);
    assert_served_by_shim(&boards, "rkdeveloptool");
    assert!(
        out.contains("DevNo=1\tVid=0x2207,Pid=0x350b,LocationID=101\tMaskrom"),
        "{out}"
    );
    assert!(
        out.contains("DevNo=2\tVid=0x2207,Pid=0x350b,LocationID=102\tMaskrom"),
        "{out}"
    );

    let out = run(&mut boards.rkdeveloptool(&["rid"]), false, &boards);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Found too many rockusb devices, please plug devices out!"),
        "{stdout}"
    );
}
