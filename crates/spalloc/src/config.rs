//! Configuration files: where they are, how they are parsed, what they hold.
//!
//! Like the reference client, every default used to reach a server and to
//! create jobs can come from INI files with a single section, `[spalloc]`:
//!
//! ```ini
//! [spalloc]
//! hostname = my_server
//! owner = jdh@cs.man.ac.uk
//! ```
//!
//! Files are read in ascending order of priority from [`search_path`]:
//!
//! 1. the system-wide file, [`system_config_file`] (`/etc/xdg/spalloc`, or the
//!    first directory of `$XDG_CONFIG_DIRS` followed by `/spalloc`);
//! 2. the user's file, [`user_config_file`] (`$XDG_CONFIG_HOME/spalloc`, by
//!    default `~/.config/spalloc`);
//! 3. `.spalloc` in the current working directory, [`cwd_config_file`].
//!
//! Later files override earlier ones key by key. Missing or unreadable files
//! are skipped silently; a file that is present but malformed is an error
//! (the reference crashes with a traceback instead).
//!
//! Parsing follows Python's `configparser.ConfigParser()` defaults exactly:
//! `key = value` or `key: value`; option names are case-insensitive, section
//! names are not; whole-line comments start with `#` or `;` and there are no
//! inline comments (`hostname = foo # x` means `foo # x`); indented lines
//! continue the previous value; `%(name)s` interpolates another key and a
//! literal `%` must be written `%%`; a `[DEFAULT]` section supplies fallbacks.
//! This is why the crate carries its own small parser instead of a generic
//! INI crate, none of which implements these rules together.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `hostname` | none | the server's host name or IP address |
//! | `owner` | none | owner of created jobs, by convention an e-mail address |
//! | `port` | `22244` | the server's TCP port |
//! | `keepalive` | `60.0` | seconds without a keepalive before the server destroys a job; `None` for never |
//! | `reconnect_delay` | `5.0` | seconds between reconnection attempts |
//! | `timeout` | `10.0` | seconds to wait for a reply; `None` for no timeout |
//! | `machine` | `None` | the machine to allocate on; `None` for any |
//! | `tags` | `None` | comma-separated tags a machine must have; `None` means the server's `default` |
//! | `min_ratio` | `0.333` | how square an allocation of N boards must be at least |
//! | `max_dead_boards` | `0` | dead boards allowed in an allocation; `None` for any |
//! | `max_dead_links` | `None` | dead links allowed in an allocation; `None` for any |
//! | `require_torus` | `False` | require wrap-around links |
//! | `ignore_version` | `False` | skip the server version check (command-line tools only) |
//! | `url` | none | the v2 (REST) service, e.g. `https://host/spalloc/`; when set, the v2 API is used instead of `hostname`'s legacy port |
//! | `token` | none | a personal API token for the v2 service |
//! | `token_file` | none | a file holding such a token (`~` is expanded) |
//! | `ca_cert` | none | a PEM file of certificates to trust for the v2 service, besides the system's |
//! | `server_timeout` | `3600.0` | seconds `spalloc` keeps reconnecting to a vanished server while it waits for its job before giving up; `None` for never (command-line tools only) |
//!
//! A key that is none of these, or a section other than `[spalloc]` (and
//! `[DEFAULT]`), is ignored as the reference ignores it, but
//! [`Config::load_report`] names it in a warning, with its file, since it is
//! usually a misspelling.
//!
//! The literal `None` (exactly, case-sensitive) means "none" for the keys
//! whose default can be none. The manual states a 5.0 s timeout and `default`
//! tags; the reference code uses 10.0 and `None`, and so do we.
//!
//! ```
//! use spalloc::config::Config;
//!
//! let mut config = Config::from_ini_str("[spalloc]\nhostname = spinn\nport = 22245\n")?;
//! assert_eq!(config.hostname.as_deref(), Some("spinn"));
//! assert_eq!(config.port, 22245);
//! assert_eq!(config.keepalive, Some(60.0)); // the default
//! config.owner = Some("me@example.com".into()); // callers override anything
//! # Ok::<(), spalloc::config::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The only section the client reads.
pub const SECTION: &str = "spalloc";

/// Default `port`.
pub const DEFAULT_PORT: u16 = spalloc_protocol::DEFAULT_PORT;
/// Default `keepalive`, in seconds.
pub const DEFAULT_KEEPALIVE: f64 = 60.0;
/// Default `reconnect_delay`, in seconds.
pub const DEFAULT_RECONNECT_DELAY: f64 = 5.0;
/// Default `timeout`, in seconds (the reference's `TIMEOUT`).
pub const DEFAULT_TIMEOUT: f64 = 10.0;
/// Default `min_ratio`.
pub const DEFAULT_MIN_RATIO: f64 = 0.333;
/// Default `max_dead_boards`.
pub const DEFAULT_MAX_DEAD_BOARDS: u32 = 0;
/// Default `server_timeout`, in seconds: generous, since a server restart
/// (with its durable state) brings the job back.
pub const DEFAULT_SERVER_TIMEOUT: f64 = 3600.0;

/// Every key of the `[spalloc]` section.
pub const KNOWN_KEYS: &[&str] = &[
    "hostname",
    "owner",
    "port",
    "keepalive",
    "reconnect_delay",
    "timeout",
    "machine",
    "tags",
    "min_ratio",
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
    "ignore_version",
    "server_timeout",
    "url",
    "token",
    "token_file",
    "ca_cert",
];

/// Why configuration could not be loaded.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A file is not valid INI (no section header, a line that is neither
    /// `key = value` nor a section, a duplicate section or key in one file).
    #[error("{source_name}, line {line}: {message} (config files are INI files with a [spalloc] section of `key = value` lines)")]
    Parse {
        /// The file (or `<string>` for text).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file is present but not UTF-8 text.
    #[error("{0}: config file is not valid UTF-8 text")]
    NotUtf8(String),
    /// A `%` interpolation is malformed or refers to a missing key.
    #[error("bad interpolation in `{key}` ({source_name}): {message} (write a literal % as %%)")]
    Interpolation {
        /// The key whose value is bad.
        key: String,
        /// Where the value came from.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A value cannot be converted to the key's type.
    #[error("invalid value {value:?} for `{key}` ({source_name}): expected {expected}")]
    Value {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Where the value came from.
        source_name: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// The values of the `[spalloc]` section, converted to their types.
///
/// Every field is public so that callers (command-line options, library
/// users) can override any value after loading. `None` means what the
/// literal `None` means in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The server's host name or IP address.
    pub hostname: Option<String>,
    /// The owner of created jobs.
    pub owner: Option<String>,
    /// The server's TCP port.
    pub port: u16,
    /// Keepalive interval in seconds, or `None` for jobs that never time out.
    pub keepalive: Option<f64>,
    /// Seconds to wait between reconnection attempts.
    pub reconnect_delay: f64,
    /// Seconds to wait for a reply, or `None` to wait forever.
    pub timeout: Option<f64>,
    /// The machine to allocate on, or `None` for any.
    pub machine: Option<String>,
    /// Tags a machine must have, or `None` for the server's default.
    pub tags: Option<Vec<String>>,
    /// Minimum aspect ratio of an N-board allocation.
    pub min_ratio: f64,
    /// Dead boards allowed, or `None` for any number.
    pub max_dead_boards: Option<u32>,
    /// Dead links allowed, or `None` for any number.
    pub max_dead_links: Option<u32>,
    /// Require wrap-around links.
    pub require_torus: bool,
    /// Skip the server version check (used by the command-line tools).
    pub ignore_version: bool,
    /// The v2 (REST) service's URL, e.g. `https://host/spalloc/`. When set,
    /// it wins over `hostname`: the client speaks v2 (see [`crate::v2`]).
    pub url: Option<String>,
    /// A personal API token for the v2 service.
    pub token: Option<String>,
    /// A file holding a personal API token for the v2 service.
    pub token_file: Option<PathBuf>,
    /// A PEM file of certificates to trust for the v2 service, besides the
    /// system's (for a private server).
    pub ca_cert: Option<PathBuf>,
    /// How long `spalloc` keeps trying to reach a vanished server while it
    /// waits, in seconds; `None` for ever (used by the command-line tools).
    pub server_timeout: Option<f64>,
}

/// What reading the config files found, for `spalloc-config` and the
/// tools' warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The resulting values.
    pub config: Config,
    /// Each file of the search path, and whether it was read.
    pub files: Vec<(PathBuf, bool)>,
    /// Keys and sections that were ignored, each naming its file.
    pub warnings: Vec<String>,
}

impl Default for Config {
    /// The built-in defaults, as if no file existed.
    fn default() -> Self {
        Config {
            hostname: None,
            owner: None,
            port: DEFAULT_PORT,
            keepalive: Some(DEFAULT_KEEPALIVE),
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            timeout: Some(DEFAULT_TIMEOUT),
            machine: None,
            tags: None,
            min_ratio: DEFAULT_MIN_RATIO,
            max_dead_boards: Some(DEFAULT_MAX_DEAD_BOARDS),
            max_dead_links: None,
            require_torus: false,
            ignore_version: false,
            url: None,
            token: None,
            token_file: None,
            ca_cert: None,
            server_timeout: Some(DEFAULT_SERVER_TIMEOUT),
        }
    }
}

impl Config {
    /// Reads the default [`search_path`]: what the reference does when no
    /// `config_filenames` are given.
    pub fn load() -> Result<Config, ConfigError> {
        Config::from_files(search_path())
    }

    /// [`Config::load`], also saying which files were read and what in them
    /// was ignored.
    pub fn load_report() -> Result<LoadReport, ConfigError> {
        Config::from_files_report(search_path())
    }

    /// [`Config::from_files`], also saying which files were read and what
    /// in them was ignored.
    pub fn from_files_report<I, P>(paths: I) -> Result<LoadReport, ConfigError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut ini = Ini::with_defaults();
        let mut files = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let read = ini.read_file(path)?;
            files.push((path.to_path_buf(), read));
        }
        Ok(LoadReport {
            config: Config::from_ini(&ini)?,
            files,
            warnings: ini.warnings,
        })
    }

    /// Reads the given files, lowest priority first. Missing or unreadable
    /// files are skipped; an empty list gives the built-in defaults.
    pub fn from_files<I, P>(paths: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        Ok(Config::from_files_report(paths)?.config)
    }

    /// Parses INI text as if it were the only config file.
    pub fn from_ini_str(text: &str) -> Result<Config, ConfigError> {
        let mut ini = Ini::with_defaults();
        ini.read_str(text, "<string>")?;
        Config::from_ini(&ini)
    }

    /// [`Config::timeout`] as a [`Duration`]; `None` (no timeout) also for
    /// negative values, which the command-line tools use to mean "none".
    pub fn timeout_duration(&self) -> Option<Duration> {
        self.timeout.and_then(seconds)
    }

    /// [`Config::reconnect_delay`] as a [`Duration`] (zero if negative).
    pub fn reconnect_delay_duration(&self) -> Duration {
        seconds(self.reconnect_delay).unwrap_or(Duration::ZERO)
    }

    fn from_ini(ini: &Ini) -> Result<Config, ConfigError> {
        let get = |key: &str| ini.get(SECTION, key);
        Ok(Config {
            hostname: get("hostname")?.map(|v| v.value),
            owner: get("owner")?.map(|v| v.value),
            port: required(
                get("port")?,
                "port",
                parse_int::<u16>,
                "a port number (0-65535)",
            )?,
            keepalive: none_able(
                get("keepalive")?,
                parse_seconds,
                "a number of seconds or None",
            )?,
            reconnect_delay: required(
                get("reconnect_delay")?,
                "reconnect_delay",
                parse_seconds,
                "a number of seconds",
            )?,
            timeout: none_able(
                get("timeout")?,
                parse_seconds,
                "a number of seconds or None",
            )?,
            machine: none_able(get("machine")?, |s| Some(s.to_owned()), "a machine name")?,
            tags: none_able(
                get("tags")?,
                |s| Some(s.split(',').map(|t| t.trim().to_owned()).collect()),
                "comma-separated tags",
            )?,
            min_ratio: required(get("min_ratio")?, "min_ratio", parse_float, "a number")?,
            max_dead_boards: none_able(
                get("max_dead_boards")?,
                parse_int::<u32>,
                "a non-negative integer or None",
            )?,
            max_dead_links: none_able(
                get("max_dead_links")?,
                parse_int::<u32>,
                "a non-negative integer or None",
            )?,
            require_torus: required(
                get("require_torus")?,
                "require_torus",
                parse_bool,
                "a boolean (1/yes/true/on or 0/no/false/off)",
            )?,
            ignore_version: required(
                get("ignore_version")?,
                "ignore_version",
                parse_bool,
                "a boolean (1/yes/true/on or 0/no/false/off)",
            )?,
            url: none_able(get("url")?, |s| Some(s.trim().to_owned()), "a URL")?,
            token: none_able(get("token")?, |s| Some(s.trim().to_owned()), "a token")?,
            token_file: none_able(
                get("token_file")?,
                |s| Some(PathBuf::from(expand_user(s.trim()))),
                "a file name",
            )?,
            ca_cert: none_able(
                get("ca_cert")?,
                |s| Some(PathBuf::from(expand_user(s.trim()))),
                "a file name",
            )?,
            server_timeout: none_able(
                get("server_timeout")?,
                parse_seconds,
                "a number of seconds or None",
            )?,
        })
    }
}

/// Seconds as a duration; `None` for negative, NaN or overflowing values.
pub(crate) fn seconds(secs: f64) -> Option<Duration> {
    if secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

fn required<T>(
    value: Option<Value>,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
    expected: &'static str,
) -> Result<T, ConfigError> {
    // Every required key has a built-in default, so `value` is always present.
    let value = value.unwrap_or_else(|| Value {
        key: key.to_owned(),
        value: String::new(),
        source_name: "<defaults>".into(),
    });
    parse(&value.value).ok_or_else(|| ConfigError::Value {
        key: key.to_owned(),
        value: value.value.clone(),
        source_name: value.source_name.clone(),
        expected,
    })
}

fn none_able<T>(
    value: Option<Value>,
    parse: impl Fn(&str) -> Option<T>,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) if v.value == "None" => Ok(None),
        Some(v) => match parse(&v.value) {
            Some(t) => Ok(Some(t)),
            None => Err(ConfigError::Value {
                key: v.key,
                value: v.value,
                source_name: v.source_name,
                expected,
            }),
        },
    }
}

/// Python `int()`: surrounding whitespace, a sign and `_` between digits.
fn parse_int<T: std::str::FromStr>(s: &str) -> Option<T> {
    let s = s.trim();
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// Python `float()`: like `int()`, plus `inf`, `nan` and exponents.
fn parse_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// A float that makes sense as a number of seconds.
fn parse_seconds(s: &str) -> Option<f64> {
    parse_float(s).filter(|v| !v.is_nan())
}

/// `ConfigParser.getboolean`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The system-wide config file: appdirs' `site_config_dir("spalloc")`.
pub fn system_config_file() -> PathBuf {
    if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/spalloc")
    } else if cfg!(windows) {
        let base = std::env::var("PROGRAMDATA").unwrap_or_else(|_| r"C:\ProgramData".into());
        Path::new(&base).join("spalloc").join("spalloc")
    } else {
        // appdirs: the first of $XDG_CONFIG_DIRS (default /etc/xdg), user
        // expanded, trailing separator removed, then "/spalloc".
        let dirs = std::env::var("XDG_CONFIG_DIRS").unwrap_or_else(|_| "/etc/xdg".into());
        let first = dirs.split(':').next().unwrap_or("");
        let first = expand_user(first.trim_end_matches('/'));
        PathBuf::from(format!("{first}/spalloc"))
    }
}

/// The user's config file: appdirs' `user_config_dir("spalloc")`, honouring
/// `$XDG_CONFIG_HOME`.
pub fn user_config_file() -> PathBuf {
    if cfg!(target_os = "macos") {
        PathBuf::from(expand_user("~/Library/Application Support")).join("spalloc")
    } else if cfg!(windows) {
        let base = std::env::var("LOCALAPPDATA").unwrap_or_default();
        Path::new(&base).join("spalloc").join("spalloc")
    } else {
        let base = std::env::var("XDG_CONFIG_HOME").unwrap_or_else(|_| expand_user("~/.config"));
        Path::new(&base).join("spalloc")
    }
}

/// `.spalloc` in the current working directory (relative, so it follows the
/// working directory at the time files are read).
pub fn cwd_config_file() -> PathBuf {
    Path::new(".").join(".spalloc")
}

/// The default files, lowest priority first.
pub fn search_path() -> Vec<PathBuf> {
    vec![system_config_file(), user_config_file(), cwd_config_file()]
}

/// The text `python -m spalloc_client.spalloc_config` prints: a heading and
/// the [`search_path`], one file per line, with a final newline.
pub fn search_path_description() -> String {
    let mut out = String::from("Default search path (lowest-priority first):\n");
    for path in search_path() {
        out.push_str(&path.display().to_string());
        out.push('\n');
    }
    out
}

/// Python's `os.path.expanduser` for a leading `~` or `~/` (from `$HOME`).
fn expand_user(path: &str) -> String {
    let home = match std::env::var("HOME") {
        Ok(h) if !h.is_empty() => h,
        _ => return path.to_owned(),
    };
    if path == "~" {
        home
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{}/{}", home.trim_end_matches('/'), rest)
    } else {
        path.to_owned()
    }
}

/// A looked-up value and where it came from.
#[derive(Debug, Clone)]
struct Value {
    key: String,
    value: String,
    source_name: String,
}

/// One stored option: its (possibly multi-line) value and its origin.
#[derive(Debug, Clone)]
struct Entry {
    lines: Vec<String>,
    source_name: String,
}

impl Entry {
    fn joined(&self) -> String {
        self.lines.join("\n").trim_end().to_owned()
    }
}

/// The subset of Python's `ConfigParser` (default settings, strict mode,
/// basic interpolation) that the client needs.
#[derive(Debug, Default)]
struct Ini {
    defaults: HashMap<String, Entry>,
    sections: HashMap<String, HashMap<String, Entry>>,
    /// Ignored sections and keys, each naming its file.
    warnings: Vec<String>,
}

const DEFAULT_SECTION: &str = "DEFAULT";
const MAX_INTERPOLATION_DEPTH: usize = 10;

impl Ini {
    /// A parser with the spalloc defaults inserted into `[spalloc]` itself, as
    /// the reference does (so `[DEFAULT]` cannot override them).
    fn with_defaults() -> Ini {
        let mut section = HashMap::new();
        for (key, value) in [
            ("port", DEFAULT_PORT.to_string()),
            ("keepalive", "60.0".into()),
            ("reconnect_delay", "5.0".into()),
            ("timeout", "10.0".into()),
            ("machine", "None".into()),
            ("tags", "None".into()),
            ("min_ratio", "0.333".into()),
            ("max_dead_boards", "0".into()),
            ("max_dead_links", "None".into()),
            ("require_torus", "False".into()),
            ("ignore_version", "False".into()),
            ("server_timeout", "3600.0".into()),
        ] {
            section.insert(
                key.to_owned(),
                Entry {
                    lines: vec![value],
                    source_name: "<defaults>".into(),
                },
            );
        }
        let mut ini = Ini::default();
        ini.sections.insert(SECTION.to_owned(), section);
        ini
    }

    /// Reads one file; false if it is missing or unreadable (skipped, like
    /// `configparser.read()`).
    fn read_file(&mut self, path: &Path) -> Result<bool, ConfigError> {
        let Ok(bytes) = std::fs::read(path) else {
            return Ok(false);
        };
        let name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8(name.clone()))?;
        self.read_str(&text, &name)?;
        Ok(true)
    }

    /// Warns of the sections and `[spalloc]` keys of one file that nothing reads.
    fn warn_of_ignored(
        &mut self,
        source_name: &str,
        sections: &[String],
        options: &[(Option<String>, String)],
    ) {
        for section in sections.iter().filter(|s| s.as_str() != SECTION) {
            let hint =
                if section.eq_ignore_ascii_case(SECTION) || edit_distance(section, SECTION) <= 2 {
                    format!(" (did you mean [{SECTION}]?)")
                } else {
                    String::new()
                };
            self.warnings.push(format!(
                "{source_name}: section [{section}] is ignored: only [{SECTION}] is read{hint}"
            ));
        }
        for (_, key) in options.iter().filter(|(section, key)| {
            section.as_deref() == Some(SECTION) && !KNOWN_KEYS.contains(&key.as_str())
        }) {
            let hint = KNOWN_KEYS
                .iter()
                .find(|known| edit_distance(key, known) <= 2)
                .map(|known| format!(" (did you mean `{known}`?)"))
                .unwrap_or_default();
            self.warnings.push(format!(
                "{source_name}: unknown key `{key}` in [{SECTION}] is ignored{hint}"
            ));
        }
    }

    /// `ConfigParser.read_string`: Python's `_read` line by line.
    fn read_str(&mut self, text: &str, source_name: &str) -> Result<(), ConfigError> {
        let parse_error = |line: usize, message: String| ConfigError::Parse {
            source_name: source_name.to_owned(),
            line,
            message,
        };
        // None: no section yet; Some(None): [DEFAULT]; Some(Some(name)).
        let mut cursect: Option<Option<String>> = None;
        let mut optname: Option<String> = None;
        let mut indent_level = 0usize;
        let mut sections_added: Vec<String> = Vec::new();
        let mut options_added: Vec<(Option<String>, String)> = Vec::new();

        for (index, raw) in text.split_terminator('\n').enumerate() {
            let lineno = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let stripped = raw.trim();
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                // empty_lines_in_values: a blank (not comment) line inside a
                // value becomes part of it; it does not end the value.
                if !is_comment {
                    if let (Some(sect), Some(opt)) = (&cursect, &optname) {
                        if let Some(entry) = self.section_mut(sect).get_mut(opt) {
                            entry.lines.push(String::new());
                        }
                    }
                }
                continue;
            }
            let cur_indent = raw.chars().take_while(|c| c.is_whitespace()).count();
            if let (Some(sect), Some(opt), true) = (&cursect, &optname, cur_indent > indent_level) {
                if let Some(entry) = self.section_mut(sect).get_mut(opt) {
                    entry.lines.push(value.to_owned());
                }
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                if header == DEFAULT_SECTION {
                    cursect = Some(None);
                } else {
                    if sections_added.iter().any(|s| s == header) {
                        return Err(parse_error(
                            lineno,
                            format!("section {header:?} already exists in this file"),
                        ));
                    }
                    sections_added.push(header.to_owned());
                    self.sections.entry(header.to_owned()).or_default();
                    cursect = Some(Some(header.to_owned()));
                }
                optname = None;
                continue;
            }
            let Some(sect) = &cursect else {
                return Err(parse_error(
                    lineno,
                    format!("file contains no section headers before {raw:?}"),
                ));
            };
            let Some(pos) = value.find(['=', ':']) else {
                return Err(parse_error(
                    lineno,
                    format!("line is neither a section header nor `key = value`: {raw:?}"),
                ));
            };
            let key = value[..pos].trim_end().to_lowercase();
            if key.is_empty() {
                return Err(parse_error(lineno, format!("option with no name: {raw:?}")));
            }
            let val = value[pos + 1..].trim().to_owned();
            let added = (sect.clone(), key.clone());
            if options_added.contains(&added) {
                return Err(parse_error(
                    lineno,
                    format!("option {key:?} already set in this section of this file"),
                ));
            }
            options_added.push(added);
            let entry = Entry {
                lines: vec![val],
                source_name: source_name.to_owned(),
            };
            self.section_mut(sect).insert(key.clone(), entry);
            optname = Some(key);
        }
        self.warn_of_ignored(source_name, &sections_added, &options_added);
        Ok(())
    }

    fn section_mut(&mut self, sect: &Option<String>) -> &mut HashMap<String, Entry> {
        match sect {
            None => &mut self.defaults,
            Some(name) => self.sections.entry(name.clone()).or_default(),
        }
    }

    fn raw(&self, section: &str, key: &str) -> Option<&Entry> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
    }

    /// `ConfigParser.get` with basic interpolation.
    fn get(&self, section: &str, key: &str) -> Result<Option<Value>, ConfigError> {
        let Some(entry) = self.raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(
            section,
            key,
            &entry.joined(),
            &entry.source_name,
            &mut out,
            1,
        )?;
        Ok(Some(Value {
            key: key.to_owned(),
            value: out,
            source_name: entry.source_name.clone(),
        }))
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        source_name: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let error = |message: String| ConfigError::Interpolation {
            key: key.to_owned(),
            source_name: source_name.to_owned(),
            message,
        };
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(error("references nest too deeply (a loop?)".into()));
        }
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some(close) = after
                    .find(")s")
                    .filter(|&c| c > 0 && !after[..c].contains(')'))
                else {
                    return Err(error(format!(
                        "bad interpolation variable reference {rest:?}"
                    )));
                };
                let name = after[..close].to_lowercase();
                rest = &after[close + 2..];
                let Some(entry) = self.raw(section, &name) else {
                    return Err(error(format!("no option {name:?} to interpolate")));
                };
                let value = entry.joined();
                if value.contains('%') {
                    self.interpolate(section, key, &value, source_name, out, depth + 1)?;
                } else {
                    out.push_str(&value);
                }
            } else {
                return Err(error(format!(
                    "'%' must be followed by '%' or '(', found: {rest:?}"
                )));
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

/// The Levenshtein distance of two short names, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// `\[(?P<header>.+)\]` matched at the start of a stripped line.
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

impl fmt::Display for Config {
    /// The configuration as a `[spalloc]` INI section that reads back to the
    /// same values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn opt<T: fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "None".into(), |v| v.to_string())
        }
        fn py_bool(b: bool) -> &'static str {
            if b {
                "True"
            } else {
                "False"
            }
        }
        writeln!(f, "[{SECTION}]")?;
        if let Some(h) = &self.hostname {
            writeln!(f, "hostname = {h}")?;
        }
        if let Some(o) = &self.owner {
            writeln!(f, "owner = {o}")?;
        }
        writeln!(f, "port = {}", self.port)?;
        writeln!(f, "keepalive = {}", opt(&self.keepalive.map(py_float)))?;
        writeln!(f, "reconnect_delay = {}", py_float(self.reconnect_delay))?;
        writeln!(f, "timeout = {}", opt(&self.timeout.map(py_float)))?;
        writeln!(f, "machine = {}", opt(&self.machine))?;
        writeln!(
            f,
            "tags = {}",
            opt(&self.tags.as_ref().map(|t| t.join(", ")))
        )?;
        writeln!(f, "min_ratio = {}", py_float(self.min_ratio))?;
        writeln!(f, "max_dead_boards = {}", opt(&self.max_dead_boards))?;
        writeln!(f, "max_dead_links = {}", opt(&self.max_dead_links))?;
        writeln!(f, "require_torus = {}", py_bool(self.require_torus))?;
        writeln!(f, "ignore_version = {}", py_bool(self.ignore_version))?;
        writeln!(
            f,
            "server_timeout = {}",
            opt(&self.server_timeout.map(py_float))
        )?;
        if let Some(u) = &self.url {
            writeln!(f, "url = {u}")?;
        }
        if self.token.is_some() {
            // The secret itself is never printed: a comment says it is set.
            writeln!(f, "# token = (set, not shown)")?;
        }
        if let Some(t) = &self.token_file {
            writeln!(f, "token_file = {}", t.display())?;
        }
        if let Some(c) = &self.ca_cert {
            writeln!(f, "ca_cert = {}", c.display())?;
        }
        Ok(())
    }
}

fn py_float(v: f64) -> String {
    spalloc_protocol::python_json::python_float_repr(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::from_ini_str(text).unwrap()
    }

    #[test]
    fn ignored_sections_and_keys_are_named_with_their_file() {
        let dir = std::env::temp_dir().join(format!("spalloc-config-warn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("spalloc");
        std::fs::write(
            &file,
            "[spalloc]\nhostnme = h\nport = 1\n[Spalloc]\nowner = me\n",
        )
        .unwrap();
        let report = Config::from_files_report([&file, &dir.join("missing")]).unwrap();
        let name = file.display().to_string();
        assert_eq!(
            report.warnings,
            vec![
                format!("{name}: section [Spalloc] is ignored: only [spalloc] is read (did you mean [spalloc]?)"),
                format!("{name}: unknown key `hostnme` in [spalloc] is ignored (did you mean `hostname`?)"),
            ]
        );
        assert_eq!(
            report.files,
            vec![(file.clone(), true), (dir.join("missing"), false)]
        );
        assert_eq!(report.config.port, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_without_files() {
        let c = Config::from_files(Vec::<PathBuf>::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.timeout, Some(10.0));
        assert_eq!(c.tags, None);
        assert_eq!(c.max_dead_boards, Some(0));
    }

    #[test]
    fn every_key_converts() {
        let c = cfg(
            "[spalloc]\nhostname = h\nowner = o\nport = 1234\nkeepalive = None\n\
             reconnect_delay = 0.5\ntimeout = None\nmachine = m\ntags = foo, bar\n\
             min_ratio = 1_0.5\nmax_dead_boards = None\nmax_dead_links = 3\n\
             require_torus = Yes\nignore_version = on\nserver_timeout = None\n",
        );
        assert_eq!(c.hostname.as_deref(), Some("h"));
        assert_eq!(c.owner.as_deref(), Some("o"));
        assert_eq!(c.port, 1234);
        assert_eq!(c.keepalive, None);
        assert_eq!(c.reconnect_delay, 0.5);
        assert_eq!(c.timeout, None);
        assert_eq!(c.machine.as_deref(), Some("m"));
        assert_eq!(c.tags, Some(vec!["foo".into(), "bar".into()]));
        assert_eq!(c.min_ratio, 10.5);
        assert_eq!(c.max_dead_boards, None);
        assert_eq!(c.max_dead_links, Some(3));
        assert!(c.require_torus);
        assert!(c.ignore_version);
        assert_eq!(c.server_timeout, None);
        assert_eq!(Config::from_ini_str(&c.to_string()).unwrap(), c);
        assert_eq!(
            cfg("[spalloc]\nserver_timeout = 90\n").server_timeout,
            Some(90.0)
        );
        assert_eq!(cfg("").server_timeout, Some(DEFAULT_SERVER_TIMEOUT));
    }

    #[test]
    fn configparser_rules() {
        // Case-insensitive keys, `:` separator, comments, no inline comments.
        let c = cfg("# comment\n; other\n[spalloc]\nHostName: foo # x\n  ; not a comment? no: comment\nOWNER=me\n");
        assert_eq!(c.hostname.as_deref(), Some("foo # x"));
        assert_eq!(c.owner.as_deref(), Some("me"));
        // Continuation lines and blank lines inside values.
        let c = cfg("[spalloc]\nowner = a\n  b\n\n  c\nhostname=h\n");
        assert_eq!(c.owner.as_deref(), Some("a\nb\n\nc"));
        // Interpolation and %% escapes, [DEFAULT] fallbacks.
        let c = cfg(
            "[DEFAULT]\nuser = bob\n[spalloc]\nowner = %(user)s@example.com\nhostname = 100%%\n",
        );
        assert_eq!(c.owner.as_deref(), Some("bob@example.com"));
        assert_eq!(c.hostname.as_deref(), Some("100%"));
        // `None` is case-sensitive; empty values.
        assert!(Config::from_ini_str("[spalloc]\nkeepalive = none\n").is_err());
        let c = cfg("[spalloc]\nmachine =\ntags =\n");
        assert_eq!(c.machine.as_deref(), Some(""));
        assert_eq!(c.tags, Some(vec![String::new()]));
        // Other sections are ignored; section names are case-sensitive.
        let c = cfg("[SPALLOC]\nport = 1\n[other]\nport = 2\n");
        assert_eq!(c.port, DEFAULT_PORT);
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = Config::from_ini_str("hostname = x\n").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { line: 1, .. }), "{e}");
        let e = Config::from_ini_str("[spalloc]\njunk\n").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { line: 2, .. }), "{e}");
        let e = Config::from_ini_str("[spalloc]\nport = 1\nPort = 2\n").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { line: 3, .. }), "{e}");
        let e = Config::from_ini_str("[spalloc]\nhostname = 100%\n").unwrap_err();
        assert!(matches!(e, ConfigError::Interpolation { .. }), "{e}");
        let e = Config::from_ini_str("[spalloc]\nowner = %(owner)s\n").unwrap_err();
        assert!(matches!(e, ConfigError::Interpolation { .. }), "{e}");
        let e = Config::from_ini_str("[spalloc]\nport = lots\n").unwrap_err();
        assert!(e.to_string().contains("`port`"), "{e}");
        let e = Config::from_ini_str("[spalloc]\nrequire_torus = maybe\n").unwrap_err();
        assert!(matches!(e, ConfigError::Value { .. }), "{e}");
    }

    #[test]
    fn later_files_override_earlier_ones_key_by_key() {
        let dir = std::env::temp_dir().join(format!("spalloc-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a");
        let b = dir.join("b");
        std::fs::write(&a, "[spalloc]\nhostname = foo\nport = 1\n").unwrap();
        std::fs::write(&b, "[spalloc]\nport = 2\ntags = qux\n").unwrap();
        let c = Config::from_files([&a, &dir.join("missing"), &dir, &b]).unwrap();
        assert_eq!(c.hostname.as_deref(), Some("foo"));
        assert_eq!(c.port, 2);
        assert_eq!(c.reconnect_delay, 5.0);
        assert_eq!(c.tags, Some(vec!["qux".into()]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn search_path_has_three_files_in_priority_order() {
        let path = search_path();
        assert_eq!(path.len(), 3);
        assert_eq!(path[2], Path::new("./.spalloc"));
        assert!(path[1].ends_with("spalloc"));
        let text = search_path_description();
        assert!(text.starts_with("Default search path (lowest-priority first):\n"));
        assert_eq!(text.lines().count(), 4);
    }
}
