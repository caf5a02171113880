//! What the four `Script` tools share: reading the config, parsing the
//! command line, connecting and checking the server's version.

use crate::failure::Failure;
use crate::server_args::{with_config_defaults, ServerArgs, ServerSettings};
use clap::error::ErrorKind;
use clap::{Command, CommandFactory, FromArgMatches};
use spalloc::{Config, ProtocolClient};
use std::ffi::OsString;

/// Loads the config files of the search path; a broken file ends the tool
/// with a message naming the file and line. Ignored keys and sections (most
/// often misspellings) are warned of on stderr, naming their file.
pub fn load_config() -> Result<Config, Failure> {
    let report = Config::load_report().map_err(|e| {
        Failure::new(
            1,
            format!(
                "Error in a spalloc config file: {e}\n(run spalloc-config to list the files read)"
            ),
        )
    })?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(report.config)
}

/// Parses `argv` into `T`, with the server group's defaults taken from
/// `config`; help, version and usage errors end the process (exit 0 or 2).
fn parse_args<T: CommandFactory + FromArgMatches>(
    argv: impl IntoIterator<Item = OsString>,
    config: &Config,
    adjust: impl FnOnce(Command) -> Command,
) -> (T, Command) {
    let mut command = adjust(crate::manual::with_manual(with_config_defaults(
        T::command(),
        config,
    )));
    let matches = command
        .try_get_matches_from_mut(argv)
        .unwrap_or_else(|e| e.exit());
    let parsed = T::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    (parsed, command)
}

/// Command-line arguments that include the shared server group.
pub trait HasServerArgs {
    /// The server group (`--hostname`, `--port`, `--timeout`, ...).
    fn server_args(&self) -> &ServerArgs;
}

/// What every `Script` tool has once it has started: the config, its parsed
/// arguments, the clap command (for later usage errors) and the server.
pub struct Started<T> {
    /// The config files' values.
    pub config: Config,
    /// The parsed command line.
    pub args: T,
    /// The command definition, for usage errors found after parsing.
    pub command: Command,
    /// Where the server is and how to talk to it.
    pub settings: ServerSettings,
}

/// The common start of the `Script` tools: load the config, parse `argv`
/// (with `adjust` applied to the definition, given the config) and require a
/// server. `Err` is the exit status of a broken config file; help, version
/// and usage errors end the process.
pub fn start<T: CommandFactory + FromArgMatches + HasServerArgs>(
    argv: impl IntoIterator<Item = OsString>,
    adjust: impl FnOnce(Command, &Config) -> Command,
) -> Result<Started<T>, i32> {
    let config = load_config().map_err(|failure| failure.report())?;
    let (args, mut command) = parse_args::<T>(argv, &config, |c| adjust(c, &config));
    let settings = require_server(args.server_args().resolve(&config), &mut command);
    Ok(Started {
        config,
        args,
        command,
        settings,
    })
}

/// A usage error in the reference's words; exits 2.
pub fn usage_error(command: &mut Command, message: &str) -> ! {
    command
        .error(ErrorKind::MissingRequiredArgument, message)
        .exit()
}

/// The settings, or the reference's usage error when no hostname is known.
fn require_server(settings: Option<ServerSettings>, command: &mut Command) -> ServerSettings {
    settings.unwrap_or_else(|| {
        usage_error(
            command,
            "--hostname of spalloc server must be specified (or --url of a v2 service, or set hostname or url in the [spalloc] section of a config file)",
        )
    })
}

/// Connects (with no connect timeout, as the reference) and checks the
/// server's version unless told not to. The tools call it only when no v2
/// address was given (`crate::v2_service::connect` answered `None`).
pub fn connect(settings: &ServerSettings) -> Result<ProtocolClient, Failure> {
    let client = ProtocolClient::new(settings.hostname.clone(), settings.port);
    client.connect()?;
    client.set_timeout(settings.timeout);
    if !settings.ignore_version {
        let version = client.version()?;
        if !spalloc::version::is_compatible(&version) {
            return Err(Failure::new(
                2,
                format!("Incompatible server version ({version})"),
            ));
        }
    }
    Ok(client)
}

/// [`exit_status`] for a tool run with `--json`: a failure with a message is
/// also printed on stdout as `{"error": MESSAGE, "exit_code": N}`, so that a
/// script reading stdout always gets JSON.
pub fn exit_status_json(outcome: Result<(), Failure>, json: bool) -> i32 {
    match outcome {
        Err(failure) if json && failure.message.is_some() => {
            let error = serde_json::json!({
                "error": failure.message,
                "exit_code": failure.code,
            });
            let _ = crate::output::print_json(&error);
            failure.report()
        }
        outcome => exit_status(outcome),
    }
}

/// Runs a tool body and turns its outcome into an exit status.
pub fn exit_status(outcome: Result<(), Failure>) -> i32 {
    match outcome {
        Ok(()) => 0,
        Err(failure) => failure.report(),
    }
}
