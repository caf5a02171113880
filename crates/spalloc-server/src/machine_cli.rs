//! `spalloc-server machine import DEFS.json [--simulated]`: operators moving
//! from allocserv (the Java spalloc server) bring their machine definitions.
//!
//! allocserv loads machines from JSON written by SpiNNMachine's `py2json.py`;
//! this server loads them from its TOML configuration file. The command
//! prints that file (see `config::allocserv_json` for what is converted and
//! how), having loaded it through the server's own parser and validator: a
//! definition the server would refuse is reported with the validator's
//! message, exit status 1 and nothing on standard output, so that
//! `spalloc-server machine import defs.json > server.toml` never leaves a
//! file the server will not start on.

use crate::config::allocserv_json::{convert, Boards};
use clap::Subcommand;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest definition file read. The biggest SpiNNaker machine's
/// definitions (1200 boards) take well under 1 MiB; a file much larger is not
/// one, and reading it whole would only use memory.
pub const MAX_DEFINITION_BYTES: u64 = 16 << 20;

/// `spalloc-server machine ...`.
#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Print allocserv's machine definitions (JSON) as this server's
    /// configuration.
    ///
    /// DEFS.json is what allocserv's `POST /admin/import` takes (written by
    /// SpiNNMachine's `py2json.py`); the TOML configuration is printed on
    /// standard output. The settings the JSON carries (port, ip,
    /// timeout-check-interval, max-retired-jobs, seconds-before-free) and
    /// every machine, with its board locations, BMP and board IPs, dead
    /// boards and dead links, are converted; the result is checked as the
    /// server checks its configuration, and a definition it would refuse is
    /// reported (exit status 1, nothing printed). allocserv's database (jobs, users, groups, boards
    /// disabled) and its properties are not in the file, so not converted.
    Import {
        /// allocserv's machine definitions.
        #[arg(value_name = "DEFS.json")]
        file: PathBuf,
        /// Make the machines simulated (`bmp = "simulated"`), to try the
        /// definitions without hardware; by default they drive their real
        /// BMPs (`bmp = "scp"`).
        #[arg(long)]
        simulated: bool,
    },
}

/// Runs a `machine` subcommand.
pub fn run_machine(command: MachineCommand) -> Result<(), String> {
    match command {
        MachineCommand::Import { file, simulated } => {
            let boards = if simulated {
                Boards::Simulated
            } else {
                Boards::Real
            };
            let json = read_bounded(&file)?;
            let toml = convert(&json, &file.display().to_string(), boards)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let mut out = std::io::stdout().lock();
            out.write_all(toml.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the configuration: {e}"))
        }
    }
}

/// Reads `path`, refusing one larger than [`MAX_DEFINITION_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_DEFINITION_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_DEFINITION_BYTES {
        return Err(format!(
            "{} is larger than {} MiB: not a machine definition file",
            path.display(),
            MAX_DEFINITION_BYTES >> 20
        ));
    }
    Ok(bytes)
}
