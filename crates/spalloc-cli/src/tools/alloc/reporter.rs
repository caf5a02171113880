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

    /// Rewrites the status line with `text` in `style` plus a dim suffix,
    /// leaving the cursor on it (only on a terminal). `suffixes` are the
    /// same news from the most to the least wordy: the first that fits the
    /// window (less one column) is shown, else the last, cut to fit. A line
    /// that wraps would leave a new row behind at every redraw, since the
    /// saved cursor is on its first row.
    pub fn live(&self, style: &Style, text: &str, suffixes: &[String]) {
        if self.terminal.is_enabled() {
            let (text, suffix) = match self.terminal.columns() {
                Some(columns) => choose_and_fit(text, suffixes, columns.saturating_sub(1)),
                None => (
                    text.to_owned(),
                    suffixes.first().cloned().unwrap_or_default(),
                ),
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

/// The first of `suffixes` that fits `width` beside `text`, or the last,
/// cut to fit (see [`fit_line`]).
pub fn choose_and_fit(text: &str, suffixes: &[String], width: usize) -> (String, String) {
    let room = width.saturating_sub(text.chars().count());
    match suffixes.iter().find(|s| s.chars().count() <= room) {
        Some(suffix) => (text.to_owned(), suffix.clone()),
        None => fit_line(text, suffixes.last().map_or("", String::as_str), width),
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

    #[test]
    fn the_wordiest_suffix_that_fits_is_chosen() {
        let suffixes = vec![" (long long long)".to_owned(), " (short)".to_owned()];
        let choose = |w| choose_and_fit("Job 7", &suffixes, w);
        assert_eq!(choose(80), ("Job 7".into(), " (long long long)".into()));
        assert_eq!(choose(15), ("Job 7".into(), " (short)".into()));
        assert_eq!(choose(10), ("Job 7".into(), " (sh…".into()));
    }
}
