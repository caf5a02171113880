//! `spalloc`'s status messages on stderr (silenced by `--quiet`).

use crate::terminal::{fit_to_width, Style, Terminal};
use std::io::Write;

/// Writes status lines to stderr, in colour and in place on a terminal.
#[derive(Debug)]
pub struct Reporter {
    /// `--quiet`: print nothing.
    pub quiet: bool,
    /// `--debug`: print the diagnostic lines too.
    pub debug: bool,
    /// Styling for stderr.
    pub terminal: Terminal,
}

impl Reporter {
    /// Writes `text` as is.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{text}");
            let _ = err.flush();
        }
    }

    /// Rewrites the status line with `text` in `style`, then ends the line
    /// (so that the next status line starts below it).
    pub fn line(&self, style: &Style, text: &str) {
        self.info(&format!(
            "{}\n",
            self.terminal.update(&self.terminal.paint(style, text))
        ));
        self.terminal.start_again();
    }

    /// Rewrites the status line with `text` in `style` plus a dim `suffix`,
    /// leaving the cursor on it (only on a terminal). The line is cut to the
    /// window's width less one column: a line that wraps would leave a new
    /// row behind at every redraw, since the saved cursor is on the first.
    pub fn live(&self, style: &Style, text: &str, suffix: &str) {
        if self.terminal.is_enabled() {
            let (text, suffix) = match self.terminal.columns() {
                Some(columns) => fit_line(text, suffix, columns.saturating_sub(1)),
                None => (text.to_owned(), suffix.to_owned()),
            };
            let mut line = self.terminal.paint(style, &text);
            if !suffix.is_empty() {
                line.push_str(&self.terminal.paint(&Style::DIM, &suffix));
            }
            self.info(&self.terminal.update(&line));
        }
    }

    /// A diagnostic line, with `--debug` only.
    pub fn debug(&self, text: &str) {
        if self.debug {
            eprintln!("INFO:spalloc: {text}");
        }
    }
}

/// `text` and `suffix` cut to `width` characters together: the suffix gives
/// way first, then the text.
pub fn fit_line(text: &str, suffix: &str, width: usize) -> (String, String) {
    let text = fit_to_width(text, width);
    let left = width.saturating_sub(text.chars().count());
    let suffix = if left < 3 {
        String::new()
    } else {
        fit_to_width(suffix, left)
    };
    (text, suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suffix_gives_way_before_the_text() {
        let fit = |w| fit_line("Job 7: Waiting in queue...", " (0:05 elapsed)", w);
        assert_eq!(
            fit(80),
            (
                "Job 7: Waiting in queue...".into(),
                " (0:05 elapsed)".into()
            )
        );
        assert_eq!(
            fit(33),
            ("Job 7: Waiting in queue...".into(), " (0:05…".into())
        );
        assert_eq!(
            fit(27),
            ("Job 7: Waiting in queue...".into(), String::new())
        );
        assert_eq!(fit(10), ("Job 7: Wa…".into(), String::new()));
    }
}
