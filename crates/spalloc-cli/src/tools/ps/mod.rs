//! `spalloc-ps`: list the live jobs.

pub mod table;

use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::output::{print_json, print_line, write_stdout};
use crate::script::{connect, exit_status, start};
use crate::server_args::ServerArgs;
use crate::terminal::Terminal;
use clap::Parser;
use std::ffi::OsString;
use table::{render_job_list, JobFilter};

/// The command line of `spalloc-ps`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-ps",
    version,
    about = "List all active jobs.",
    infer_long_args = true
)]
pub struct PsArgs {
    /// watch the list of live jobs in real time
    #[arg(short, long)]
    pub watch: bool,
    /// print the jobs as one line of JSON (one line per refresh with --watch)
    #[arg(long)]
    pub json: bool,
    /// list only jobs on the specified machine
    #[arg(short, long, help_heading = "filtering arguments")]
    pub machine: Option<String>,
    /// list only jobs belonging to a particular owner
    #[arg(short, long, help_heading = "filtering arguments")]
    pub owner: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

impl crate::script::HasServerArgs for PsArgs {
    fn server_args(&self) -> &ServerArgs {
        &self.server
    }
}

/// Runs `spalloc-ps` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let started = match start::<PsArgs>(argv, |c, _| c) {
        Ok(started) => started,
        Err(code) => return code,
    };
    exit_status(connect(&started.settings).and_then(|client| run(&client, &started.args)))
}

fn run(client: &spalloc::ProtocolClient, args: &PsArgs) -> Result<(), Failure> {
    let filter = JobFilter {
        machine: args.machine.clone(),
        owner: args.owner.clone(),
    };
    // As in the reference, colours follow whether *stderr* is a terminal.
    let terminal = Terminal::stderr();
    let show = |jobs: &[spalloc::JobListing]| -> Result<(), Failure> {
        if args.json {
            let listed: Vec<&spalloc::JobListing> =
                jobs.iter().filter(|j| filter.accepts(j)).collect();
            print_json(&listed)
        } else {
            print_line(&render_job_list(jobs, &filter, &terminal))
        }
    };
    if !args.watch {
        return show(&client.list_jobs()?);
    }
    let section = InterruptibleSection::enter();
    client.notify_job(None)?;
    loop {
        let jobs = client.list_jobs()?;
        if !args.json {
            write_stdout(&terminal.clear_screen())?;
        }
        show(&jobs)?;
        let outcome = wait_for_notification(client, &section, None)?;
        if !args.json {
            print_line("")?;
        }
        if outcome == WaitOutcome::Interrupted {
            return Ok(());
        }
    }
}
