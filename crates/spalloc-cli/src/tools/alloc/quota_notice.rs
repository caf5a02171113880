//! `spalloc`'s quota warnings: while it waits for or holds its job, a
//! warning from the server that the job's group is about to run out of
//! board-seconds (see [`crate::quota_warning`]) is printed to stderr once,
//! as `Job N: Quota warning: …`, and again only when it says something new.
//!
//! The server's sentence carries figures that change at every read ("has
//! 412 board-seconds of quota left … in about 206 s"), so "new" means: its
//! words other than the figures changed, or its time left is not what the
//! last one printed foretold (by more than a quarter, and more than
//! [`SLACK`]): the group's rate or quota changed, say because another of
//! its jobs started or an operator granted more.
//!
//! While waiting, the wait loop reads the state anyway and hands each
//! warning to [`QuotaNotices`]. Once the job is held (the command runs, or
//! the prompt waits for Enter), nothing else reads it, so [`QuotaWatch`]
//! reads it every [`REREAD`] on a thread of its own, and also says so if
//! the job is destroyed meanwhile (by the quota, an operator or its
//! keepalive). Stdout is never written, except to show the prompt again
//! after a warning printed under it on a terminal.

use super::messages::{render_prompt, state_message};
use super::reporter::Reporter;
use crate::quota_warning::QuotaWarning;
use crate::terminal::{Style, Terminal};
use spalloc_protocol::JobState;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a held job's state is read for a warning: one small request
/// every few seconds is nothing to a server, and the default warning comes
/// ten minutes ahead.
pub const REREAD: Duration = Duration::from_secs(5);

/// How far a warning's time left may stray from what the last one printed
/// foretold, beyond a quarter of it, before it is news (reads are seconds
/// apart, and the server rounds).
pub const SLACK: Duration = Duration::from_secs(5);

/// The last warning printed.
#[derive(Debug, Clone)]
struct Shown {
    /// Its words, figures replaced by `#`.
    words: String,
    /// Its time left, and when it was read.
    seconds_left: Option<(f64, Instant)>,
}

/// Decides which warnings are worth printing; one per run of `spalloc`.
#[derive(Debug, Clone, Default)]
pub struct QuotaNotices {
    shown: Option<Shown>,
}

/// `text` with every figure (digits, with any `.` or `,` between them)
/// replaced by `#`.
fn words_of(text: &str) -> String {
    let mut words = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while let Some(&next) = chars.peek() {
                let continues = next.is_ascii_digit()
                    || ((next == '.' || next == ',')
                        && chars.clone().nth(1).is_some_and(|d| d.is_ascii_digit()));
                if !continues {
                    break;
                }
                chars.next();
            }
            words.push('#');
        } else {
            words.push(c);
        }
    }
    words
}

impl QuotaNotices {
    /// Whether `warning`, read at `now`, is news (see the module doc); if
    /// so it is remembered as printed.
    pub fn is_news(&mut self, warning: &QuotaWarning, now: Instant) -> bool {
        let words = words_of(&warning.message);
        let news = match &self.shown {
            None => true,
            Some(shown) if shown.words != words => true,
            Some(shown) => match (shown.seconds_left, warning.seconds_left) {
                (Some((then_left, then)), Some(left)) => {
                    let foretold = then_left - now.saturating_duration_since(then).as_secs_f64();
                    let strayed = (left - foretold).abs();
                    strayed > foretold.abs() / 4.0 && strayed > SLACK.as_secs_f64()
                }
                _ => false,
            },
        };
        if news {
            self.shown = Some(Shown {
                words,
                seconds_left: warning.seconds_left.map(|left| (left, now)),
            });
        }
        news
    }

    /// Prints `warning` for job `job_id` (in yellow) if it is news.
    pub fn offer(&mut self, job_id: u64, warning: Option<&QuotaWarning>, reporter: &Reporter) {
        if let Some(warning) = warning.filter(|w| self.is_news(w, Instant::now())) {
            reporter.line(&Style::YELLOW, &line(job_id, warning));
        }
    }
}

/// How a warning is printed.
pub fn line(job_id: u64, warning: &QuotaWarning) -> String {
    format!("Job {job_id}: Quota warning: {}", warning.message)
}

/// What one read of a held job finds.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Still the tool's, with its warning if any.
    Live(Option<QuotaWarning>),
    /// Destroyed (with the reason, if known) or forgotten by the server.
    Gone(JobState, Option<String>),
}

/// Reads a held job's state, over either protocol.
pub type ReadHeld = Box<dyn FnMut() -> Result<Held, spalloc::Error> + Send>;

/// What a [`QuotaWatch`] needs, gathered before the job is ready.
pub struct HeldWatch {
    /// The job.
    pub job_id: u64,
    /// The warnings printed while waiting.
    pub notices: QuotaNotices,
    /// `--quiet`: print nothing.
    pub quiet: bool,
    /// How to read the state.
    pub read: ReadHeld,
}

impl HeldWatch {
    /// Starts watching; `prompt` says whether the ready block's prompt is
    /// waiting for Enter (then a warning on a terminal starts on a line of
    /// its own and the prompt is shown again below it).
    pub fn start(self, prompt: bool) -> QuotaWatch {
        let prompt = prompt && std::io::stdout().is_terminal();
        let (stop, stopped) = mpsc::channel::<()>();
        let HeldWatch {
            job_id,
            mut notices,
            quiet,
            mut read,
        } = self;
        let thread = std::thread::Builder::new()
            .name("spalloc-quota-watch".to_owned())
            .spawn(move || {
                // A reporter of its own: the main thread prints nothing
                // while the job is held.
                let reporter = Reporter {
                    quiet,
                    debug: false,
                    terminal: Terminal::stderr(),
                };
                let before = if prompt { "\n" } else { "" };
                loop {
                    match stopped.recv_timeout(REREAD) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let printed = match read() {
                        Ok(Held::Live(Some(warning))) => {
                            let news = notices.is_news(&warning, Instant::now());
                            if news {
                                reporter.info(before);
                                reporter.line(&Style::YELLOW, &line(job_id, &warning));
                            }
                            news
                        }
                        Ok(Held::Gone(state, reason)) => {
                            if let Some((style, text)) =
                                state_message(job_id, state, reason.as_deref())
                            {
                                reporter.info(before);
                                reporter.line(&style, &text);
                            }
                            if prompt && !quiet {
                                show_prompt_again();
                            }
                            return;
                        }
                        // The server may be away for a while: the warning
                        // is a courtesy, so try again at the next read.
                        Ok(Held::Live(None)) | Err(_) => false,
                    };
                    if printed && prompt && !quiet {
                        show_prompt_again();
                    }
                }
            })
            .ok();
        QuotaWatch {
            stop: Some(stop),
            thread,
        }
    }
}

/// The ready block's prompt, below a line printed under it.
fn show_prompt_again() {
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{}", render_prompt(&Terminal::stdout()));
    let _ = stdout.flush();
}

/// A running watch of a held job; stopped by [`QuotaWatch::stop`] or on
/// drop, before the tool destroys the job (so that it never reports the
/// tool's own destroy).
#[derive(Debug)]
pub struct QuotaWatch {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl QuotaWatch {
    /// Stops the thread and waits for it (at most one read).
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for QuotaWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(left: f64) -> QuotaWarning {
        QuotaWarning {
            message: format!(
                "group g has {left:.0} board-seconds of quota left: at this rate the job will be destroyed in about {left:.0} s"
            ),
            seconds_left: Some(left),
        }
    }

    #[test]
    fn figures_do_not_count_as_words() {
        assert_eq!(
            words_of("group g2 has 1,234.5 left, in about 12 s."),
            "group g# has # left, in about # s."
        );
    }

    #[test]
    fn a_warning_that_counts_down_as_foretold_is_printed_once() {
        let mut notices = QuotaNotices::default();
        let start = Instant::now();
        assert!(notices.is_news(&warning(300.0), start));
        for step in 1..60 {
            let now = start + Duration::from_secs(step * 5);
            // The server's rounding and the reads' timing stray a little.
            let left = 300.0 - (step * 5) as f64 + 0.9;
            assert!(!notices.is_news(&warning(left.max(0.0)), now), "{step}");
        }
    }

    #[test]
    fn a_changed_rate_or_wording_is_news_again() {
        let mut notices = QuotaNotices::default();
        let start = Instant::now();
        assert!(notices.is_news(&warning(300.0), start));
        // Another job of the group started: the time left halved.
        let later = start + Duration::from_secs(10);
        assert!(notices.is_news(&warning(145.0), later));
        assert!(!notices.is_news(&warning(140.0), later + Duration::from_secs(5)));
        // Other words, same figures.
        let reworded = QuotaWarning {
            message: "group h has 135 board-seconds left".into(),
            seconds_left: Some(135.0),
        };
        assert!(notices.is_news(&reworded, later + Duration::from_secs(10)));
        // Without a time left, only the words decide.
        let mut bare = QuotaNotices::default();
        let text = |n: u32| QuotaWarning {
            message: format!("{n} left"),
            seconds_left: None,
        };
        assert!(bare.is_news(&text(9), start));
        assert!(!bare.is_news(&text(1), start));
    }
}
