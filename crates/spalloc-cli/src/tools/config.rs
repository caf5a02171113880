//! `spalloc-config`: where the config files are looked for, which of them
//! exist, what in them is ignored, and the values the tools end up with.
//!
//! The first block is the reference's `python -m spalloc.config` output,
//! unchanged, so that scripts reading it keep working.

use crate::failure::Failure;
use crate::output::write_stdout;
use crate::script::exit_status;
use clap::{CommandFactory, FromArgMatches, Parser};
use spalloc::Config;
use std::ffi::OsString;

/// The command line of `spalloc-config`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-config",
    version,
    about = "Show the spalloc config file search path, which files exist, and the effective values.",
    long_about = "Show the spalloc config file search path (lowest priority first), which of \
the files exist, warnings about keys and sections that are ignored, and the effective \
values of the [spalloc] section after every file is read. The first block is what the \
reference's `python -m spalloc.config` prints."
)]
pub struct ConfigArgs {
    /// print only the search path, as the reference does
    #[arg(long = "path-only")]
    pub path_only: bool,
}

/// Runs `spalloc-config` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let mut command = crate::manual::with_manual(ConfigArgs::command());
    let args = command
        .try_get_matches_from_mut(argv)
        .and_then(|matches| ConfigArgs::from_arg_matches(&matches))
        .unwrap_or_else(|e| e.exit());
    exit_status(run(&args))
}

fn run(args: &ConfigArgs) -> Result<(), Failure> {
    let mut text = spalloc::config::search_path_description();
    if args.path_only {
        return write_stdout(&text);
    }
    let report = Config::load_report()
        .map_err(|e| Failure::new(1, format!("{text}\nError in a spalloc config file: {e}")))?;
    text.push_str("\nFiles:\n");
    for (path, read) in &report.files {
        let status = if *read { "read" } else { "not found" };
        text.push_str(&format!("  {}: {status}\n", path.display()));
    }
    if !report.warnings.is_empty() {
        text.push_str("\nWarnings:\n");
        for warning in &report.warnings {
            text.push_str(&format!("  {warning}\n"));
        }
    }
    text.push_str("\nEffective values:\n");
    text.push_str(&report.config.to_string());
    text.push_str(&format!("\nProtocol: {}\n", protocol(&report)));
    write_stdout(&text)
}

/// Which protocol the tools use, and which file says so: a `url` means v2,
/// else a `hostname` the legacy protocol (the last file setting a key wins).
fn protocol(report: &spalloc::config::LoadReport) -> String {
    let last_file_setting = |key: fn(&Config) -> bool| {
        report
            .files
            .iter()
            .rev()
            .filter(|(_, read)| *read)
            .find(|(path, _)| Config::from_files([path]).is_ok_and(|c| key(&c)))
            .map_or_else(|| "?".to_owned(), |(path, _)| path.display().to_string())
    };
    let config = &report.config;
    if let Some(url) = &config.url {
        let from = last_file_setting(|c| c.url.is_some());
        format!("v2 (REST) at {url} (url in {from})")
    } else if let Some(host) = &config.hostname {
        let from = last_file_setting(|c| c.hostname.is_some());
        format!("legacy at {host}:{} (hostname in {from})", config.port)
    } else {
        "none configured (set url for a v2 service, or hostname for a legacy server)".to_owned()
    }
}
