//! `spalloc-job`: show, watch, power, list the IPs of, or destroy one job.

pub mod info;
pub mod report;
pub mod v2;

use crate::ethernet_csv::render_ethernet_csv;
use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::output::{print_json, print_line, write_stdout};
use crate::queue_state::job_state_reply;
use crate::script::{connect, exit_status_json, start, usage_error, Started};
use crate::server_args::ServerArgs;
use crate::terminal::Terminal;
use crate::tools::alloc::messages::QueueNote;
use clap::{ArgGroup, Parser};
use report::JobJson;
use spalloc::{JobListing, JobMachineInfo, JobState, JobStateRecord, ProtocolClient};
use std::ffi::OsString;

/// The command line of `spalloc-job`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-job",
    version,
    about = "Manage running jobs.",
    infer_long_args = true,
    group(ArgGroup::new("action").multiple(false)
        .args(["info", "watch", "power_on", "power_off", "ethernet_ips", "destroy"]))
)]
pub struct JobArgs {
    /// the job ID of interest, optional if the current owner only has one job
    pub job_id: Option<u64>,
    /// if no job ID is provided and this owner has only one job, this job is assumed
    #[arg(short, long)]
    pub owner: Option<String>,
    /// Show basic job information (the default)
    #[arg(short, long, help_heading = "action")]
    pub info: bool,
    /// watch this job for state changes
    #[arg(short, long, help_heading = "action")]
    pub watch: bool,
    /// power-on or reset the job's boards
    #[arg(
        short = 'p',
        long = "power-on",
        visible_alias = "reset",
        visible_short_alias = 'r',
        help_heading = "action"
    )]
    pub power_on: bool,
    /// power-off the job's boards
    #[arg(long = "power-off", help_heading = "action")]
    pub power_off: bool,
    /// output the IPs of all Ethernet connected chips as a CSV
    #[arg(short, long = "ethernet-ips", help_heading = "action")]
    pub ethernet_ips: bool,
    /// destroy a queued or running job
    #[arg(short = 'D', long, value_name = "REASON", num_args = 0..=1, help_heading = "action")]
    pub destroy: Option<Option<String>>,
    /// print the job as one line of JSON, in one shape whatever its state
    /// (also after --power-on, --power-off, --destroy, --ethernet-ips; one
    /// line per change with --watch); errors as {"error": ..., "exit_code": N}
    #[arg(long)]
    pub json: bool,
    /// tell the operators that the job's boards are broken (v2 servers
    /// only), e.g. --report-issue "board will not boot"
    #[arg(long = "report-issue", value_name = "TEXT")]
    pub report_issue: Option<String>,
    /// with --report-issue: the broken board, by its triad coordinates
    #[arg(long, num_args = 3, value_names = ["X", "Y", "Z"], requires = "report_issue")]
    pub board: Option<Vec<u32>>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// Runs `spalloc-job` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let Started {
        config,
        mut args,
        mut command,
        settings,
    } = match start::<JobArgs>(argv, |c, config| {
        let owner_default = config.owner.clone().unwrap_or_else(|| "None".to_owned());
        c.mut_arg("owner", |a| {
            a.help(format!(
                "if no job ID is provided and this owner has only one job, this job is assumed (default: {owner_default})"
            ))
        })
    }) {
        Ok(started) => started,
        Err(code) => return code,
    };
    args.owner = args.owner.or(config.owner.clone());
    if args.job_id.is_none() && args.owner.is_none() {
        usage_error(&mut command, "job ID (or --owner) not specified");
    }
    let outcome = match crate::v2_service::v2_client(&settings, &config) {
        Ok(Some(client)) => v2::run(&client, &args),
        Ok(None) if args.report_issue.is_some() => Err(v2::legacy_report_issue()),
        Ok(None) => connect(&settings).and_then(|client| run(&client, &args)),
        Err(failure) => Err(failure),
    };
    exit_status_json(outcome, args.json)
}

impl crate::script::HasServerArgs for JobArgs {
    fn server_args(&self) -> &ServerArgs {
        &self.server
    }
}

fn run(client: &ProtocolClient, args: &JobArgs) -> Result<(), Failure> {
    let job_id = match args.job_id {
        Some(id) => id,
        None => job_of_owner(client, args.owner.as_deref().unwrap_or_default())?,
    };
    let terminal = Terminal::stdout();
    if args.watch {
        return watch(client, job_id, args.json, &terminal);
    } else if args.power_on {
        set_power(client, job_id, true)?;
    } else if args.power_off {
        set_power(client, job_id, false)?;
    } else if args.ethernet_ips {
        return ethernet_ips(client, job_id, args.json);
    } else if let Some(reason) = &args.destroy {
        let reason = reason.clone().unwrap_or_default();
        let reason = match (&args.owner, reason.is_empty()) {
            (Some(owner), true) => format!("Destroyed by {owner}"),
            _ => reason,
        };
        client.destroy_job(job_id, Some(&reason))?;
    } else {
        return show_info(client, job_id, args.json, &terminal)?.known();
    }
    // After an action, --json shows the job as it now is.
    if args.json {
        print_json(&look_up(client, job_id)?.to_json())?;
    }
    Ok(())
}

/// The only live job of `owner`, or exit 3.
fn job_of_owner(client: &ProtocolClient, owner: &str) -> Result<u64, Failure> {
    let ids: Vec<u64> = client
        .list_jobs()?
        .into_iter()
        .filter(|job| job.owner == owner)
        .map(|job| job.job_id)
        .collect();
    match ids.as_slice() {
        [] => Err(Failure::new(3, format!("Owner {owner} has no live jobs"))),
        [only] => Ok(*only),
        several => {
            let list: Vec<String> = several.iter().map(u64::to_string).collect();
            Err(Failure::new(
                3,
                format!(
                    "Ambiguous: {owner} has {} live jobs: {}",
                    several.len(),
                    list.join(", ")
                ),
            ))
        }
    }
}

/// Exit status of `spalloc-job` (info, `--watch`) for a job the server does
/// not know (the reference exits 0 there).
pub const EXIT_UNKNOWN_JOB: i32 = 10;

/// Everything known about a job: its listing and machine if it is live, its
/// state (with the queue extension if the server sends it) otherwise or
/// while queued.
#[derive(Debug, PartialEq)]
pub struct Looked {
    /// The job.
    pub job_id: u64,
    /// Its `list_jobs` entry, if it is live.
    pub listing: Option<JobListing>,
    /// Its machine, if it is live.
    pub machine_info: Option<JobMachineInfo>,
    /// Its state, if it is not live, or queued.
    pub state: Option<JobStateRecord>,
    /// Where it is in its queue, and why, when the server says.
    pub queue: QueueNote,
    /// The server's warning that the job's group is running out of quota
    /// (see [`crate::quota_warning`]), for a running job.
    pub quota_warning: Option<String>,
}

impl Looked {
    /// The job's one JSON shape.
    pub fn to_json(&self) -> JobJson {
        let json = match (&self.listing, &self.state) {
            (Some(listing), _) => JobJson::from_listing(listing),
            (None, Some(state)) => JobJson::from_state(self.job_id, state),
            (None, None) => JobJson::from_state(self.job_id, &JobStateRecord::unknown()),
        };
        let json = match &self.machine_info {
            Some(info) => json.with_machine_info(info),
            None => json,
        };
        json.with_queue(self.queue.position, self.queue.reason.clone())
    }

    /// The job's text block.
    pub fn render(&self, terminal: &Terminal) -> String {
        match (&self.listing, &self.machine_info, &self.state) {
            (Some(listing), Some(machine), _) => {
                let text =
                    info::render_listed_job(listing, machine, self.queue.describe(), terminal);
                match &self.quota_warning {
                    Some(w) => format!("{text}\nQuota warning: {w}"),
                    None => text,
                }
            }
            (_, _, Some(state)) => info::render_unlisted_job(self.job_id, state),
            _ => info::render_unlisted_job(self.job_id, &JobStateRecord::unknown()),
        }
    }

    /// `Err` with [`EXIT_UNKNOWN_JOB`] (and no message) for a job the server
    /// does not know.
    pub fn known(&self) -> Result<(), Failure> {
        let unknown = self.listing.is_none()
            && self
                .state
                .as_ref()
                .map_or(true, |s| s.state == JobState::Unknown);
        if unknown {
            Err(Failure::silent(EXIT_UNKNOWN_JOB))
        } else {
            Ok(())
        }
    }

    /// Whether the job is destroyed or unknown.
    pub fn is_gone(&self) -> bool {
        self.listing.is_none()
    }
}

/// Reads everything about `job_id`.
pub fn look_up(client: &ProtocolClient, job_id: u64) -> Result<Looked, Failure> {
    let listing = client.list_jobs()?.into_iter().find(|j| j.job_id == job_id);
    let needs_state = listing
        .as_ref()
        .map_or(true, |l| l.state == JobState::Queued);
    let (state, queue) = if needs_state {
        let reply = job_state_reply(client, job_id)?;
        (Some(reply.record), reply.queue)
    } else {
        (None, QueueNote::default())
    };
    let machine_info = match &listing {
        Some(_) => Some(client.get_job_machine_info(job_id)?),
        None => None,
    };
    let running = listing
        .as_ref()
        .is_some_and(|l| l.state != JobState::Queued);
    let quota_warning = if running {
        crate::quota_warning::fetch_quota_warning(client, job_id)?.map(|w| w.message)
    } else {
        None
    };
    Ok(Looked {
        job_id,
        listing,
        machine_info,
        state,
        queue,
        quota_warning,
    })
}

/// Prints the job (text or JSON); whether it is gone.
fn show_info(
    client: &ProtocolClient,
    job_id: u64,
    json: bool,
    terminal: &Terminal,
) -> Result<Looked, Failure> {
    let looked = look_up(client, job_id)?;
    if json {
        print_json(&looked.to_json())?;
    } else {
        print_line(&looked.render(terminal))?;
    }
    Ok(looked)
}

/// Shows the job at every change until it is destroyed (exit 0, after
/// showing its reason), found unknown (exit 10) or Ctrl-C (exit 0).
fn watch(
    client: &ProtocolClient,
    job_id: u64,
    json: bool,
    terminal: &Terminal,
) -> Result<(), Failure> {
    let section = InterruptibleSection::enter();
    client.notify_job(Some(job_id))?;
    loop {
        if !json {
            write_stdout(&terminal.clear_screen())?;
        }
        let looked = show_info(client, job_id, json, terminal)?;
        if looked.is_gone() {
            return looked.known();
        }
        let outcome = wait_for_notification(client, &section, None)?;
        if !json {
            print_line("")?;
        }
        if outcome == WaitOutcome::Interrupted {
            return Ok(());
        }
    }
}

fn set_power(client: &ProtocolClient, job_id: u64, on: bool) -> Result<(), Failure> {
    let section = InterruptibleSection::enter();
    if on {
        client.power_on_job_boards(job_id)?;
    } else {
        client.power_off_job_boards(job_id)?;
    }
    loop {
        client.notify_job(Some(job_id))?;
        let state = client.get_job_state(job_id)?.state;
        match state {
            JobState::Ready => return Ok(()),
            JobState::Power => {
                if wait_for_notification(client, &section, None)? == WaitOutcome::Interrupted {
                    return Err(Failure::silent(7));
                }
            }
            other => {
                return Err(Failure::new(
                    8,
                    format!(
                        "Error: Cannot power {} job {job_id} in state {}",
                        if on { "on" } else { "off" },
                        other.name()
                    ),
                ))
            }
        }
    }
}

fn ethernet_ips(client: &ProtocolClient, job_id: u64, json: bool) -> Result<(), Failure> {
    let info = client.get_job_machine_info(job_id)?;
    let Some(connections) = info.connections else {
        return Err(Failure::new(
            9,
            format!("Job {job_id} is queued or does not exist"),
        ));
    };
    if json {
        return print_json(&look_up(client, job_id)?.to_json());
    }
    write_stdout(&render_ethernet_csv(&connections))
}
