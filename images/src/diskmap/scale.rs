//! How many columns each area gets.

use super::{Area, AreaKind};

/// Labels longer than this may be cut rather than widen their area further.
const LABEL_COLUMNS: usize = 6;
/// A broken area keeps room for a column on each side of its break mark.
const BROKEN_MIN: usize = 4;

/// Interior columns per area (borders excluded) and which areas are drawn shorter than
/// their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Columns {
    pub cells: Vec<usize>,
    pub broken: Vec<bool>,
}

/// Fits `areas` into `width` columns, one border column between areas and at each end.
/// `None` when even one column per area does not fit.
pub(super) fn allocate(areas: &[Area], len: u64, width: usize) -> Option<Columns> {
    let inner = width.checked_sub(areas.len() + 1)?;
    let readable: Vec<usize> = areas.iter().map(min_columns).collect();
    fit(areas, len, inner, &readable).or_else(|| fit(areas, len, inner, &vec![1; areas.len()]))
}

/// Enough columns to read the label, except for free space, which needs only to be seen.
fn min_columns(area: &Area) -> usize {
    match area.kind {
        AreaKind::Free => 1,
        _ => area.label.chars().count().clamp(1, LABEL_COLUMNS),
    }
}

fn fit(areas: &[Area], len: u64, inner: usize, mins: &[usize]) -> Option<Columns> {
    if areas.is_empty() || len == 0 || mins.iter().sum::<usize>() > inner {
        return None;
    }
    let ideal: Vec<f64> = areas
        .iter()
        .map(|a| a.range.len as f64 / len as f64 * inner as f64)
        .collect();
    let mut cells: Vec<usize> = ideal
        .iter()
        .zip(mins)
        .map(|(&x, &min)| (x.floor() as usize).max(min))
        .collect();
    let mut broken = vec![false; areas.len()];

    // Too wide: the areas inflated to their minimum took columns from the rest, so the
    // largest areas give them back, and are marked as no longer to scale.
    let mut over = cells.iter().sum::<usize>().saturating_sub(inner);
    while over > 0 {
        let floor = |i: usize| mins[i].max(BROKEN_MIN);
        let widest = (0..cells.len())
            .filter(|&i| cells[i] > floor(i))
            .max_by_key(|&i| cells[i])?;
        let give = over.min(cells[widest] - floor(widest));
        cells[widest] -= give;
        broken[widest] = true;
        over -= give;
    }

    // Too narrow: rounding down left columns over; they go to the areas drawn to scale
    // that lost the most to rounding (largest remainder).
    let mut left = inner.saturating_sub(cells.iter().sum::<usize>());
    let mut by_remainder: Vec<usize> = (0..cells.len())
        .filter(|&i| !broken[i] && ideal[i] > cells[i] as f64)
        .collect();
    by_remainder.sort_by(|&a, &b| {
        let ra = ideal[a] - cells[a] as f64;
        let rb = ideal[b] - cells[b] as f64;
        rb.total_cmp(&ra)
    });
    for i in by_remainder {
        if left == 0 {
            break;
        }
        cells[i] += 1;
        left -= 1;
    }
    // Anything still left (every area at its minimum or broken) widens the largest area.
    if left > 0 {
        let largest = (0..areas.len()).max_by_key(|&i| areas[i].range.len)?;
        cells[largest] += left;
    }
    Some(Columns { cells, broken })
}
