//! Aligned tables, as the reference's `render_table`.

use crate::terminal::{Style, Terminal};

/// One table cell: text is left-aligned, numbers right-aligned; the optional
/// style wraps the value after its padding was computed on the plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCell {
    text: String,
    right_aligned: bool,
    style: Option<Style>,
}

impl TableCell {
    /// A left-aligned text cell.
    pub fn text(text: impl Into<String>) -> TableCell {
        TableCell {
            text: text.into(),
            right_aligned: false,
            style: None,
        }
    }

    /// A right-aligned number cell.
    pub fn number(value: impl std::fmt::Display) -> TableCell {
        TableCell {
            text: value.to_string(),
            right_aligned: true,
            style: None,
        }
    }

    /// The same cell, painted in `style` on a terminal.
    pub fn styled(mut self, style: Style) -> TableCell {
        self.style = Some(style);
        self
    }

    /// The same cell with an optional style.
    pub fn maybe_styled(mut self, style: Option<Style>) -> TableCell {
        self.style = style;
        self
    }
}

/// Renders rows of cells in columns separated by two spaces, each line
/// right-trimmed; an empty table is `""`.
pub fn render_table(rows: &[Vec<TableCell>], terminal: &Terminal) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            let length = cell.text.chars().count();
            match widths.get_mut(column) {
                Some(width) => *width = (*width).max(length),
                None => widths.push(length),
            }
        }
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| {
                    let padding = " ".repeat(width - cell.text.chars().count());
                    let shown = match &cell.style {
                        Some(style) => terminal.paint(style, &cell.text),
                        None => cell.text.clone(),
                    };
                    if cell.right_aligned {
                        padding + &shown
                    } else {
                        shown + &padding
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let rows = vec![
            vec![
                TableCell::text("Name"),
                TableCell::text("Count"),
                TableCell::text(""),
            ],
            vec![
                TableCell::text("a"),
                TableCell::number(7),
                TableCell::text(""),
            ],
            vec![
                TableCell::text("bbbbbb"),
                TableCell::number(1234567),
                TableCell::text("x"),
            ],
        ];
        assert_eq!(
            render_table(&rows, &Terminal::forced(false)),
            "Name    Count\na             7\nbbbbbb  1234567  x"
        );
        assert_eq!(render_table(&[], &Terminal::forced(false)), "");
    }

    #[test]
    fn styles_wrap_the_value_not_the_padding() {
        let rows = vec![
            vec![TableCell::text("ab"), TableCell::text("c")],
            vec![
                TableCell::text("a").styled(Style::RED),
                TableCell::number(1).styled(Style::RED),
            ],
        ];
        assert_eq!(
            render_table(&rows, &Terminal::forced(true)),
            "ab  c\n\x1b[31ma\x1b[0m   \x1b[31m1\x1b[0m"
        );
    }
}
