use super::*;

const MIB: u64 = 1024 * 1024;

fn area(kind: AreaKind, label: &str, start: u64, len: u64) -> (AreaKind, String, ByteRange) {
    (kind, label.to_string(), ByteRange::new(start, len))
}

/// The vanilla metal-arm64 image (docs/disk-layout.md §1): EFI 2101 MiB at LBA 2048, META.
fn generic_talos() -> DiskMap {
    let len = 2104 * MIB;
    DiskMap::new(
        len,
        [
            area(AreaKind::Table, "GPT", 0, 34 * 512),
            area(AreaKind::Partition, "EFI", MIB, 2101 * MIB),
            area(AreaKind::Partition, "META", 2102 * MIB, MIB),
            area(AreaKind::Table, "backup GPT", len - 33 * 512, 33 * 512),
        ],
    )
}

/// A 64 GiB eMMC holding the M6 layout of a Talos ≥ 1.11 image, the rest free.
fn m6_on_emmc() -> DiskMap {
    let len = 64 * 1024 * MIB;
    DiskMap::new(
        len,
        [
            area(AreaKind::Table, "GPT", 0, 1024),
            area(AreaKind::Bootloader, "U-Boot", 32768, 9_713_152),
            area(AreaKind::Table, "GPT entries", 20482 * 512, 16384),
            area(AreaKind::Partition, "EFI", 22528 * 512, 100 * MIB),
            area(AreaKind::Partition, "BIOS", 111 * MIB, MIB),
            area(AreaKind::Partition, "BOOT", 112 * MIB, 2000 * MIB),
            area(AreaKind::Partition, "META", 2112 * MIB, MIB),
        ],
    )
}

/// Interior columns of each area, read back from the drawn label line.
fn drawn_widths(map: &str) -> Vec<usize> {
    let labels = map.lines().nth(1).unwrap();
    labels
        .split(['│', '|'])
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().count())
        .collect()
}

#[test]
fn gaps_become_free_areas_and_overlaps_are_cut() {
    let map = DiskMap::new(
        100,
        [
            area(AreaKind::Partition, "b", 50, 30),
            area(AreaKind::Partition, "a", 10, 45),
            area(AreaKind::Partition, "beyond", 120, 10),
        ],
    );
    let got: Vec<(&str, u64, u64)> = map
        .areas()
        .iter()
        .map(|a| (a.label.as_str(), a.range.start, a.range.end()))
        .collect();
    assert_eq!(
        got,
        [
            ("free", 0, 10),
            ("a", 10, 55),
            ("b", 55, 80),
            ("free", 80, 100)
        ]
    );
}

#[test]
fn equal_areas_are_drawn_to_scale_without_breaks() {
    let map = DiskMap::new(
        400,
        (0..4).map(|i| area(AreaKind::Partition, &format!("p{i}"), i * 100, 100)),
    );
    let text = map.render(45, Style::Unicode);
    assert_eq!(drawn_widths(&text), [10, 10, 10, 10]);
    assert!(
        !text.contains("╱╱") && !text.contains("drawn shorter"),
        "{text}"
    );
    assert!(text.lines().take(3).all(|l| l.chars().count() == 45));
}

#[test]
fn a_huge_partition_is_broken_so_the_small_ones_keep_their_labels() {
    let map = generic_talos();
    let text = map.render(80, Style::Unicode);
    for line in text.lines().take(3) {
        assert_eq!(line.chars().count(), 80, "{text}");
        assert!(
            line.contains("╱╱"),
            "every line of EFI shows the break:\n{text}"
        );
    }
    let widths = drawn_widths(&text);
    let labels: Vec<&str> = map.areas().iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels, ["GPT", "free", "EFI", "META", "free", "backup GPT"]);
    // EFI still dominates, META (1 MiB of 2104) is readable although far below scale.
    assert!(widths[2] > 40, "{widths:?}");
    assert!(text.lines().nth(1).unwrap().contains("│META│"), "{text}");
    assert!(text.contains("EFI") && text.contains("(drawn shorter)"));
    // Only the broken area is marked in the legend.
    assert_eq!(text.matches("(drawn shorter)").count(), 1);
}

#[test]
fn the_free_space_of_a_large_device_is_what_gets_broken() {
    let map = m6_on_emmc();
    let text = map.render(100, Style::Unicode);
    let labels: Vec<&str> = map.areas().iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels.last(), Some(&"free"));
    let legend_free = text.lines().last().unwrap();
    assert!(
        legend_free.contains("free") && legend_free.contains("(drawn shorter)"),
        "{text}"
    );
    let line = text.lines().nth(1).unwrap();
    for label in ["U-Boot", "EFI", "BIOS", "BOOT", "META"] {
        assert!(line.contains(label), "{label} not readable:\n{text}");
    }
    // BOOT (2000 MiB) is still drawn wider than EFI (100 MiB): the order of sizes shows.
    let widths = drawn_widths(&text);
    let index = |name: &str| labels.iter().position(|l| *l == name).unwrap();
    assert!(
        widths[index("BOOT")] > widths[index("EFI")],
        "{widths:?}\n{text}"
    );
}

#[test]
fn ascii_style_uses_only_ascii_and_tilde_breaks() {
    let text = generic_talos().render(60, Style::Ascii);
    assert!(text.is_ascii(), "{text}");
    assert!(
        text.lines()
            .take(3)
            .all(|l| l.contains("~~") && l.len() == 60),
        "{text}"
    );
    assert!(text.starts_with("+---+"), "{text}");
}

#[test]
fn a_terminal_too_narrow_for_the_boxes_still_gets_the_legend() {
    let text = m6_on_emmc().render(12, Style::Unicode);
    assert!(text.starts_with("(the terminal is too narrow"), "{text}");
    assert!(text.contains("U-Boot") && text.contains("META"));
    // Degenerate inputs do not panic.
    assert!(
        DiskMap::new(0, [])
            .render(80, Style::Unicode)
            .contains("0 B")
    );
    let _ = generic_talos().render(0, Style::Ascii);
}

#[test]
fn before_and_after_are_titled_and_stacked() {
    let text = render_before_after(&generic_talos(), &m6_on_emmc(), 80, Style::Unicode);
    let before = text.find("before:").unwrap();
    let after = text.find("after:").unwrap();
    assert!(before < after);
    assert!(text[after..].contains("U-Boot") && !text[..after].contains("U-Boot"));
}
