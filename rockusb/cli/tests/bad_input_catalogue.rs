//! The bad-input catalogue: loaders, images, bmap files, GPTs, option combinations and
//! board states that must be refused. Each case runs the real `rockusb` binary against a
//! used virtual board and must exit non-zero with a message that says what is wrong and
//! what to do, with the board's storage byte for byte as it was before.

mod flash_support;

use flash_support::*;
use rockusb::protocol::StorageKind;
use std::path::{Path, PathBuf};

/// The state the board is put in before a case runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BoardState {
    Maskrom,
    Loader,
}

struct Case {
    name: &'static str,
    state: BoardState,
    args: Vec<String>,
    stdin: Option<PathBuf>,
    /// Fragments the error must hold (case-insensitive): what is wrong, what to do.
    says: &'static [&'static str],
}

fn case(
    name: &'static str,
    state: BoardState,
    args: &[&str],
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        state,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: None,
        says,
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The files the cases use, made from the Talos test image with real tools.
struct Files {
    raw: PathBuf,
    xz: PathBuf,
    loader: PathBuf,
    dir: PathBuf,
}

impl Files {
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn edited_raw(&self, name: &str, edits: &[(u64, &[u8])]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::copy(&self.raw, &path).unwrap();
        for (at, bytes) in edits {
            write_at(&path, *at, bytes);
        }
        path
    }
}

#[rustfmt::skip] // one case per line reads as the catalogue it is
fn cases(f: &Files) -> Vec<Case> {
    use BoardState::{Loader, Maskrom};
    let xz = std::fs::read(&f.xz).unwrap();
    let raw_len = std::fs::metadata(&f.raw).unwrap().len();
    let loader = std::fs::read(&f.loader).unwrap();
    let (image, standin) = (p(&f.xz).to_string(), p(&f.loader).to_string());

    let truncated_xz = f.file("truncated.raw.xz", &xz[..xz.len() / 2]);
    let mut middle = xz.clone();
    middle[xz.len() / 2] ^= 0x40;
    let corrupt_middle = f.file("corrupt-middle.raw.xz", &middle);
    let mut index = xz.clone();
    let n = index.len();
    index[n - 20] ^= 0x10;
    let bad_index = f.file("bad-index.raw.xz", &index);
    let empty = f.file("empty.raw", &[]);
    let html = f.file("download.raw.xz", b"<html><body>404 Not Found</body></html>\n");
    let gz = compress(&f.raw, "gzip", &["-1"], "gz");
    let gz_bytes = std::fs::read(&gz).unwrap();
    let truncated_gz = f.file("truncated.raw.gz", &gz_bytes[..gz_bytes.len() / 3]);
    let too_large = f.dir.join("too-large.raw");
    std::fs::copy(&f.raw, &too_large).unwrap();
    std::fs::OpenOptions::new().write(true).open(&too_large).unwrap()
        .set_len(EMMC_LEN + 16 * MIB).unwrap();
    let bad_header_crc = f.edited_raw("bad-header-crc.raw", &[(512 + 16, &[0xde, 0xad])]);
    let bad_entries = f.edited_raw("bad-entries.raw", &[(20482 * 512 + 40, b"XX")]);
    let bad_backup = f.edited_raw("bad-backup.raw", &[(raw_len - 512 + 16, &[0xde, 0xad])]);

    // A real bmap, made by bmaptool, of another (1 MiB) image.
    let other_image = f.file("other.raw", &pseudo_random(MIB as usize, 9));
    let bmap_other = f.dir.join("other.bmap");
    rockusb_testkit::run(
        std::process::Command::new("bmaptool").arg("create").arg(&other_image).arg("-o").arg(&bmap_other),
    );
    let bmap_garbage = f.file("garbage.bmap", b"<bmap version=\"2.0\"><ImageSize>12");

    let other_soc = f.dir.join("rk3568-standin.bin");
    let made = rockusb(&f.dir, &["loader", "standin", "--soc", "RK3568", "-o", p(&other_soc)]);
    assert!(made.status.success(), "{}", text(&made));
    let not_a_loader = f.file("not-a-loader.bin", &pseudo_random(64 * 1024, 3));
    let truncated_loader = f.file("truncated-loader.bin", &loader[..loader.len() / 2]);
    let mut flipped = loader.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let bad_crc_loader = f.file("bad-crc-loader.bin", &flipped);

    let mut all = vec![
        // Images.
        case("truncated xz", Loader, &["flash", p(&truncated_xz)], &["truncated", "download it again", "nothing was written"]),
        case("corrupt middle block, checked first", Loader, &["flash", "--check", p(&corrupt_middle)], &["corrupt", "download the image again"]),
        case("xz index damaged", Loader, &["flash", p(&bad_index)], &["damaged", "corrupt"]),
        case("empty file", Loader, &["flash", p(&empty)], &["is empty", "no image to write"]),
        case("a web page saved as .raw.xz", Loader, &["flash", p(&html)], &["is text", "download the image again"]),
        case("truncated gzip, checked first", Loader, &["flash", "--check", p(&truncated_gz)], &["truncated", "nothing was written"]),
        case("image larger than the storage", Loader, &["flash", p(&too_large)], &["holds only", "larger device"]),
        case("no such image", Loader, &["flash", "/nonexistent/talos.raw.xz"], &["cannot open /nonexistent/talos.raw.xz", "nothing was written"]),
        case("a folder as the image", Loader, &["flash", p(&f.dir)], &["is a directory", "nothing was written"]),
        // GPTs.
        case("primary GPT header CRC wrong", Loader, &["flash", p(&bad_header_crc)], &["GPT is damaged", "header CRC mismatch"]),
        case("GPT entry array damaged", Loader, &["flash", p(&bad_entries)], &["GPT is damaged", "entry array CRC"]),
        case("backup GPT damaged", Loader, &["flash", p(&bad_backup)], &["backup header", "re-download or rebuild"]),
        // Bmap files.
        case("bmap for another image", Loader, &["flash", &image, "--bmap", p(&bmap_other)], &["another image", "1048576"]),
        case("bmap that is not XML", Loader, &["flash", &image, "--bmap", p(&bmap_garbage)], &["not a usable bmap", "not well-formed"]),
        case("bmap file missing", Loader, &["flash", &image, "--bmap", "/nonexistent/x.bmap"], &["cannot read the bmap /nonexistent/x.bmap"]),
        // Option combinations.
        case("--full with --bmap", Loader, &["flash", &image, "--full", "--bmap", p(&bmap_other)], &["'--full' cannot be used with"]),
        case("--check with --no-check", Loader, &["flash", &image, "--check", "--no-check"], &["'--check' cannot be used with"]),
        case("--uboot without --adapt", Loader, &["flash", &image, "--uboot", &standin], &["go with --adapt"]),
        case("command size out of range", Loader, &["flash", &image, "--command-sectors", "5"], &["128..=65535"]),
        case("a storage the board lacks", Loader, &["flash", &image, "--storage", "nvme"], &["has no nvme", "nothing was written"]),
        case("an unknown storage", Loader, &["flash", &image, "--storage", "floppy"], &["invalid value 'floppy'", "emmc"]),
        case("an eMMC-sized image onto SPI NOR", Loader, &["flash", &image, "--storage", "spinor"], &["holds only 16.0 mib", "larger device"]),
        case("no such board", Loader, &["--device", "9-9", "flash", &image], &["no board at 9-9", "attached boards"]),
        // Board states and loaders.
        case("board in MaskROM, no loader given", Maskrom, &["flash", &image], &["maskrom mode", "rockusb boot"]),
        case("loader for another SoC", Maskrom, &["flash", &image, "--loader", p(&other_soc)], &["for RK3568, but the board is RK3588", "use a loader built for RK3588"]),
        case("not a loader", Maskrom, &["flash", &image, "--loader", p(&not_a_loader)], &["not a rockchip loader", "use a merged loader"]),
        case("truncated loader", Maskrom, &["flash", &image, "--loader", p(&truncated_loader)], &["truncated", "download it again"]),
        case("loader with a damaged entry", Maskrom, &["boot", p(&bad_crc_loader)], &["crc-32 mismatch", "fresh copy"]),
        case("no such loader", Maskrom, &["boot", "/nonexistent/loader.bin"], &["cannot read the loader", "no such file"]),
    ];
    let mut stdin_resume = case("--resume from standard input", Loader, &["flash", "-", "--resume"], &["standard input", "name the image file"]);
    stdin_resume.stdin = Some(f.xz.clone());
    all.push(stdin_resume);
    all
}

#[test]
fn every_bad_input_is_refused_with_a_clear_message_and_the_storage_untouched() {
    with_talos_image("bad_input_catalogue", |root, raw| {
        let files = Files {
            raw: raw.to_path_buf(),
            xz: xz(raw),
            loader: standin(root),
            dir: root.join("files"),
        };
        std::fs::create_dir_all(&files.dir).unwrap();
        board(root, false);
        // A used board: old contents everywhere a flash writes.
        {
            let mut b = open_board(root);
            for (i, at) in [0, 32768, 11 * MIB, 20 * MIB, EMMC_LEN - MIB]
                .into_iter()
                .enumerate()
            {
                b.write_storage(
                    StorageKind::Emmc,
                    at,
                    &pseudo_random(256 * 1024, 70 + i as u64),
                )
                .unwrap();
            }
        }
        let catalogue = cases(&files);
        assert!(catalogue.len() >= 25, "{} cases", catalogue.len());
        let before = emmc(root);
        let mut failures = Vec::new();
        for c in &catalogue {
            put_in(root, c.state, &files.loader);
            let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
            let out = rockusb_with_stdin(root, &args, c.stdin.as_deref());
            let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
            let mut wrong = Vec::new();
            if out.status.success() {
                wrong.push("it succeeded".to_string());
            }
            for s in c.says {
                if !stderr.contains(&s.to_lowercase()) {
                    wrong.push(format!("no {s:?} in the message"));
                }
            }
            if stderr.contains("panicked") {
                wrong.push("it panicked".into());
            }
            if emmc(root) != before {
                wrong.push("the storage changed".into());
            }
            let first = stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("")
                .to_string();
            println!("{:<45} {}", c.name, first);
            if !wrong.is_empty() {
                failures.push(format!("{}: {}\n{}", c.name, wrong.join(", "), text(&out)));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}

/// Puts the board in MaskROM (power cycle) or running the stand-in loader.
fn put_in(root: &Path, state: BoardState, loader: &Path) {
    let mut board = open_board(root);
    let mode = board.state().mode;
    match state {
        BoardState::Maskrom if mode != rockusb_virtual::Mode::Maskrom => {
            board.power_cycle().unwrap()
        }
        BoardState::Loader if mode != rockusb_virtual::Mode::Loader => {
            board.power_cycle().unwrap();
            drop(board);
            let out = rockusb(root, &["boot", p(loader)]);
            assert!(out.status.success(), "{}", text(&out));
        }
        _ => {}
    }
}
