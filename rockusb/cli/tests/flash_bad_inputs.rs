//! Bad inputs: each is refused with an error that says what is wrong, and the board's
//! storage is left exactly as it was.

mod flash_support;

use flash_support::*;
use std::path::Path;

/// A booted board whose eMMC holds recognisable old contents; returns its snapshot.
fn booted_board(root: &Path, emmc_len: u64) -> Vec<u8> {
    rockusb_virtual::VirtualBoard::open_or_create(&root.join(BOARD), || {
        rockusb_virtual::BoardConfig {
            emmc_bytes: emmc_len,
            ..rockusb_virtual::BoardConfig::nanopi_m6(1)
        }
    })
    .unwrap();
    let mut board = open_board(root);
    for (i, at) in [0, 32768, 10 * MIB, 20 * MIB, emmc_len - MIB]
        .into_iter()
        .enumerate()
    {
        board
            .write_storage(
                rockusb::protocol::StorageKind::Emmc,
                at,
                &pseudo_random(64 * 1024, 50 + i as u64),
            )
            .unwrap();
    }
    drop(board);
    boot_standin(root);
    open_board(root)
        .read_storage(rockusb::protocol::StorageKind::Emmc, 0, emmc_len as usize)
        .unwrap()
}

/// Flashes `image` and expects a refusal whose message holds every one of `says`.
fn refused(root: &Path, image: &Path, emmc_len: u64, before: &[u8], says: &[&str]) {
    let out = rockusb(root, &["flash", image.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "{} was accepted: {}",
        image.display(),
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    for s in says {
        assert!(
            stderr.contains(&s.to_lowercase()),
            "missing {s:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("stopped after writing"),
        "nothing may have been written:\n{stderr}"
    );
    let after = open_board(root)
        .read_storage(rockusb::protocol::StorageKind::Emmc, 0, emmc_len as usize)
        .unwrap();
    assert!(after == before, "{}: the storage changed", image.display());
}

#[test]
fn truncated_and_corrupt_xz_files_are_refused_before_the_first_write() {
    with_talos_image("bad_xz", |root, raw| {
        let xz_path = xz(raw);
        let good = std::fs::read(&xz_path).unwrap();
        let before = booted_board(root, EMMC_LEN);

        let truncated = root.join("truncated.raw.xz");
        std::fs::write(&truncated, &good[..good.len() * 2 / 3]).unwrap();
        refused(
            root,
            &truncated,
            EMMC_LEN,
            &before,
            &["truncated", "download it again"],
        );

        // Damage in the index at the end: found by reading the index up front.
        let mut bad_index = good.clone();
        let n = bad_index.len();
        bad_index[n - 20] ^= 0x10;
        let bad_index_path = root.join("bad-index.raw.xz");
        std::fs::write(&bad_index_path, &bad_index).unwrap();
        refused(
            root,
            &bad_index_path,
            EMMC_LEN,
            &before,
            &["damaged", "corrupt"],
        );

        // Damage in a block of the first 11 MiB: decoded and found before the first write.
        let mut bad_block = good.clone();
        bad_block[good.len() / 40 + 100] ^= 0x55;
        let bad_block_path = root.join("bad-block.raw.xz");
        std::fs::write(&bad_block_path, &bad_block).unwrap();
        refused(root, &bad_block_path, EMMC_LEN, &before, &["corrupt", "xz"]);
    });
}

#[test]
fn an_image_larger_than_the_storage_is_refused() {
    with_talos_image("too_large", |root, raw| {
        let xz_path = xz(raw);
        let gz_path = compress(raw, "gzip", &["-1"], "gz");
        let small = 32 * MIB;
        let before = booted_board(root, small);
        for image in [raw, &xz_path, &gz_path] {
            // xz and raw know the size up front; gzip's comes from the GPT.
            refused(
                root,
                image,
                small,
                &before,
                &["larger device", "holds only 32.0 MiB"],
            );
        }
    });
}

#[test]
fn unknown_and_misnamed_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let before = booted_board(root, EMMC_LEN);
    let zip = root.join("talos.zip");
    let mut bytes = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    bytes.extend(pseudo_random(4096, 1));
    std::fs::write(&zip, &bytes).unwrap();
    refused(root, &zip, EMMC_LEN, &before, &["zip archive", "extract"]);

    let html = root.join("talos.raw.xz");
    std::fs::write(
        &html,
        "<html><body>404 Not Found</body></html>\n".repeat(20),
    )
    .unwrap();
    refused(root, &html, EMMC_LEN, &before, &["text", "download"]);

    let bz = root.join("talos.raw.bz2");
    let mut bytes = b"BZh91AY&SY".to_vec();
    bytes.extend(pseudo_random(4096, 2));
    std::fs::write(&bz, &bytes).unwrap();
    refused(
        root,
        &bz,
        EMMC_LEN,
        &before,
        &["bzip2", "decompress it first"],
    );

    // Raw bytes under a name that promises xz.
    let misnamed = root.join("image.raw.xz");
    std::fs::write(&misnamed, vec![0u8; 1 << 20]).unwrap();
    refused(
        root,
        &misnamed,
        EMMC_LEN,
        &before,
        &["named like xz", "holds raw"],
    );
}

#[test]
fn a_gpt_with_a_wrong_crc_is_refused() {
    with_talos_image("bad_gpt_crc", |root, raw| {
        let before = booted_board(root, EMMC_LEN);
        // The primary header's stored CRC (bytes 16..20 of LBA 1).
        let mut header = [0u8; 4];
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(raw).unwrap();
            f.read_exact_at(&mut header, 512 + 16).unwrap();
        }
        header[0] ^= 0xFF;
        write_at(raw, 512 + 16, &header);
        let xz_path = xz(raw);
        for image in [raw, &xz_path] {
            refused(root, image, EMMC_LEN, &before, &["GPT is damaged", "CRC"]);
        }

        // A damaged entry array (its CRC no longer matches) is refused too.
        let raw2 = root.join("entries");
        std::fs::create_dir(&raw2).unwrap();
        let raw2 = talos_image(&raw2);
        write_at(&raw2, 20482 * 512 + 40, b"XX");
        refused(
            root,
            &raw2,
            EMMC_LEN,
            &before,
            &["GPT is damaged", "entry array CRC"],
        );
    });
}
