//! A disk's layout drawn to scale in a terminal: table, bootloader, partitions and free
//! space as boxes whose widths follow their sizes.
//!
//! A 2 GiB partition next to a 1 MiB one cannot both be to scale in 80 columns, so every
//! area gets at least enough columns for its label and the largest areas give up the
//! difference; those are drawn broken (`╱╱`, or `~~` in plain ASCII) to say they are not
//! to scale. A legend under the map gives every area's exact position and size.
//!
//! ```text
//! ┌───┬─────┬──────┬─────┬───────┬───┬─────────────╱╱─────────────┬────┬──────┐
//! │GPT│free·│U-Boot│free·│entries│fr…│EFI          ╱╱             │META│backup│
//! └───┴─────┴──────┴─────┴───────┴───┴─────────────╱╱─────────────┴────┴──────┘
//! ```

mod draw;
mod scale;

use crate::layout::ByteRange;
use crate::units::human_bytes;

/// What an area of the disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AreaKind {
    /// Protective MBR, GPT headers and entry arrays.
    Table,
    Bootloader,
    Partition,
    /// Nothing claims it.
    Free,
}

/// One area of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub kind: AreaKind,
    pub label: String,
    pub range: ByteRange,
}

/// Characters to draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Box-drawing characters.
    #[default]
    Unicode,
    /// `+`, `-`, `|` and `~~`, for terminals and logs without Unicode.
    Ascii,
}

/// A disk's areas in order, covering it without gaps (gaps become [`AreaKind::Free`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMap {
    len: u64,
    areas: Vec<Area>,
}

impl DiskMap {
    /// Builds the map of a disk of `len` bytes from the claimed areas, in any order.
    ///
    /// Areas are cut to the disk; where two overlap, the earlier-starting one keeps the
    /// shared bytes (the map shows layout, it does not judge it: the GPT report does).
    pub fn new(len: u64, claimed: impl IntoIterator<Item = (AreaKind, String, ByteRange)>) -> Self {
        let mut claimed: Vec<(AreaKind, String, ByteRange)> = claimed
            .into_iter()
            .filter_map(|(kind, label, range)| Some((kind, label, range.clip_to(len)?)))
            .collect();
        claimed.sort_by_key(|(_, _, r)| (r.start, r.end()));
        let mut areas = Vec::with_capacity(claimed.len() * 2 + 1);
        let mut end = 0u64;
        for (kind, label, range) in claimed {
            let start = range.start.max(end);
            if start >= range.end() {
                continue;
            }
            if start > end {
                areas.push(free(end, start));
            }
            areas.push(Area {
                kind,
                label,
                range: ByteRange::new(start, range.end() - start),
            });
            end = range.end();
        }
        if end < len {
            areas.push(free(end, len));
        }
        Self { len, areas }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The map in at most `width` columns, with its legend.
    pub fn render(&self, width: usize, style: Style) -> String {
        let columns = scale::allocate(&self.areas, self.len, width);
        let mut out = match &columns {
            Some(columns) => draw::boxes(&self.areas, columns, style),
            None => "(the terminal is too narrow to draw the map)\n".to_string(),
        };
        let broken = columns.map(|c| c.broken).unwrap_or_default();
        out += &self.legend(&broken);
        out
    }

    fn legend(&self, broken: &[bool]) -> String {
        let mut out = format!("0 .. {} ({} bytes)\n", human_bytes(self.len), self.len);
        for (i, a) in self.areas.iter().enumerate() {
            out += &format!(
                "  {:<12} {:>10} .. {:<10} {:>10}{}\n",
                a.label,
                human_bytes(a.range.start),
                human_bytes(a.range.end()),
                human_bytes(a.range.len),
                if broken.get(i).copied().unwrap_or(false) {
                    "  (drawn shorter)"
                } else {
                    ""
                }
            );
        }
        out
    }
}

fn free(start: u64, end: u64) -> Area {
    Area {
        kind: AreaKind::Free,
        label: "free".into(),
        range: ByteRange::new(start, end - start),
    }
}

/// Two maps one above the other, titled, for a before/after comparison.
pub fn render_before_after(
    before: &DiskMap,
    after: &DiskMap,
    width: usize,
    style: Style,
) -> String {
    format!(
        "before:\n{}\nafter:\n{}",
        before.render(width, style),
        after.render(width, style)
    )
}

#[cfg(test)]
mod tests;
