//! ANSI styling and in-place line updates, enabled only on a terminal.
//!
//! This mirrors the reference's `Terminal` class: when the stream is not a
//! terminal, every helper returns plain text, so piped output and files never
//! contain escape sequences. Two things are decided apart, because users ask
//! for them apart: *colour* (off with `NO_COLOR` set to a non-empty value,
//! as <https://no-color.org> asks) and *cursor control* (the in-place status
//! line and the `--watch` screen clear, which `NO_COLOR` leaves on). A
//! terminal that declares itself `TERM=dumb` gets neither.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::IsTerminal;

/// A set of ANSI display attributes, such as red text or bright underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style(Cow<'static, [u8]>);

/// The attribute names the reference accepts, with their ANSI codes, in the
/// order its greedy name parser tries them.
const ATTRIBUTE_NAMES: &[(&str, u8)] = &[
    ("reset", 0),
    ("bright", 1),
    ("dim", 2),
    ("underscore", 4),
    ("blink", 5),
    ("reverse", 7),
    ("hidden", 8),
    ("black", 30),
    ("red", 31),
    ("green", 32),
    ("yellow", 33),
    ("blue", 34),
    ("magenta", 35),
    ("cyan", 36),
    ("white", 37),
    ("bg_black", 40),
    ("bg_red", 41),
    ("bg_green", 42),
    ("bg_yellow", 43),
    ("bg_blue", 44),
    ("bg_magenta", 45),
    ("bg_cyan", 46),
    ("bg_white", 47),
];

impl Style {
    /// Red text.
    pub const RED: Style = Style(Cow::Borrowed(&[31]));
    /// Green text.
    pub const GREEN: Style = Style(Cow::Borrowed(&[32]));
    /// Yellow text.
    pub const YELLOW: Style = Style(Cow::Borrowed(&[33]));
    /// Blue text.
    pub const BLUE: Style = Style(Cow::Borrowed(&[34]));
    /// Bold (bright) text.
    pub const BRIGHT: Style = Style(Cow::Borrowed(&[1]));
    /// Faint text.
    pub const DIM: Style = Style(Cow::Borrowed(&[2]));
    /// Underlined bold text, used for table headers.
    pub const UNDERSCORE_BRIGHT: Style = Style(Cow::Borrowed(&[4, 1]));

    /// Parses a reference-style attribute name such as `dim_green` or
    /// `red_bg_blue_bright`; `None` if any part is not an attribute.
    pub fn parse(name: &str) -> Option<Style> {
        let mut codes = Vec::new();
        let mut rest = name;
        while !rest.is_empty() {
            if let Some(stripped) = rest.strip_prefix('_') {
                rest = stripped;
                continue;
            }
            let (attribute, code) = ATTRIBUTE_NAMES
                .iter()
                .find(|(attribute, _)| rest.starts_with(attribute))?;
            codes.push(*code);
            rest = &rest[attribute.len()..];
        }
        Some(Style(Cow::Owned(codes)))
    }

    /// The escape sequence that switches this style on.
    pub fn prefix(&self) -> String {
        let codes: Vec<String> = self.0.iter().map(u8::to_string).collect();
        format!("\x1b[{}m", codes.join(";"))
    }
}

/// Whether colours are allowed by the environment: `NO_COLOR` unset or empty.
pub fn colour_allowed_by_environment() -> bool {
    !std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

/// Whether the terminal understands cursor movement: not with `TERM=dumb`
/// (Emacs shells, some CI logs), which shows escape sequences as garbage.
pub fn cursor_control_allowed_by_environment() -> bool {
    std::env::var_os("TERM").map_or(true, |term| term != "dumb")
}

/// Styling and cursor control for one output stream.
#[derive(Debug)]
pub struct Terminal {
    colour: bool,
    control: bool,
    /// The stream's descriptor, to ask for the window width at each redraw
    /// (the window may be resized meanwhile).
    fd: Option<i32>,
    cursor_saved: Cell<bool>,
}

impl Terminal {
    /// A terminal whose escape sequences (colour and cursor control) are on
    /// or off as given (for tests, and for callers that decided already).
    pub fn forced(enabled: bool) -> Terminal {
        Terminal::with(enabled, enabled)
    }

    /// A terminal with colour and cursor control set apart.
    pub fn with(colour: bool, control: bool) -> Terminal {
        Terminal {
            colour: colour && control,
            control,
            fd: None,
            cursor_saved: Cell::new(false),
        }
    }

    /// Cursor control when `stream` is a terminal and `TERM` is not `dumb`;
    /// colour as well unless `NO_COLOR` is set.
    pub fn for_stream(stream: &(impl IsTerminal + std::os::fd::AsRawFd)) -> Terminal {
        let control = stream.is_terminal() && cursor_control_allowed_by_environment();
        let mut terminal = Terminal::with(colour_allowed_by_environment(), control);
        terminal.fd = Some(stream.as_raw_fd());
        terminal
    }

    /// For standard output.
    pub fn stdout() -> Terminal {
        Terminal::for_stream(&std::io::stdout())
    }

    /// For standard error.
    pub fn stderr() -> Terminal {
        Terminal::for_stream(&std::io::stderr())
    }

    /// Whether cursor control (in-place redraws, screen clears) is on.
    pub fn is_enabled(&self) -> bool {
        self.control
    }

    /// Whether colours are on.
    pub fn has_colour(&self) -> bool {
        self.colour
    }

    /// The window's width in columns, when the stream is a terminal that
    /// says (or `COLUMNS` does); `None` when unknown.
    pub fn columns(&self) -> Option<usize> {
        self.fd
            .and_then(window_columns)
            .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
            .filter(|columns| *columns > 0)
    }

    /// A cursor-control `sequence` when enabled, else nothing.
    pub fn raw(&self, sequence: &str) -> String {
        if self.control {
            sequence.to_owned()
        } else {
            String::new()
        }
    }

    /// Clears the screen and homes the cursor.
    pub fn clear_screen(&self) -> String {
        self.raw("\x1b[2J\x1b[;H")
    }

    /// Starts (or rewrites in place) a status line: the first call saves the
    /// cursor position, later calls restore it and clear the line.
    pub fn update(&self, text: &str) -> String {
        let prefix = if self.cursor_saved.replace(true) {
            "\x1b8\x1b[K"
        } else {
            "\x1b7"
        };
        format!("{}{text}", self.raw(prefix))
    }

    /// Forgets the saved cursor, so that the next [`Terminal::update`] starts a new line.
    pub fn start_again(&self) {
        self.cursor_saved.set(false);
    }

    /// `text` in `style`, reset afterwards.
    pub fn paint(&self, style: &Style, text: &str) -> String {
        if self.colour {
            format!("{}{text}\x1b[0m", style.prefix())
        } else {
            text.to_owned()
        }
    }
}

/// `text` cut to at most `width` characters, ending in `…` when cut.
pub fn fit_to_width(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// The width of the terminal on `fd` (`TIOCGWINSZ`), if it is one.
#[cfg(unix)]
fn window_columns(fd: i32) -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; an fd
    // that is not a terminal makes it fail with ENOTTY and write nothing.
    let asked = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (asked == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn window_columns(_fd: i32) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_terminal_returns_plain_text() {
        let t = Terminal::forced(false);
        assert_eq!(t.paint(&Style::RED, "x"), "x");
        assert_eq!(t.clear_screen(), "");
        assert_eq!(t.update("a"), "a");
        assert_eq!(t.update("b"), "b");
    }

    #[test]
    fn enabled_terminal_emits_the_reference_sequences() {
        let t = Terminal::forced(true);
        assert_eq!(t.paint(&Style::RED, "x"), "\x1b[31mx\x1b[0m");
        assert_eq!(
            t.paint(&Style::UNDERSCORE_BRIGHT, "ID"),
            "\x1b[4;1mID\x1b[0m"
        );
        assert_eq!(t.clear_screen(), "\x1b[2J\x1b[;H");
        assert_eq!(t.update("a"), "\x1b7a");
        assert_eq!(t.update("b"), "\x1b8\x1b[Kb");
        t.start_again();
        assert_eq!(t.update("c"), "\x1b7c");
    }

    #[test]
    fn without_colour_the_cursor_control_stays() {
        let t = Terminal::with(false, true);
        assert_eq!(t.paint(&Style::RED, "x"), "x");
        assert_eq!(t.clear_screen(), "\x1b[2J\x1b[;H");
        assert_eq!(t.update("a"), "\x1b7a");
        let dumb = Terminal::with(true, false);
        assert_eq!(
            dumb.paint(&Style::RED, "x"),
            "x",
            "no colour without control"
        );
        assert_eq!(dumb.update("a"), "a");
    }

    #[test]
    fn text_is_cut_to_the_width_with_an_ellipsis() {
        assert_eq!(fit_to_width("abcdef", 6), "abcdef");
        assert_eq!(fit_to_width("abcdef", 4), "abc…");
        assert_eq!(fit_to_width("abcdef", 0), "");
    }

    #[test]
    fn style_names_parse_greedily() {
        assert_eq!(
            Style::parse("red_bg_blue_bright").map(|s| s.prefix()),
            Some("\x1b[31;44;1m".to_owned())
        );
        assert_eq!(
            Style::parse("dim_green").map(|s| s.prefix()),
            Some("\x1b[2;32m".to_owned())
        );
        assert_eq!(
            Style::parse("underscore_bright"),
            Some(Style::UNDERSCORE_BRIGHT)
        );
        for bad in ["bad", "red_bad", "bad_red"] {
            assert_eq!(Style::parse(bad), None, "{bad}");
        }
    }
}
