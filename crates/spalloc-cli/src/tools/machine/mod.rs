//! `spalloc-machine`: the machines and the jobs on them.

pub mod keys;
pub mod v2;
pub mod view;

use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::output::{print_json, print_line, write_stdout};
use crate::script::{connect, exit_status_json, start, usage_error, Started};
use crate::server_args::ServerArgs;
use crate::terminal::Terminal;
use clap::Parser;
use serde::Serialize;
use spalloc::{MachineListing, ProtocolClient};
use std::ffi::OsString;
use view::{keyed_jobs, render_machine, render_machine_list, summarise, KeyedJob, MachineSummary};

/// The command line of `spalloc-machine`.
#[derive(Debug, Parser)]
#[command(
    name = "spalloc-machine",
    version,
    about = "Get the state of individual machines.",
    infer_long_args = true
)]
pub struct MachineArgs {
    /// if given, specifies the machine to inspect
    pub machine: Option<String>,
    /// update the output when things change.
    #[arg(short, long)]
    pub watch: bool,
    /// list detailed job information
    #[arg(short, long)]
    pub detailed: bool,
    /// print the machines (or the machine and its jobs) as one line of JSON;
    /// errors as {"error": ..., "exit_code": N}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// Runs `spalloc-machine` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let Started {
        args,
        mut command,
        settings,
        config,
    } = match start::<MachineArgs>(argv, |c, _| c) {
        Ok(started) => started,
        Err(code) => return code,
    };
    if args.detailed && args.machine.is_none() {
        usage_error(
            &mut command,
            "--detailed only works when a specific machine is specified",
        );
    }
    let outcome = match crate::v2_service::v2_client(&settings, &config) {
        Ok(Some(client)) => run_v2(&client, &args),
        Ok(None) => connect(&settings).and_then(|client| run(&client, &args)),
        Err(failure) => Err(failure),
    };
    exit_status_json(outcome, args.json)
}

/// `spalloc-machine` over v2. `--watch` long-polls the named machine (the
/// server answers when it or the jobs on it change), or, for the list of
/// machines, the job list, re-reading at least every few seconds since
/// the machines themselves have no long-poll.
fn run_v2(client: &spalloc::v2::Client, args: &MachineArgs) -> Result<(), Failure> {
    let terminal = Terminal::stdout();
    let read = || -> Result<_, Failure> {
        Ok((
            v2::list_machines(client)?,
            crate::tools::ps::v2::list_jobs(client)?,
        ))
    };
    if !args.watch {
        let (machines, jobs) = read()?;
        return show_listed(&machines, &jobs, args, &terminal);
    }
    let waiter = client.clone();
    let wait: crate::v2_watch::ChangeWait = match args.machine.clone() {
        Some(name) => std::sync::Arc::new(move || waiter.machine(&name, true).map(|_| ())),
        None => std::sync::Arc::new(move || {
            let (sender, receiver) = std::sync::mpsc::channel();
            let polled = waiter.clone();
            std::thread::spawn(move || {
                let _ = sender.send(polled.wait_for_jobs_change());
            });
            match receiver.recv_timeout(crate::v2_watch::POLL_PERIOD) {
                Ok(answer) => answer,
                Err(_) => Ok(()),
            }
        }),
    };
    crate::v2_watch::Watch {
        json: args.json,
        terminal: &terminal,
    }
    .run(
        read,
        |(machines, jobs)| show_listed(machines, jobs, args, &terminal).map(|()| true),
        wait,
    )
}
impl crate::script::HasServerArgs for MachineArgs {
    fn server_args(&self) -> &ServerArgs {
        &self.server
    }
}

/// One machine and its jobs, for `--json`.
#[derive(Debug, Serialize)]
struct MachineReport<'a> {
    machine: &'a MachineListing,
    summary: MachineSummary,
    jobs: Vec<KeyedJob>,
}

fn show(client: &ProtocolClient, args: &MachineArgs, terminal: &Terminal) -> Result<(), Failure> {
    let machines = client.list_machines()?;
    let jobs = client.list_jobs()?;
    show_listed(&machines, &jobs, args, terminal)
}

/// Prints machines and jobs however they were listed.
fn show_listed(
    machines: &[MachineListing],
    jobs: &[spalloc::JobListing],
    args: &MachineArgs,
    terminal: &Terminal,
) -> Result<(), Failure> {
    let Some(name) = &args.machine else {
        if args.json {
            let summaries: Vec<MachineSummary> =
                machines.iter().map(|m| summarise(m, jobs)).collect();
            return print_json(&summaries);
        }
        return print_line(&render_machine_list(machines, jobs, terminal));
    };
    let Some(machine) = machines.iter().find(|m| &m.name == name) else {
        return Err(Failure::new(6, format!("No machine '{name}' was found")));
    };
    if args.json {
        return print_json(&MachineReport {
            machine,
            summary: summarise(machine, jobs),
            jobs: keyed_jobs(machine, jobs),
        });
    }
    print_line(&render_machine(machine, jobs, args.detailed, terminal))
}

fn run(client: &ProtocolClient, args: &MachineArgs) -> Result<(), Failure> {
    let terminal = Terminal::stdout();
    if !args.watch {
        return show(client, args, &terminal);
    }
    let section = InterruptibleSection::enter();
    loop {
        client.notify_machine(args.machine.as_deref())?;
        if !args.json {
            write_stdout(&terminal.clear_screen())?;
        }
        show(client, args, &terminal)?;
        let outcome = wait_for_notification(client, &section, None)?;
        if !args.json {
            print_line("")?;
        }
        if outcome == WaitOutcome::Interrupted {
            return Ok(());
        }
    }
}
