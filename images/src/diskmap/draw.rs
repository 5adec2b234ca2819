//! Drawing allocated areas as a row of boxes.

use super::scale::Columns;
use super::{Area, AreaKind, Style};

struct Glyphs {
    top: [char; 3],
    bottom: [char; 3],
    horizontal: char,
    vertical: char,
    free_fill: char,
    break_mark: &'static str,
    ellipsis: char,
}

const UNICODE: Glyphs = Glyphs {
    top: ['┌', '┬', '┐'],
    bottom: ['└', '┴', '┘'],
    horizontal: '─',
    vertical: '│',
    free_fill: '·',
    break_mark: "╱╱",
    ellipsis: '…',
};

const ASCII: Glyphs = Glyphs {
    top: ['+', '+', '+'],
    bottom: ['+', '+', '+'],
    horizontal: '-',
    vertical: '|',
    free_fill: '.',
    break_mark: "~~",
    ellipsis: '.',
};

/// Three lines: top border, labels, bottom border.
pub(super) fn boxes(areas: &[Area], columns: &Columns, style: Style) -> String {
    let g = match style {
        Style::Unicode => &UNICODE,
        Style::Ascii => &ASCII,
    };
    let mut top = vec![g.top[0]];
    let mut middle = vec![g.vertical];
    let mut bottom = vec![g.bottom[0]];
    for (i, area) in areas.iter().enumerate() {
        let cells = columns.cells[i];
        let mark = columns.broken[i].then_some(g.break_mark);
        top.extend(with_break(vec![g.horizontal; cells], mark));
        bottom.extend(with_break(vec![g.horizontal; cells], mark));
        middle.extend(with_break(label_cells(area, cells, g), mark));
        let last = i + 1 == areas.len();
        top.push(if last { g.top[2] } else { g.top[1] });
        bottom.push(if last { g.bottom[2] } else { g.bottom[1] });
        middle.push(g.vertical);
    }
    [top, middle, bottom]
        .iter()
        .map(|line| line.iter().collect::<String>() + "\n")
        .collect()
}

/// The label, cut with an ellipsis when it does not fit, padded (free space with dots).
fn label_cells(area: &Area, cells: usize, g: &Glyphs) -> Vec<char> {
    let free = area.kind == AreaKind::Free;
    let fill = if free { g.free_fill } else { ' ' };
    let label: Vec<char> = area.label.chars().collect();
    if free && label.len() > cells {
        // Free space explains itself by its dots; a cut "free" would only be noise.
        return vec![fill; cells];
    }
    let mut out: Vec<char> = if label.len() <= cells {
        label
    } else if cells >= 2 {
        label[..cells - 1]
            .iter()
            .copied()
            .chain([g.ellipsis])
            .collect()
    } else {
        label[..cells].to_vec()
    };
    out.resize(cells, fill);
    out
}

/// Puts the break mark in the middle of an area's columns.
fn with_break(mut cells: Vec<char>, mark: Option<&str>) -> Vec<char> {
    if let Some(mark) = mark {
        let mark: Vec<char> = mark.chars().collect();
        if cells.len() >= mark.len() {
            let at = (cells.len() - mark.len()) / 2;
            cells.splice(at..at + mark.len(), mark);
        }
    }
    cells
}
