//! One function per subcommand. Each parses nothing and formats little: it selects the
//! board, calls an operation and prints its result.

use crate::args::{Cli, Command, VirtualCommand};
use crate::output::Output;
use crate::values::WaitFor;
use crate::{loader_cmd, select};
use anyhow::{Context, Result, bail};
use rockusb::client::{Client, ResetKind};
use rockusb::discovery::{BoardInfo, Bus};
use rockusb::ops::boot::{self, BootPlan};
use rockusb::ops::storage_io;
use rockusb::protocol::{SECTOR_SIZE, StorageKind};
use rockusb::transport::Transport;
use rockusb_loaders::raw::{RawLoader, RawStage};
use serde_json::json;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

/// The udev rules, also installed from `udev/` by packagers.
pub const UDEV_RULES: &str = include_str!("../../../udev/70-rockusb.rules");

pub fn run(cli: Cli) -> Result<()> {
    let mut out = Output::new(cli.json);
    match cli.command {
        Command::Udev => {
            print!("{UDEV_RULES}");
            Ok(())
        }
        Command::Loader(cmd) => loader_cmd::run(cmd, &out),
        // The console needs a serial port, not the USB bus.
        Command::Console(args) => crate::console::run(args, cli.json),
        Command::Completions { shell } => crate::man_completions::completions(shell),
        Command::Man { output } => crate::man_completions::man(output.as_deref(), &out),
        Command::Image(cmd) => crate::adapt::run(cmd, &mut out),
        Command::Virtual(cmd) => virtual_command(cli.virtual_boards.as_deref(), cmd, &out),
        // Refused before the image is opened.
        #[cfg(not(target_os = "linux"))]
        Command::Flash(args) if args.to.is_some() => Err(crate::disks::flash_unsupported()),
        // A local disk needs no board.
        Command::Flash(args) if args.to.is_some() => {
            crate::flash::flash(None, cli.device.as_deref(), args, &mut out)
        }
        Command::Disks => crate::disks::list(&out),
        // An image file needs no board.
        Command::Gpt(args) if args.image.is_some() => {
            crate::flash::gpt(None, cli.device.as_deref(), args, &mut out)
        }
        command => {
            let bus = select::bus(cli.virtual_boards.as_deref())?;
            match command {
                Command::List => list(&bus, &mut out),
                Command::Wait {
                    mode,
                    count,
                    timeout,
                } => wait(&bus, mode, count, timeout, &out),
                Command::Boot {
                    loader,
                    loader_dirs,
                    ddr,
                    spl,
                } => boot_cmd(
                    &bus,
                    cli.device.as_deref(),
                    LoaderSource {
                        file: loader.as_deref(),
                        search: &loader_dirs,
                        raw: ddr.as_deref().zip(spl.as_deref()),
                    },
                    &mut out,
                ),
                Command::Flash(args) => {
                    crate::flash::flash(Some(&bus), cli.device.as_deref(), args, &mut out)
                }
                Command::Fleet(args) => crate::fleet::run(&bus, args, cli.json),
                Command::Backup(args) => {
                    crate::flash::backup(&bus, cli.device.as_deref(), args, &mut out)
                }
                Command::Gpt(args) => {
                    crate::flash::gpt(Some(&bus), cli.device.as_deref(), args, &mut out)
                }
                other => loader_command(&bus, cli.device.as_deref(), other, &mut out),
            }
        }
    }
}

fn list(bus: &Bus, out: &mut Output) -> Result<()> {
    let boards = bus.scan()?;
    if let Some(why) = bus.unavailable() {
        out.warn(&why);
    }
    // What to do about a board that could not be opened (udev rules, WinUSB, …).
    for board in &boards {
        if let Some(hint) = board.probe_error.as_ref().and_then(|e| e.hint()) {
            out.warn(&format!("{}: {hint}", board.port_path));
        }
    }
    out.result(&boards, || {
        if boards.is_empty() {
            "no Rockchip boards found (see `rockusb boot --help`; without hardware add \
             --virtual nanopi-m6)"
                .into()
        } else {
            boards
                .iter()
                .map(select::describe)
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    Ok(())
}

fn wait(bus: &Bus, wanted: WaitFor, count: usize, timeout: u64, out: &Output) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        let boards: Vec<BoardInfo> = bus
            .scan()?
            .into_iter()
            .filter(|b| wanted.accepts(b.mode))
            .collect();
        if boards.len() >= count {
            out.result(&boards, || {
                boards
                    .iter()
                    .map(select::describe)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
        if start.elapsed().as_secs() >= timeout {
            bail!(
                "timed out after {timeout} s: {} of {count} board(s) in {} mode attached",
                boards.len(),
                wanted.name()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Reads a file the user named, saying which one and what it was for when it fails.
pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// Where `boot` gets its loader from.
struct LoaderSource<'a> {
    file: Option<&'a Path>,
    search: &'a [std::path::PathBuf],
    raw: Option<(&'a Path, &'a Path)>,
}

fn boot_plan(
    bus: &Bus,
    source: &LoaderSource,
    board: &BoardInfo,
    out: &mut Output,
) -> Result<BootPlan> {
    let board_soc = rockusb_loaders::soc::by_usb_pid(board.pid);
    if let Some((ddr, spl)) = source.raw {
        let soc = board_soc.with_context(|| {
            format!(
                "the board's USB PID {:#06x} is not in the SoC table, so the RC4 setting for \
                 raw blobs is unknown",
                board.pid
            )
        })?;
        let stage = |path: &Path, what: &str| -> Result<RawStage> {
            Ok(RawStage {
                name: path
                    .file_name()
                    .map_or_else(|| what.to_string(), |n| n.to_string_lossy().into_owned()),
                data: read_file(path, what)?,
            })
        };
        let (ddr, spl) = (stage(ddr, "DDR init")?, stage(spl, "SPL/usbplug")?);
        // U-Boot's own maskrom pair gets its load-address check as well.
        let raw = if ddr.name.ends_with("usb471.bin") && spl.name.ends_with("usb472.bin") {
            RawLoader::from_uboot_pair(soc, ddr.data, spl.data)?
        } else {
            RawLoader::from_pair(soc, ddr, spl)?
        };
        for note in raw.notes() {
            rockusb::ops::Observer::event(
                out,
                rockusb::ops::Event::Warning {
                    message: note.clone(),
                },
            );
        }
        return Ok(BootPlan::from_raw(&raw));
    }
    if let Some(path) = source.file {
        let container = loader_cmd::parse(path)?;
        return Ok(BootPlan::from_container(&container));
    }
    let soc = board_soc.with_context(|| {
        format!(
            "the board's USB PID {:#06x} is not in the SoC table; name the loader file",
            board.pid
        )
    })?;
    match loader_cmd::find(soc, source.search, bus.accepts_standin_loader()) {
        Ok(choice) => {
            eprintln!("{}", loader_cmd::describe_choice(&choice));
            Ok(BootPlan::from_container(&choice.container))
        }
        // A bus that accepts the stand-in needs no real loader: unless the user named where
        // to look, fall back to the built-in stand-in.
        Err(_)
            if bus.accepts_standin_loader()
                && source.search.is_empty()
                && std::env::var_os("ROCKUSB_LOADER_PATH").is_none() =>
        {
            eprintln!("no {} loader on the search path: using the built-in stand-in loader (virtual board)", soc.name);
            Ok(BootPlan::from_container(&rockusb_loaders::standin::build_container(soc)))
        }
        Err(e) => Err(e.context(
            "no loader named and none found; name one: `rockusb boot rk3588_spl_loader_v1.16.113.bin` \
             (from rkbin), or raw blobs with --ddr FILE --spl FILE",
        )),
    }
}

fn boot_cmd(bus: &Bus, device: Option<&str>, source: LoaderSource, out: &mut Output) -> Result<()> {
    let board = select::board(bus, device)?;
    // Read and check the loader before touching the board.
    let plan = boot_plan(bus, &source, &board, out)?;
    boot::check_plan(bus, &board, &plan)?;
    let up = boot::boot(bus, &board, &plan, out)?;
    out.result(&up, || format!("booted: {}", select::describe(&up)));
    Ok(())
}

fn open_loader(bus: &Bus, device: Option<&str>) -> Result<(BoardInfo, Client<Box<dyn Transport>>)> {
    let board = select::board(bus, device)?;
    select::require_loader(&board)?;
    let transport = bus.open(&board.port_path)?;
    Ok((board, Client::new(transport)))
}

fn capacity_sectors(client: &mut Client<Box<dyn Transport>>) -> Result<u64> {
    let info = client
        .flash_info()
        .context("cannot read the storage size (READ_FLASH_INFO)")?;
    Ok(u64::from(info.sectors))
}

fn loader_command(
    bus: &Bus,
    device: Option<&str>,
    command: Command,
    out: &mut Output,
) -> Result<()> {
    let (board, mut client) = open_loader(bus, device)?;
    match command {
        Command::Info => info(&board, &mut client, out),
        Command::Read { lba, count, output } => {
            let capacity = capacity_sectors(&mut client)?;
            storage_io::check_range(lba, count, capacity, "read")?;
            let file = File::create(&output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            let mut writer = BufWriter::new(file);
            let bytes = storage_io::read(&mut client, lba, count, &mut writer, out)?;
            writer.flush()?;
            out.result(
                &json!({ "lba": lba, "sectors": count, "bytes": bytes, "file": output }),
                || format!("read {count} sectors from {lba} into {}", output.display()),
            );
            Ok(())
        }
        Command::Write { lba, file } => {
            let len = std::fs::metadata(&file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .len();
            if len % SECTOR_SIZE as u64 != 0 {
                return Err(storage_io::StorageIoError::NotSectorAligned {
                    what: file.display().to_string(),
                    len,
                })
                .context("pad the file to a multiple of 512 bytes; nothing was written");
            }
            let capacity = capacity_sectors(&mut client)?;
            storage_io::check_range(lba, len / SECTOR_SIZE as u64, capacity, "written")?;
            let mut reader = BufReader::new(
                File::open(&file).with_context(|| format!("cannot open {}", file.display()))?,
            );
            let bytes = storage_io::write(&mut client, lba, len, &mut reader, out)?;
            out.result(&json!({ "lba": lba, "bytes": bytes, "file": file }), || {
                format!("wrote {bytes} bytes at sector {lba}")
            });
            Ok(())
        }
        Command::Erase { lba, count } => {
            let capacity = capacity_sectors(&mut client)?;
            storage_io::check_range(lba, count, capacity, "erased")?;
            storage_io::erase(&mut client, lba, count, out)?;
            out.result(&json!({ "lba": lba, "sectors": count }), || {
                format!("erased {count} sectors from {lba}")
            });
            Ok(())
        }
        Command::Reset { maskrom } => {
            let kind = if maskrom {
                ResetKind::Maskrom
            } else {
                ResetKind::Reboot
            };
            client.reset(kind).context("the reset command failed")?;
            out.result(
                &json!({ "port_path": board.port_path, "maskrom": maskrom }),
                || {
                    if maskrom {
                        "reset into MaskROM requested (some RK3588 loaders ignore it; if the board \
                     stays in loader mode, use the MaskROM button)"
                            .into()
                    } else {
                        "reset requested".into()
                    }
                },
            );
            Ok(())
        }
        Command::Storage { kind } => storage(&mut client, kind.map(StorageKind::from), out),
        Command::UpgradeLoader { loader } => {
            let container = loader_cmd::parse(&loader)?;
            rockusb_loaders::soc::check_loader_for_pid(&container, board.pid)?;
            if rockusb_loaders::standin::is_standin(&container) && !bus.accepts_standin_loader() {
                bail!("the stand-in loader cannot run on a real board; use a real loader");
            }
            // Build and check the whole ID block before the first write.
            let idb = rockusb_loaders::upgrade::build_id_block(&container)?;
            let capacity = capacity_sectors(&mut client)?;
            let sectors = (idb.bytes.len() as u64).div_ceil(SECTOR_SIZE as u64);
            storage_io::check_range(u64::from(idb.lba), sectors, capacity, "written")?;
            let mut padded = idb.bytes.clone();
            padded.resize(sectors as usize * SECTOR_SIZE, 0);
            let mut src = &padded[..];
            storage_io::write(
                &mut client,
                u64::from(idb.lba),
                padded.len() as u64,
                &mut src,
                out,
            )
            .context(
                "writing the ID block failed part-way: the board will not boot from this \
                     storage until `rockusb upgrade-loader` completes (re-running is safe)",
            )?;
            out.result(&idb, || {
                format!(
                    "wrote the ID block ({} bytes: {}) at sector {}",
                    padded.len(),
                    idb.parts
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" + "),
                    idb.lba
                )
            });
            Ok(())
        }
        _ => unreachable!("handled by run()"),
    }
}

fn info(board: &BoardInfo, client: &mut Client<Box<dyn Transport>>, out: &Output) -> Result<()> {
    let chip = client.chip_info().context("cannot read chip info")?;
    let flash_id = client.flash_id().context("cannot read the flash id")?;
    // Mainline U-Boot's rockusb lacks these three (docs/protocol.md §5.2): report,
    // do not fail.
    let flash_info = client.flash_info().ok();
    let capability = client.capability().ok();
    let storage = client.storage().ok().and_then(|m| m.current());
    // After the storage, as vendor U-Boot's answer depends on it.
    let transfer_size = client.negotiate_transfer_size().ok().flatten();
    let value = json!({
        "port_path": board.port_path,
        "usb_speed": board.speed,
        "transfer_size": transfer_size,
        "chip": chip.chip_name(),
        "chip_info": chip.hex(),
        "flash_id": flash_id.as_text(),
        "flash_info": flash_info,
        "capacity_bytes": flash_info.map(|f| f.capacity_bytes()),
        "capability": capability.map(|c| c.feature_names()),
        "storage": storage,
    });
    out.result(&value, || {
        let mut lines = vec![
            format!("board:      {}", board.port_path),
            format!("usb:        {}", board.speed),
            format!("chip:       {} ({})", chip.chip_name(), chip.hex()),
            format!("flash id:   {}", flash_id.as_text()),
        ];
        match flash_info {
            Some(f) => lines.push(format!(
                "flash info: {} sectors ({:.2} GiB), block {} sectors, page {} sectors, {}",
                f.sectors,
                f.capacity_bytes() as f64 / (1u64 << 30) as f64,
                f.block_sectors,
                f.page_sectors,
                f.manufacturer_name()
            )),
            None => lines.push("flash info: not supported by this loader".into()),
        }
        match capability {
            Some(c) => lines.push(format!("capability: {}", c.feature_names().join(", "))),
            None => lines.push("capability: not supported by this loader".into()),
        }
        lines.push(format!(
            "storage:    {}",
            storage.map_or("not reported by this loader".to_string(), |s| s.to_string())
        ));
        lines.push(format!(
            "transfer:   {}",
            transfer_size.map_or(
                "not announced (TEST_UNIT_READY 0xF7 answers no size)".to_string(),
                |b| format!(
                    "{} KiB per command (announced by TEST_UNIT_READY 0xF7)",
                    b >> 10
                )
            )
        ));
        lines.join("\n")
    });
    Ok(())
}

fn storage(
    client: &mut Client<Box<dyn Transport>>,
    kind: Option<StorageKind>,
    out: &Output,
) -> Result<()> {
    let current = match kind {
        None => client
            .storage()
            .context("cannot read the current storage")?,
        Some(wanted) => client
            .change_storage(wanted)
            .context("cannot switch storage")?,
    };
    let current = current.current();
    out.result(&json!({ "storage": current }), || {
        format!(
            "storage: {}",
            current.map_or("unknown".to_string(), |k| k.to_string())
        )
    });
    Ok(())
}

fn virtual_command(names: Option<&str>, cmd: VirtualCommand, out: &Output) -> Result<()> {
    let Some(names) = names else {
        bail!("name the virtual boards with --virtual NAMES (or ROCKUSB_VIRTUAL)");
    };
    let vbus = select::virtual_bus(names)?;
    let mut states = Vec::new();
    for name in vbus.names() {
        let mut board = vbus.board(name)?;
        if let VirtualCommand::PowerCycle = cmd {
            board.power_cycle()?;
        }
        states.push(json!({
            "name": name,
            "dir": board.dir(),
            "port_path": board.config().port_path(),
            "state": board.state(),
        }));
    }
    out.result(&states, || {
        states
            .iter()
            .map(|s| {
                format!(
                    "{}  {}  mode {}  address {}  ({})",
                    s["name"].as_str().unwrap_or("?"),
                    s["port_path"].as_str().unwrap_or("?"),
                    s["state"]["mode"].as_str().unwrap_or("?"),
                    s["state"]["address"],
                    s["state"]["last_event"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
