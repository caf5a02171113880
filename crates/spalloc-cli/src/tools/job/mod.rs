//! `spalloc-job`: show, watch, power, list the IPs of, or destroy one job.

pub mod info;

use crate::ethernet_csv::render_ethernet_csv;
use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::output::{print_json, print_line, write_stdout};
use crate::script::{connect, exit_status, start, usage_error, Started};
use crate::server_args::ServerArgs;
use crate::terminal::Terminal;
use clap::{ArgGroup, Parser};
use serde::Serialize;
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
    /// print the information (or the Ethernet IPs) as one line of JSON
    #[arg(long)]
    pub json: bool,
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
    args.owner = args.owner.or(config.owner);
    if args.job_id.is_none() && args.owner.is_none() {
        usage_error(&mut command, "job ID (or --owner) not specified");
    }
    exit_status(connect(&settings).and_then(|client| run(&client, &args)))
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
        watch(client, job_id, args.json, &terminal)
    } else if args.power_on {
        set_power(client, job_id, true)
    } else if args.power_off {
        set_power(client, job_id, false)
    } else if args.ethernet_ips {
        ethernet_ips(client, job_id, args.json)
    } else if let Some(reason) = &args.destroy {
        let reason = reason.clone().unwrap_or_default();
        let reason = match (&args.owner, reason.is_empty()) {
            (Some(owner), true) => format!("Destroyed by {owner}"),
            _ => reason,
        };
        Ok(client.destroy_job(job_id, Some(&reason))?)
    } else {
        show_info(client, job_id, args.json, &terminal)
    }
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

/// Everything known about a job, for `--json`.
#[derive(Debug, Serialize)]
pub struct JobReport {
    /// The job.
    pub job_id: u64,
    /// Its `list_jobs` entry, if it is live.
    pub listing: Option<JobListing>,
    /// Its machine, if it is live.
    pub machine_info: Option<JobMachineInfo>,
    /// Its state, if it is not live (destroyed or unknown).
    pub state: Option<JobStateRecord>,
}

fn job_report(client: &ProtocolClient, job_id: u64) -> Result<JobReport, Failure> {
    let listing = client.list_jobs()?.into_iter().find(|j| j.job_id == job_id);
    Ok(match listing {
        Some(listing) => JobReport {
            job_id,
            machine_info: Some(client.get_job_machine_info(job_id)?),
            listing: Some(listing),
            state: None,
        },
        None => JobReport {
            job_id,
            listing: None,
            machine_info: None,
            state: Some(client.get_job_state(job_id)?),
        },
    })
}

fn show_info(
    client: &ProtocolClient,
    job_id: u64,
    json: bool,
    terminal: &Terminal,
) -> Result<(), Failure> {
    let report = job_report(client, job_id)?;
    if json {
        return print_json(&report);
    }
    let text = match (&report.listing, &report.machine_info, &report.state) {
        (Some(listing), Some(machine), _) => info::render_listed_job(listing, machine, terminal),
        (_, _, Some(state)) => info::render_unlisted_job(job_id, state),
        _ => info::render_unlisted_job(job_id, &JobStateRecord::unknown()),
    };
    print_line(&text)
}

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
        show_info(client, job_id, json, terminal)?;
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

/// One Ethernet-connected chip, for `--ethernet-ips --json`.
#[derive(Debug, Serialize)]
struct EthernetChip<'a> {
    x: u32,
    y: u32,
    hostname: &'a str,
}

fn ethernet_ips(client: &ProtocolClient, job_id: u64, json: bool) -> Result<(), Failure> {
    let info = client.get_job_machine_info(job_id)?;
    let Some(mut connections) = info.connections else {
        return Err(Failure::new(
            9,
            format!("Job {job_id} is queued or does not exist"),
        ));
    };
    if json {
        connections.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let chips: Vec<EthernetChip> = connections
            .iter()
            .map(|c| EthernetChip {
                x: c.0[0],
                y: c.0[1],
                hostname: &c.1,
            })
            .collect();
        return print_json(&chips);
    }
    write_stdout(&render_ethernet_csv(&connections))
}
