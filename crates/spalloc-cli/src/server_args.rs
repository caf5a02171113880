//! The "spalloc server arguments" group of `spalloc-job`, `-ps`, `-machine`
//! and `-where-is`, with defaults from the config file.

use crate::python_text::optional_float_text;
use clap::{Args, Command};
use spalloc::Config;
use std::path::PathBuf;
use std::time::Duration;

/// The heading the reference gives this group.
pub const HEADING: &str = "spalloc server arguments";

/// `--hostname`, `--port`, `--timeout`, `--ignore_version`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// hostname or IP of the spalloc server
    #[arg(short = 'H', long, help_heading = HEADING)]
    pub hostname: Option<String>,
    /// port number of the spalloc server
    #[arg(short = 'P', long, help_heading = HEADING)]
    pub port: Option<u16>,
    /// seconds to wait for a response from the server
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, help_heading = HEADING)]
    pub timeout: Option<f64>,
    /// Ignore the server version (WARNING: could result in errors); any
    /// non-empty value, even `False`, means yes, as in the reference
    #[arg(long = "ignore_version", value_name = "IGNORE_VERSION", help_heading = HEADING)]
    pub ignore_version: Option<String>,
    /// URL of a v2 (REST) spalloc service, e.g. https://host/spalloc/
    /// (instead of --hostname; credentials from SPALLOC_TOKEN, `spalloc
    /// login`, or SPALLOC_USER and SPALLOC_PASSWORD)
    #[arg(long, value_name = "URL", help_heading = HEADING)]
    pub url: Option<String>,
    /// a PEM file of certificates to trust for a v2 service, besides the
    /// system's
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = HEADING)]
    pub ca_cert: Option<PathBuf>,
}

/// Where and how to reach the server, after config defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// The server's host.
    pub hostname: String,
    /// Its port.
    pub port: u16,
    /// Timeout of each call; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Skip the version check.
    pub ignore_version: bool,
    /// The v2 service's URL: when set, the tool speaks v2, not the legacy
    /// protocol to `hostname`.
    pub url: Option<String>,
    /// Extra certificates to trust for the v2 service.
    pub ca_cert: Option<PathBuf>,
}

/// Seconds as a timeout: `None` (wait forever) for `None`, zero, negative or NaN.
pub fn seconds_to_timeout(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|s| *s > 0.0 && s.is_finite())
        .map(Duration::from_secs_f64)
}

impl ServerArgs {
    /// The settings, or `None` if no hostname is known.
    ///
    /// The address picks the protocol: `--url` wins, then `--hostname`, then
    /// the config files' `url`, then their `hostname`.
    pub fn resolve(&self, config: &Config) -> Option<ServerSettings> {
        let url = match (&self.url, &self.hostname) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(_)) => None,
            (None, None) => config.url.clone(),
        };
        let hostname = match &url {
            Some(_) => String::new(),
            None => self.hostname.clone().or_else(|| config.hostname.clone())?,
        };
        Some(ServerSettings {
            url,
            ca_cert: self.ca_cert.clone().or_else(|| config.ca_cert.clone()),
            hostname,
            port: self.port.unwrap_or(config.port),
            timeout: seconds_to_timeout(self.timeout.or(config.timeout)),
            ignore_version: match &self.ignore_version {
                Some(value) => !value.is_empty(),
                None => config.ignore_version,
            },
        })
    }
}

/// Shows the config file's values as the defaults in `--help`.
pub fn with_config_defaults(command: Command, config: &Config) -> Command {
    let hostname = config.hostname.clone().unwrap_or_else(|| "None".to_owned());
    let port = config.port;
    let timeout = optional_float_text(config.timeout);
    let ignore = if config.ignore_version {
        "True"
    } else {
        "False"
    };
    command
        .mut_arg("hostname", |a| {
            a.help(format!(
                "hostname or IP of the spalloc server (default: {hostname})"
            ))
        })
        .mut_arg("port", |a| {
            a.help(format!(
                "port number of the spalloc server (default: {port})"
            ))
        })
        .mut_arg("timeout", |a| {
            a.help(format!(
                "seconds to wait for a response from the server (default: {timeout})"
            ))
        })
        .mut_arg("ignore_version", |a| {
            a.help(format!(
                "Ignore the server version (WARNING: could result in errors) default: {ignore})"
            ))
        })
}
