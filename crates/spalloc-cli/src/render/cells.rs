//! Cells flowed into columns across the page, as the reference's `render_cells`.

/// Lays out `(visible_length, text)` cells left to right in equal columns
/// two spaces wider than the widest cell, starting a new line before a cell
/// that would pass `width`; lines are right-trimmed and an empty list is `""`.
pub fn render_cells(cells: &[(usize, String)], width: usize) -> String {
    const COLUMN_SPACING: usize = 2;
    let Some(widest) = cells.iter().map(|(length, _)| *length).max() else {
        return String::new();
    };
    let column_width = widest + COLUMN_SPACING;
    let mut lines = vec![String::new()];
    let mut line_length = 0;
    for (length, text) in cells {
        if line_length + length > width {
            lines.push(String::new());
            line_length = 0;
        }
        if let Some(line) = lines.last_mut() {
            line.push_str(text);
            line.push_str(&" ".repeat(column_width - length));
        }
        line_length += column_width;
    }
    lines
        .iter()
        .map(|line| line.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<(usize, String)> {
        ["a", "bc", "def", "g"]
            .iter()
            .map(|s| (s.len(), s.to_string()))
            .collect()
    }

    #[test]
    fn wraps_at_the_given_width() {
        assert_eq!(render_cells(&cells(), 80), "a    bc   def  g");
        assert_eq!(render_cells(&cells(), 5), "a\nbc\ndef\ng");
        assert_eq!(render_cells(&cells(), 10), "a    bc\ndef  g");
        assert_eq!(render_cells(&cells(), 11), "a    bc\ndef  g");
        assert_eq!(render_cells(&cells(), 13), "a    bc   def\ng");
        assert_eq!(render_cells(&[], 80), "");
    }
}
