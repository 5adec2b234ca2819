//! What the kernel says about the host's block devices: size, model, whether they are
//! removable, mounted, used by the running system or by another block device. Read from
//! sysfs (`/sys/class/block`), `/proc/self/mountinfo` and `/proc/swaps`; every path comes
//! from a [`Host`], so tests run the checks against a made-up tree.

use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A block device number: (major, minor).
pub type DevNum = (u32, u32);

/// Where the facts are read from.
#[derive(Debug, Clone)]
pub struct Host {
    /// sysfs, normally `/sys`.
    pub sys: PathBuf,
    /// Normally `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// Normally `/proc/swaps`.
    pub swaps: PathBuf,
    /// The device number the root file system reports (`stat /`), when it names a block
    /// device.
    pub root_dev: Option<DevNum>,
}

impl Host {
    /// The running system.
    pub fn system() -> Host {
        use std::os::unix::fs::MetadataExt;
        let root_dev = std::fs::metadata("/").ok().map(|m| dev_num(m.dev()));
        Host {
            sys: "/sys".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            swaps: "/proc/swaps".into(),
            root_dev,
        }
    }

    fn class(&self, name: &str) -> PathBuf {
        self.sys.join("class/block").join(name)
    }
}

/// Splits a `dev_t`.
pub fn dev_num(dev: u64) -> DevNum {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

/// A whole disk, as `rockusb disks` lists it and `flash --to` checks it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Disk {
    /// The kernel's name: `sdb`, `mmcblk0`, `loop3`.
    pub name: String,
    /// `/dev/` and the name.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// The device's model (SCSI/USB model, MMC card name), when it has one.
    pub model: Option<String>,
    /// How it is attached: `usb`, `mmc`, `loop`, `nvme`, `ata`, `virtio`, `scsi`, …
    pub bus: String,
    /// Media the user plugs in and out: the kernel's removable flag, a disk on USB, or an
    /// SD card (not eMMC) in an MMC slot.
    pub removable: bool,
    pub read_only: bool,
    /// Bytes per logical sector.
    pub logical_sector: u32,
    /// A loop device's file.
    pub backing_file: Option<String>,
    /// Partitions (kernel names).
    pub partitions: Vec<String>,
    /// What is mounted from the disk or its partitions, as "/dev/sdb1 on /media/card" (or
    /// "/dev/sdb2 as swap").
    pub mounted: Vec<String>,
    /// Block devices built on it (device mapper, RAID), as kernel names.
    pub holders: Vec<String>,
    /// It holds the running system's root file system.
    pub system: bool,
}

impl Disk {
    /// True when `flash --to` takes it without `--force`.
    pub fn is_candidate(&self) -> bool {
        self.refusal(false).is_none()
    }

    /// Why `flash --to` refuses it, if it does.
    pub fn refusal(&self, force: bool) -> Option<Refusal> {
        let path = self.path.clone();
        if self.system {
            return Some(Refusal::System { path });
        }
        if !self.mounted.is_empty() {
            return Some(Refusal::Mounted {
                path,
                mounted: self.mounted.join(", "),
            });
        }
        if !self.holders.is_empty() {
            return Some(Refusal::Held {
                path,
                holders: self.holders.join(", "),
            });
        }
        if self.size == 0 {
            return Some(Refusal::NoMedium { path });
        }
        if self.read_only {
            return Some(Refusal::ReadOnly { path });
        }
        if self.logical_sector != 512 {
            return Some(Refusal::SectorSize {
                path,
                size: self.logical_sector,
            });
        }
        if !self.removable && self.bus != "loop" && !force {
            return Some(Refusal::NotRemovable {
                path,
                what: self.describe(),
            });
        }
        None
    }

    /// "SanDisk SDSQUA4 (usb, 29.7 GiB)".
    pub fn describe(&self) -> String {
        let size = rockusb_images::units::human_bytes(self.size);
        match (&self.model, &self.backing_file) {
            (Some(model), _) => format!("{model} ({}, {size})", self.bus),
            (None, Some(file)) => format!("loop device of {file} ({size})"),
            (None, None) => format!("{} ({size})", self.bus),
        }
    }
}

/// Why a device is not written. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{path} holds the running system (its root file system): refusing to write to it, even with --force. Name the SD card or USB disk instead (`rockusb disks` lists them)"
    )]
    System { path: String },
    #[error(
        "{path} is in use: {mounted}. Unmount it first (`umount` each, or eject it in the file manager), then run the same command again; nothing was written"
    )]
    Mounted { path: String, mounted: String },
    #[error(
        "{path} is in use by {holders} (LVM, RAID or disk encryption): stop that first; nothing was written"
    )]
    Held { path: String, holders: String },
    #[error("{path} has no medium (an empty card reader?): insert the card; nothing was written")]
    NoMedium { path: String },
    #[error(
        "{path} is read-only (an SD card's write-protect switch?): slide the switch to unlock, reinsert it; nothing was written"
    )]
    ReadOnly { path: String },
    #[error(
        "{path} has {size}-byte logical sectors; disk images (and their GPT) are made for 512-byte sectors, so the image would not be readable there; nothing was written"
    )]
    SectorSize { path: String, size: u32 },
    #[error(
        "{path} is {what}, not a removable disk: refusing to overwrite it. If it really is the disk to flash, add --force; nothing was written"
    )]
    NotRemovable { path: String, what: String },
    #[error(
        "{path} is a partition of {disk}: an image is written onto a whole disk; use {disk}; nothing was written"
    )]
    Partition { path: String, disk: String },
}

/// Every disk with a medium (size above zero), by name; RAM disks, unused loop devices and
/// an eMMC's boot areas left out.
pub fn disks(host: &Host) -> std::io::Result<Vec<Disk>> {
    let mut names: Vec<String> = std::fs::read_dir(host.sys.join("class/block"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("zram"))
        // An eMMC's boot and RPMB areas are block devices of their own, not disks.
        .filter(|n| !(n.starts_with("mmcblk") && (n.contains("boot") || n.contains("rpmb"))))
        .filter(|n| !host.class(n).join("partition").exists())
        .collect();
    names.sort();
    let context = Context::read(host);
    Ok(names
        .iter()
        .map(|n| describe(host, &context, n))
        .filter(|d| d.size > 0)
        .collect())
}

/// The disk `dev` is, or the refusal when it is a partition.
pub fn disk_of(host: &Host, dev: DevNum) -> std::io::Result<Result<Disk, Refusal>> {
    let name = name_of(host, dev)?;
    if let Some(disk) = parent_disk(host, &name) {
        return Ok(Err(Refusal::Partition {
            path: format!("/dev/{name}"),
            disk: format!("/dev/{disk}"),
        }));
    }
    Ok(Ok(describe(host, &Context::read(host), &name)))
}

/// The kernel name of the block device `dev` (`/sys/dev/block/MAJ:MIN`).
fn name_of(host: &Host, dev: DevNum) -> std::io::Result<String> {
    let link = host.sys.join(format!("dev/block/{}:{}", dev.0, dev.1));
    let target = std::fs::read_link(&link).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{}: {e} (not a block device the kernel lists)",
                link.display()
            ),
        )
    })?;
    Ok(file_name(&target))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The disk a partition belongs to (`None` for a whole disk).
fn parent_disk(host: &Host, name: &str) -> Option<String> {
    let class = host.class(name);
    if !class.join("partition").exists() {
        return None;
    }
    let real = std::fs::canonicalize(&class).ok()?;
    Some(file_name(real.parent()?))
}

/// Host-wide facts read once: mounts, swaps, the system's disks.
struct Context {
    /// (device number, source, mount point).
    mounts: Vec<(DevNum, String, String)>,
    /// Kernel names of swap partitions.
    swaps: BTreeSet<String>,
    /// Kernel names of the disks under the root file system.
    system: BTreeSet<String>,
}

impl Context {
    fn read(host: &Host) -> Context {
        let mounts = std::fs::read_to_string(&host.mountinfo)
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default();
        let swaps = std::fs::read_to_string(&host.swaps)
            .map(|t| {
                t.lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().next())
                    .map(|p| device_name(Path::new(p)))
                    .collect()
            })
            .unwrap_or_default();
        let mut system = BTreeSet::new();
        let mut roots: Vec<String> = Vec::new();
        if let Some(name) = host.root_dev.and_then(|d| name_of(host, d).ok()) {
            roots.push(name);
        }
        for (dev, source, point) in &mounts {
            if point == "/" {
                roots.extend(name_of(host, *dev).ok());
                if source.starts_with("/dev/") {
                    roots.push(device_name(Path::new(source)));
                }
            }
        }
        for name in roots {
            disks_under(host, &name, &mut system, 0);
        }
        Context {
            mounts,
            swaps,
            system,
        }
    }
}

/// The kernel name behind a `/dev` path (following `/dev/mapper/…` and `/dev/disk/…`
/// links where they exist).
fn device_name(path: &Path) -> String {
    file_name(&std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Adds the whole disks that `name` (a disk, a partition, or a device-mapper or RAID
/// device) lies on.
fn disks_under(host: &Host, name: &str, out: &mut BTreeSet<String>, depth: usize) {
    let class = host.class(name);
    if depth > 8 || !class.exists() {
        return;
    }
    if let Some(disk) = parent_disk(host, name) {
        out.insert(disk);
        return;
    }
    let slaves = list(&class.join("slaves"));
    if slaves.is_empty() {
        out.insert(name.to_string());
    }
    for slave in slaves {
        disks_under(host, &slave, out, depth + 1);
    }
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn read_number(path: &Path) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

/// `(device number, source, mount point)` of every mount.
fn parse_mountinfo(text: &str) -> Vec<(DevNum, String, String)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (maj, min) = fields.get(2)?.split_once(':')?;
            let point = unescape(fields.get(4)?);
            let dash = fields.iter().position(|f| *f == "-")?;
            let source = unescape(fields.get(dash + 2)?);
            Some(((maj.parse().ok()?, min.parse().ok()?), source, point))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn describe(host: &Host, context: &Context, name: &str) -> Disk {
    let class = host.class(name);
    let real = std::fs::canonicalize(&class).unwrap_or_else(|_| class.clone());
    let real_text = real.to_string_lossy();
    let bus = if name.starts_with("loop") {
        "loop"
    } else if real_text.contains("/usb") {
        "usb"
    } else if name.starts_with("mmcblk") || real_text.contains("/mmc") {
        "mmc"
    } else if name.starts_with("nvme") {
        "nvme"
    } else if real_text.contains("/virtio") {
        "virtio"
    } else if real_text.contains("/ata") {
        "ata"
    } else if name.starts_with("sd") {
        "scsi"
    } else {
        "other"
    };
    let sd_card = bus == "mmc"
        && read_trimmed(&class.join("device/type")).is_some_and(|t| t.eq_ignore_ascii_case("SD"));
    let removable = read_number(&class.join("removable")) == Some(1) || bus == "usb" || sd_card;
    let model = read_trimmed(&class.join("device/model"))
        .or_else(|| read_trimmed(&class.join("device/name")));
    let partitions: Vec<String> = list(&class)
        .into_iter()
        .filter(|p| p.starts_with(name) && class.join(p).join("partition").exists())
        .collect();
    let mut devices: Vec<(String, Option<DevNum>)> = std::iter::once(name.to_string())
        .chain(partitions.iter().cloned())
        .map(|n| {
            let dev = read_trimmed(&host.class(&n).join("dev")).and_then(|d| {
                let (a, b) = d.split_once(':')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            });
            (n, dev)
        })
        .collect();
    devices.dedup();
    let mut mounted = Vec::new();
    for (n, dev) in &devices {
        for (mdev, source, point) in &context.mounts {
            let by_dev = dev.is_some_and(|d| d == *mdev);
            let by_source = source.starts_with("/dev/") && device_name(Path::new(source)) == *n;
            if by_dev || by_source {
                mounted.push(format!("/dev/{n} on {point}"));
            }
        }
        if context.swaps.contains(n) {
            mounted.push(format!("/dev/{n} as swap"));
        }
    }
    mounted.dedup();
    let holders: Vec<String> = devices
        .iter()
        .flat_map(|(n, _)| list(&host.class(n).join("holders")))
        .collect();
    Disk {
        name: name.to_string(),
        path: format!("/dev/{name}"),
        size: read_number(&class.join("size")).unwrap_or(0) * 512,
        model,
        bus: bus.to_string(),
        removable,
        read_only: read_number(&class.join("ro")) == Some(1),
        logical_sector: read_number(&class.join("queue/logical_block_size")).unwrap_or(512) as u32,
        backing_file: read_trimmed(&class.join("loop/backing_file")),
        partitions,
        mounted,
        holders,
        system: context.system.contains(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A made-up sysfs: `devices/<bus path>/block/<disk>[/<part>]`, reached through
    /// `class/block/<name>` and `dev/block/MAJ:MIN` links as in the real one.
    struct FakeHost {
        dir: tempfile::TempDir,
        mountinfo: String,
        swaps: String,
        root_dev: Option<DevNum>,
    }

    impl FakeHost {
        fn new() -> FakeHost {
            let dir = tempfile::tempdir().unwrap();
            for d in ["class/block", "dev/block"] {
                std::fs::create_dir_all(dir.path().join(d)).unwrap();
            }
            FakeHost {
                dir,
                mountinfo: String::new(),
                swaps: "Filename Type Size Used Priority\n".into(),
                root_dev: None,
            }
        }

        fn sys(&self) -> &Path {
            self.dir.path()
        }

        fn node(&self, real: &Path, name: &str, dev: DevNum, files: &[(&str, &str)]) {
            std::fs::create_dir_all(real.join("holders")).unwrap();
            std::fs::create_dir_all(real.join("slaves")).unwrap();
            std::fs::write(real.join("dev"), format!("{}:{}\n", dev.0, dev.1)).unwrap();
            for (file, text) in files {
                let path = real.join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, format!("{text}\n")).unwrap();
            }
            symlink(real, self.sys().join("class/block").join(name)).unwrap();
            symlink(
                real,
                self.sys().join(format!("dev/block/{}:{}", dev.0, dev.1)),
            )
            .unwrap();
        }

        /// A disk at `bus_path` with `partitions` (each numbered after it).
        fn disk(
            &self,
            bus_path: &str,
            name: &str,
            dev: DevNum,
            files: &[(&str, &str)],
            partitions: usize,
        ) {
            let real = self
                .sys()
                .join("devices")
                .join(bus_path)
                .join("block")
                .join(name);
            let mut all = vec![
                ("size", "62333952"),
                ("removable", "0"),
                ("ro", "0"),
                ("queue/logical_block_size", "512"),
            ];
            all.retain(|(f, _)| !files.iter().any(|(g, _)| g == f));
            all.extend_from_slice(files);
            self.node(&real, name, dev, &all);
            for i in 1..=partitions {
                let part = if name.ends_with(|c: char| c.is_ascii_digit()) {
                    format!("{name}p{i}")
                } else {
                    format!("{name}{i}")
                };
                let dev = (dev.0, dev.1 + i as u32);
                self.node(&real.join(&part), &part, dev, &[("partition", "1")]);
            }
        }

        fn mount(&mut self, dev: DevNum, source: &str, point: &str) {
            self.mountinfo += &format!(
                "30 1 {}:{} / {point} rw,relatime - ext4 {source} rw\n",
                dev.0, dev.1
            );
        }

        fn host(&self) -> Host {
            let mountinfo = self.sys().join("mountinfo");
            let swaps = self.sys().join("swaps");
            std::fs::write(&mountinfo, &self.mountinfo).unwrap();
            std::fs::write(&swaps, &self.swaps).unwrap();
            Host {
                sys: self.sys().to_path_buf(),
                mountinfo,
                swaps,
                root_dev: self.root_dev,
            }
        }
    }

    const USB_READER: &str = "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0";
    const SATA: &str = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";

    /// A laptop: the system on an NVMe disk, a SATA data disk, a card reader on USB
    /// with a card, a built-in SD slot with a card, an eMMC.
    fn laptop() -> FakeHost {
        let mut h = FakeHost::new();
        h.disk(
            "pci0000:00/0000:00:1d.0/nvme/nvme0",
            "nvme0n1",
            (259, 0),
            &[],
            2,
        );
        h.disk(
            SATA,
            "sda",
            (8, 0),
            &[("device/model", "Samsung SSD 870")],
            1,
        );
        h.disk(
            USB_READER,
            "sdb",
            (8, 16),
            &[("device/model", "SD/MMC Reader")],
            2,
        );
        h.disk(
            "platform/fe2c0000.mmc/mmc_host/mmc1/mmc1:aaaa",
            "mmcblk1",
            (179, 0),
            &[("device/type", "SD"), ("device/name", "SD32G")],
            1,
        );
        h.disk(
            "platform/fe2e0000.mmc/mmc_host/mmc0/mmc0:0001",
            "mmcblk0",
            (179, 32),
            &[("device/type", "MMC"), ("device/name", "A3A551")],
            0,
        );
        h.disk(
            "platform/fe2e0000.mmc/mmc_host/mmc0/mmc0:0001",
            "mmcblk0boot0",
            (179, 40),
            &[("ro", "1"), ("size", "8192")],
            0,
        );
        h.root_dev = Some((259, 2));
        h.mount((259, 2), "/dev/nvme0n1p2", "/");
        h.mount((259, 1), "/dev/nvme0n1p1", "/boot/efi");
        h
    }

    fn named<'a>(disks: &'a [Disk], name: &str) -> &'a Disk {
        disks.iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn a_card_reader_and_an_sd_slot_are_candidates_and_the_other_disks_are_not() {
        let h = laptop();
        let disks = super::disks(&h.host()).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mmcblk0", "mmcblk1", "nvme0n1", "sda", "sdb"]);

        let reader = named(&disks, "sdb");
        assert_eq!(reader.bus, "usb");
        assert!(reader.removable && reader.is_candidate(), "{reader:?}");
        assert_eq!(reader.model.as_deref(), Some("SD/MMC Reader"));
        assert_eq!(reader.size, 62333952 * 512);
        assert_eq!(reader.partitions, ["sdb1", "sdb2"]);

        let slot = named(&disks, "mmcblk1");
        assert!(slot.removable && slot.is_candidate(), "{slot:?}");
        assert_eq!(slot.model.as_deref(), Some("SD32G"));

        let emmc = named(&disks, "mmcblk0");
        assert!(!emmc.removable);
        assert!(matches!(
            emmc.refusal(false),
            Some(Refusal::NotRemovable { .. })
        ));
        assert_eq!(
            emmc.refusal(true),
            None,
            "--force takes a non-removable disk"
        );

        let data = named(&disks, "sda");
        assert_eq!(data.bus, "ata");
        assert!(matches!(
            data.refusal(false),
            Some(Refusal::NotRemovable { .. })
        ));

        let system = named(&disks, "nvme0n1");
        assert!(system.system);
        assert!(
            matches!(system.refusal(true), Some(Refusal::System { .. })),
            "--force never takes the system's disk"
        );
    }

    #[test]
    fn a_mounted_partition_or_swap_or_holder_refuses_the_whole_disk_even_with_force() {
        let mut h = laptop();
        h.mount((8, 18), "/dev/sdb2", "/media/user/my\\040card");
        let disks = super::disks(&h.host()).unwrap();
        let reader = named(&disks, "sdb");
        assert_eq!(reader.mounted, ["/dev/sdb2 on /media/user/my card"]);
        let refusal = reader.refusal(true).unwrap();
        assert!(matches!(refusal, Refusal::Mounted { .. }));
        assert!(refusal.to_string().contains("Unmount"), "{refusal}");

        let mut h = laptop();
        h.swaps += "/dev/sdb1 partition 1048572 0 -2\n";
        let disks = super::disks(&h.host()).unwrap();
        assert_eq!(named(&disks, "sdb").mounted, ["/dev/sdb1 as swap"]);

        let h = laptop();
        std::fs::create_dir_all(h.sys().join("class/block/sdb/sdb1/holders/dm-0")).unwrap();
        let disks = super::disks(&h.host()).unwrap();
        let held = named(&disks, "sdb").refusal(true).unwrap();
        assert!(matches!(held, Refusal::Held { .. }), "{held}");
    }

    #[test]
    fn the_system_disk_is_found_through_device_mapper_and_by_the_root_mount_source() {
        // / on dm-0 (LVM) over sda1; stat / names the dm device.
        let mut h = FakeHost::new();
        h.disk(SATA, "sda", (8, 0), &[("removable", "1")], 1);
        h.disk(USB_READER, "sdb", (8, 16), &[], 0);
        let dm = h.sys().join("devices/virtual/block/dm-0");
        h.node(&dm, "dm-0", (253, 0), &[("size", "1000")]);
        symlink(h.sys().join("class/block/sda1"), dm.join("slaves/sda1")).unwrap();
        h.root_dev = Some((253, 0));
        let disks = super::disks(&h.host()).unwrap();
        assert!(named(&disks, "sda").system, "{disks:?}");
        assert!(!named(&disks, "sdb").system);

        // btrfs: stat / gives an anonymous device; the mount's source names the disk.
        let mut h = FakeHost::new();
        h.disk(SATA, "sda", (8, 0), &[("removable", "1")], 2);
        h.root_dev = Some((0, 31));
        h.mount((0, 31), "/dev/sda2", "/");
        let disks = super::disks(&h.host()).unwrap();
        let refusal = named(&disks, "sda").refusal(true).unwrap();
        assert!(matches!(refusal, Refusal::System { .. }), "{refusal}");
    }

    #[test]
    fn a_partition_is_refused_with_its_disk_named() {
        let h = laptop();
        let refusal = disk_of(&h.host(), (8, 17)).unwrap().unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Partition {
                path: "/dev/sdb1".into(),
                disk: "/dev/sdb".into()
            }
        );
        let disk = disk_of(&h.host(), (8, 16)).unwrap().unwrap();
        assert_eq!(disk.name, "sdb");
    }

    #[test]
    fn odd_sectors_read_only_and_empty_readers_are_refused() {
        let h = FakeHost::new();
        h.disk(
            USB_READER,
            "sdc",
            (8, 32),
            &[("queue/logical_block_size", "4096")],
            0,
        );
        h.disk(USB_READER, "sdd", (8, 48), &[("ro", "1")], 0);
        h.disk(USB_READER, "sde", (8, 64), &[("size", "0")], 0);
        let host = h.host();
        let refusal = |dev| disk_of(&host, dev).unwrap().unwrap().refusal(true);
        assert!(matches!(
            refusal((8, 32)),
            Some(Refusal::SectorSize { size: 4096, .. })
        ));
        assert!(matches!(refusal((8, 48)), Some(Refusal::ReadOnly { .. })));
        assert!(matches!(refusal((8, 64)), Some(Refusal::NoMedium { .. })));
        let listed: Vec<String> = disks(&host).unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(listed, ["sdc", "sdd"], "an empty reader is not listed");
    }
}
