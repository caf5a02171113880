//! `spalloc-ps`: list the live jobs (or, with `--history`, the finished
//! ones with the board-seconds they used: [`history`]).

pub mod history;
pub mod table;
pub mod v2;

use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::output::{print_json, print_line, write_stdout};
use crate::queue_state::{list_jobs_with_queue, QueueNote};
use crate::script::{connect, exit_status_json, start};
use crate::server_args::ServerArgs;
use crate::terminal::Terminal;
use crate::tools::job::report::JobJson;
use clap::Parser;
use spalloc::JobListing;
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
    /// list finished (and running) jobs with the board-seconds they used,
    /// and the totals and quotas, newest first (at most 1000 jobs); over v2
    /// only your own jobs unless you are an administrator
    #[arg(long, conflicts_with = "watch")]
    pub history: bool,
    /// print the jobs as one line of JSON, a list of jobs in spalloc-job's
    /// shape (one line per refresh with --watch); errors as {"error": ..., "exit_code": N}
    #[arg(long)]
    pub json: bool,
    /// list only jobs on the specified machine
    #[arg(short, long, help_heading = "filtering arguments")]
    pub machine: Option<String>,
    /// list only jobs belonging to a particular owner
    #[arg(short, long, help_heading = "filtering arguments")]
    pub owner: Option<String>,
    /// list only my jobs: the config's owner over the legacy protocol, the
    /// logged-in user over v2 (where the server shows others' jobs only to
    /// administrators anyway)
    #[arg(long, help_heading = "filtering arguments", conflicts_with = "owner")]
    pub mine: bool,
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
    let args = &started.args;
    let outcome = match crate::v2_service::v2_client(&started.settings, &started.config) {
        Ok(Some(client)) if args.history => {
            // The server shows a user only their own usage; an owner
            // filter names another user (administrators only).
            let owner = if args.mine { None } else { args.owner.clone() };
            history::run_v2(
                &client,
                owner.as_deref(),
                args.machine.as_deref(),
                args.json,
            )
        }
        Ok(Some(client)) => run_v2(&client, args),
        Ok(None) if args.history => connect(&started.settings).and_then(|client| {
            let owner = owner_filter(args, started.config.owner.clone())?;
            history::run_legacy(
                &client,
                owner.as_deref(),
                args.machine.as_deref(),
                args.json,
            )
        }),
        Ok(None) => connect(&started.settings)
            .and_then(|client| run(&client, args, started.config.owner.clone())),
        Err(failure) => Err(failure),
    };
    exit_status_json(outcome, started.args.json)
}

/// The owner filter: `--owner`, or with `--mine` the user's own name.
fn owner_filter(args: &PsArgs, me: Option<String>) -> Result<Option<String>, Failure> {
    if !args.mine {
        return Ok(args.owner.clone());
    }
    me.map(Some).ok_or_else(|| {
        Failure::new(
            2,
            "--mine needs to know who you are: set owner in the [spalloc] section of a config file",
        )
    })
}

/// `spalloc-ps` over v2; `--watch` long-polls the job list.
fn run_v2(client: &spalloc::v2::Client, args: &PsArgs) -> Result<(), Failure> {
    let me = crate::v2_service::user_name(client);
    // With a token the server already shows only the user's jobs (or all
    // of them to an administrator), and the token does not name its user.
    let owner = if args.mine && me.is_none() {
        None
    } else {
        owner_filter(args, me)?
    };
    let filter = JobFilter {
        machine: args.machine.clone(),
        owner,
    };
    let terminal = Terminal::stderr();
    let show = |jobs: &Vec<JobListing>| -> Result<bool, Failure> {
        if args.json {
            let shaped: Vec<JobJson> = jobs
                .iter()
                .filter(|job| filter.accepts(job))
                .map(JobJson::from_listing)
                .collect();
            print_json(&shaped)?;
        } else {
            print_line(&render_job_list(jobs, &filter, &terminal))?;
        }
        Ok(true)
    };
    if !args.watch {
        return show(&v2::list_jobs(client)?).map(|_| ());
    }
    let waiter = client.clone();
    crate::v2_watch::Watch {
        json: args.json,
        terminal: &terminal,
    }
    .run(
        || v2::list_jobs(client),
        show,
        std::sync::Arc::new(move || waiter.wait_for_jobs_change()),
    )
}

fn run(client: &spalloc::ProtocolClient, args: &PsArgs, me: Option<String>) -> Result<(), Failure> {
    let filter = JobFilter {
        machine: args.machine.clone(),
        owner: owner_filter(args, me)?,
    };
    // As in the reference, colours follow whether *stderr* is a terminal.
    let terminal = Terminal::stderr();
    let show = |listed: &[(JobListing, QueueNote)]| -> Result<(), Failure> {
        let shown: Vec<&(JobListing, QueueNote)> = listed
            .iter()
            .filter(|(job, _)| filter.accepts(job))
            .collect();
        if args.json {
            let shaped: Vec<JobJson> = shown
                .iter()
                .map(|(job, queue)| {
                    JobJson::from_listing(job).with_queue(queue.position, queue.reason.clone())
                })
                .collect();
            return print_json(&shaped);
        }
        let jobs: Vec<JobListing> = listed.iter().map(|(job, _)| job.clone()).collect();
        let mut text = render_job_list(&jobs, &filter, &terminal);
        for (job, queue) in shown {
            if let Some(description) = queue.describe() {
                text.push_str(&format!("\nJob {}: {description}", job.job_id));
            }
        }
        print_line(&text)
    };
    if !args.watch {
        return show(&list_jobs_with_queue(client)?);
    }
    let section = InterruptibleSection::enter();
    client.notify_job(None)?;
    loop {
        let jobs = list_jobs_with_queue(client)?;
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
