//! `spalloc`'s status messages on stderr (silenced by `--quiet`).

use crate::terminal::{Style, Terminal};
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

    /// Rewrites the status line with `text` in `style`, then ends the line.
    pub fn line(&self, style: &Style, text: &str) {
        self.info(&format!(
            "{}\n",
            self.terminal.update(&self.terminal.paint(style, text))
        ));
    }

    /// Rewrites the status line with `text` in `style` plus a dim `suffix`,
    /// leaving the cursor on it (only on a terminal).
    pub fn live(&self, style: &Style, text: &str, suffix: &str) {
        if self.terminal.is_enabled() {
            self.info(&self.terminal.update(&format!(
                "{}{}",
                self.terminal.paint(style, text),
                self.terminal.paint(&Style::DIM, suffix)
            )));
        }
    }

    /// A diagnostic line, with `--debug` only.
    pub fn debug(&self, text: &str) {
        if self.debug {
            eprintln!("INFO:spalloc: {text}");
        }
    }
}
