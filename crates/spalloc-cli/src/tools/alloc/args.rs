//! The command line of `spalloc`, which (unlike the other tools) has its own
//! server group and no `--ignore_version`.

use crate::python_text::{float_text, optional_float_text};
use clap::{ArgAction, Command, Parser};
use spalloc::Config;
use std::ffi::OsString;

const REQUIREMENTS: &str = "allocation requirement arguments";
const WRAPPING: &str = "command wrapping arguments";
const SERVER: &str = "spalloc server arguments";

/// The command line of `spalloc`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc",
    version,
    about = "Request (and allocate) a SpiNNaker machine.",
    infer_long_args = true
)]
pub struct AllocArgs {
    /// suppress informational messages
    #[arg(short, long)]
    pub quiet: bool,
    /// enable additional diagnostic information
    #[arg(long)]
    pub debug: bool,
    /// do not destroy the job on exit
    #[arg(short = 'D', long = "no-destroy")]
    pub no_destroy: bool,
    /// what to allocate: nothing or 1 requests 1 SpiNN-5 board, NUM requests
    /// at least NUM SpiNN-5 boards, WIDTH HEIGHT means WIDTHxHEIGHT triads of
    /// SpiNN-5 boards and X Y Z requests a board the specified logical board
    /// coordinate.
    #[arg(value_name = "WHAT", allow_negative_numbers = true, help_heading = REQUIREMENTS)]
    pub what: Vec<i64>,
    /// if given, resume keeping the specified job alive rather than creating
    /// a new job (all allocation requirements will be ignored)
    #[arg(short, long, help_heading = REQUIREMENTS)]
    pub resume: Option<u64>,
    /// only allocate boards which are part of a specific machine, or any
    /// machine if no machine is given
    #[arg(short, long, num_args = 0..=1, value_name = "MACHINE", help_heading = REQUIREMENTS)]
    pub machine: Option<Option<String>>,
    /// only allocate boards which have (at least) the specified flags
    #[arg(short, long, num_args = 0.., value_name = "TAG", help_heading = REQUIREMENTS)]
    pub tags: Option<Vec<String>>,
    /// when allocating by number of boards, require that the allocation be at
    /// least as square as this ratio
    #[arg(long = "min-ratio", value_name = "RATIO", allow_negative_numbers = true, help_heading = REQUIREMENTS)]
    pub min_ratio: Option<f64>,
    /// boards allowed to be dead in the allocation, or -1 to allow any number of dead boards
    #[arg(long = "max-dead-boards", value_name = "NUM", allow_negative_numbers = true, help_heading = REQUIREMENTS)]
    pub max_dead_boards: Option<i64>,
    /// inter-board links allowed to be dead in the allocation, or -1 to allow any number of dead links
    #[arg(long = "max-dead-links", value_name = "NUM", allow_negative_numbers = true, help_heading = REQUIREMENTS)]
    pub max_dead_links: Option<i64>,
    /// require that the allocation contain torus (a.k.a. wrap-around) links
    #[arg(short = 'w', long = "require-torus", action = ArgAction::SetTrue,
          overrides_with = "no_require_torus", help_heading = REQUIREMENTS)]
    pub require_torus: bool,
    /// do not require that the allocation contain torus (a.k.a. wrap-around) links
    #[arg(short = 'W', long = "no-require-torus", action = ArgAction::SetTrue,
          overrides_with = "require_torus", help_heading = REQUIREMENTS)]
    pub no_require_torus: bool,
    /// never allocate this board, given as X,Y,Z (triad coordinates), C:F:B
    /// (cabinet, frame, board) or its IP address; repeat the option for
    /// several boards. Only this project's spalloc-server supports it, and
    /// over the legacy protocol only as X,Y,Z
    #[arg(long = "avoid-board", value_name = "BOARD", value_parser = super::avoid::parse_board,
          action = ArgAction::Append, help_heading = REQUIREMENTS)]
    pub avoid_board: Vec<spalloc::v2::BoardSelector>,
    /// execute the specified command once boards have been allocated and
    /// deallocate the boards when the application exits ({} and {hostname}
    /// are substituted for the chip chip at (0, 0)'s hostname, {w} and {h}
    /// give the dimensions of the SpiNNaker machine in chips, {ethernet_ips}
    /// is a temporary file containing a CSV with three columns: x, y and
    /// hostname giving the hostname of each Ethernet connected SpiNNaker
    /// chip, {id} is the job ID). Everything after it is the command. A
    /// single argument containing spaces is run as a shell command line,
    /// with the substituted values quoted
    #[arg(short = 'c', long, num_args = 0.., allow_hyphen_values = true, value_name = "COMMAND", help_heading = WRAPPING)]
    pub command: Option<Vec<String>>,
    /// by convention, the email address of the owner of the job
    #[arg(long, help_heading = SERVER)]
    pub owner: Option<String>,
    /// hostname or IP of the spalloc server
    #[arg(short = 'H', long, help_heading = SERVER)]
    pub hostname: Option<String>,
    /// port number of the spalloc server
    #[arg(short = 'P', long, help_heading = SERVER)]
    pub port: Option<u16>,
    /// URL of a v2 (REST) spalloc service, e.g. https://host/spalloc/
    /// (instead of --hostname; credentials from SPALLOC_TOKEN, `spalloc
    /// login`, or SPALLOC_USER and SPALLOC_PASSWORD)
    #[arg(long, value_name = "URL", help_heading = SERVER)]
    pub url: Option<String>,
    /// a PEM file of certificates to trust for a v2 service, besides the
    /// system's
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = SERVER)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// the interval at which to require keepalive messages to be sent to
    /// prevent the server cancelling the job, or -1 to not require keepalive messages
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, help_heading = SERVER)]
    pub keepalive: Option<f64>,
    /// seconds to wait before reconnecting to the server if the connection is lost
    #[arg(long = "reconnect-delay", value_name = "SECONDS", allow_negative_numbers = true, help_heading = SERVER)]
    pub reconnect_delay: Option<f64>,
    /// seconds to wait for a response from the server
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, help_heading = SERVER)]
    pub timeout: Option<f64>,
    /// while waiting, give up after this many seconds without the server
    /// (exit 5), since the job may have been lost with it; 0 or -1 never
    #[arg(long = "server-timeout", value_name = "SECONDS", allow_negative_numbers = true, help_heading = SERVER)]
    pub server_timeout: Option<f64>,
}

/// Whether `token` is `-c`, `--command` or an unambiguous abbreviation of
/// it, possibly with `=value`; returns the attached value if any.
fn command_option(token: &str) -> Option<Option<String>> {
    if token == "-c" {
        return Some(None);
    }
    if let Some(rest) = token.strip_prefix("-c") {
        if !rest.starts_with('-') {
            return Some(Some(rest.to_owned()));
        }
    }
    let long = token.strip_prefix("--")?;
    let (name, value) = match long.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (long, None),
    };
    (!name.is_empty() && "command".starts_with(name)).then_some(value)
}

/// Splits the command line at `-c`/`--command`: argparse's REMAINDER takes
/// everything after it, even later options, and so do we.
pub fn split_command(argv: Vec<OsString>) -> (Vec<OsString>, Option<Vec<String>>) {
    for (index, token) in argv.iter().enumerate().skip(1) {
        let Some(text) = token.to_str() else { continue };
        if text == "--" {
            break;
        }
        if let Some(attached) = command_option(text) {
            let mut command: Vec<String> = attached.into_iter().collect();
            command.extend(
                argv[index + 1..]
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned()),
            );
            return (argv[..index].to_vec(), Some(command));
        }
    }
    (argv, None)
}

/// Shows the config file's values as the defaults in `--help`.
pub fn with_config_defaults(command: Command, config: &Config) -> Command {
    let show = |value: Option<String>| value.unwrap_or_else(|| "None".to_owned());
    let machine = show(config.machine.clone());
    let tags = config.tags.clone().unwrap_or_default().join(" ");
    let min_ratio = float_text(config.min_ratio);
    let dead_boards = config.max_dead_boards.map_or(-1, i64::from);
    let dead_links = config.max_dead_links.map_or(-1, i64::from);
    let torus = config.require_torus;
    let owner = show(config.owner.clone());
    let hostname = show(config.hostname.clone());
    let port = config.port;
    let keepalive = config.keepalive.map_or_else(|| "-1".to_owned(), float_text);
    let reconnect = float_text(config.reconnect_delay);
    let timeout = optional_float_text(config.timeout);
    let server_timeout = optional_float_text(config.server_timeout);
    let with_default = |text: &str, value: &str| format!("{text} (default: {value})");
    command
        .mut_arg("machine", |a| a.help(with_default("only allocate boards which are part of a specific machine, or any machine if no machine is given", &machine)))
        .mut_arg("tags", |a| a.help(with_default("only allocate boards which have (at least) the specified flags", &tags)))
        .mut_arg("min_ratio", |a| a.help(with_default("when allocating by number of boards, require that the allocation be at least as square as this ratio", &min_ratio)))
        .mut_arg("max_dead_boards", |a| a.help(with_default("boards allowed to be dead in the allocation, or -1 to allow any number of dead boards", &dead_boards.to_string())))
        .mut_arg("max_dead_links", |a| a.help(with_default("inter-board links allowed to be dead in the allocation, or -1 to allow any number of dead links", &dead_links.to_string())))
        .mut_arg("require_torus", |a| a.help(format!("require that the allocation contain torus (a.k.a. wrap-around) links{}", if torus { " (default)" } else { "" })))
        .mut_arg("no_require_torus", |a| a.help(format!("do not require that the allocation contain torus (a.k.a. wrap-around) links{}", if torus { "" } else { " (default)" })))
        .mut_arg("owner", |a| a.help(with_default("by convention, the email address of the owner of the job", &owner)))
        .mut_arg("hostname", |a| a.help(with_default("hostname or IP of the spalloc server", &hostname)))
        .mut_arg("port", |a| a.help(with_default("port number of the spalloc server", &port.to_string())))
        .mut_arg("keepalive", |a| a.help(with_default("the interval at which to require keepalive messages to be sent to prevent the server cancelling the job, or -1 to not require keepalive messages", &keepalive)))
        .mut_arg("reconnect_delay", |a| a.help(with_default("seconds to wait before reconnecting to the server if the connection is lost", &reconnect)))
        .mut_arg("timeout", |a| a.help(with_default("seconds to wait for a response from the server", &timeout)))
        .mut_arg("server_timeout", |a| a.help(with_default("while waiting, give up after this many seconds without the server (exit 5), since the job may have been lost with it; 0 or -1: never", &server_timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn everything_after_c_is_the_command() {
        let (rest, command) =
            split_command(os(&["spalloc", "3", "-c", "echo", "hi", "--owner", "x"]));
        assert_eq!(rest, os(&["spalloc", "3"]));
        assert_eq!(
            command,
            Some(vec![
                "echo".into(),
                "hi".into(),
                "--owner".into(),
                "x".into()
            ])
        );
        let (_, command) = split_command(os(&["spalloc", "--comm", "a"]));
        assert_eq!(command, Some(vec!["a".into()]));
        let (_, command) = split_command(os(&["spalloc", "--command=a b", "c"]));
        assert_eq!(command, Some(vec!["a b".into(), "c".into()]));
        let (rest, command) = split_command(os(&["spalloc", "--owner", "me"]));
        assert_eq!((rest.len(), command), (3, None));
        let (_, command) = split_command(os(&["spalloc", "-c"]));
        assert_eq!(command, Some(vec![]));
    }
}
