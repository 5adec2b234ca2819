//! Byte counts for people.

/// `1.5 MiB`, `2.2 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn picks_the_largest_fitting_unit() {
        assert_eq!(super::human_bytes(511), "511 B");
        assert_eq!(super::human_bytes(11 * 1024 * 1024), "11.0 MiB");
        assert_eq!(super::human_bytes(2_355_101_696), "2.2 GiB");
    }
}
