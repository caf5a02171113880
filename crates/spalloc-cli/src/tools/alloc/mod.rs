//! `spalloc`: allocate boards, wait for them, then print their details or run a command.

pub mod args;
pub mod avoid;
pub mod command_run;
pub mod impossible;
pub mod keepalive;
pub mod messages;
pub mod plan;
pub mod quota_notice;
pub mod reporter;
pub mod v2;
mod v2_wait;
pub mod waiting;

use crate::command_template::{build_command_line, Substitutions};
use crate::ethernet_csv::{first_hostname, render_ethernet_csv};
use crate::interrupt::InterruptibleSection;
use crate::script::{load_config, usage_error};
use crate::terminal::{Style, Terminal};
use args::{split_command, with_config_defaults, AllocArgs};
use clap::{CommandFactory, FromArgMatches};
use keepalive::Keepalive;
use messages::{render_prompt, render_ready_info, ReadyMachine};
use plan::{JobRequest, Plan};
use quota_notice::{Held, HeldWatch, QuotaNotices};
use reporter::Reporter;
use spalloc::{JobMachineInfo, JobOptions, JobState, ProtocolClient};
use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use waiting::{wait_until_ready, WaitEnd, WaitSettings};

/// Exit status: the job was destroyed while waiting.
pub const EXIT_DESTROYED: i32 = 1;
/// Exit status: the server does not know the job.
pub const EXIT_UNKNOWN: i32 = 2;
/// Exit status: Ctrl-C (or SIGTERM, SIGHUP) while waiting.
pub const EXIT_INTERRUPTED: i32 = 4;
/// Exit status: the server was out of reach for `--server-timeout` while
/// waiting (the reference waits for ever, or crashes).
pub const EXIT_SERVER_GONE: i32 = 5;
/// Exit status: no connection, or the server refused the request.
pub const EXIT_SERVER: i32 = 6;

/// Runs `spalloc` with `argv` (program name first); returns the exit status.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let config = match load_config() {
        Ok(config) => config,
        Err(failure) => return failure.report(),
    };
    let (argv, command_words) = split_command(argv.into_iter().collect());
    let mut command =
        crate::manual::with_manual(with_config_defaults(AllocArgs::command(), &config));
    let matches = command
        .try_get_matches_from_mut(argv)
        .unwrap_or_else(|e| e.exit());
    let mut args =
        AllocArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    if command_words.is_some() {
        args.command = command_words;
    }
    let plan = match Plan::from_args(&args, &config) {
        Ok(plan) => plan,
        Err(message) => usage_error(&mut command, &message),
    };
    match &plan.v2 {
        Some(service) => v2::run(&plan, service, &config),
        None => run(&plan),
    }
}

/// The temporary file that `{ethernet_ips}` names; on failure, the exit
/// status after saying why.
fn ethernet_ips_file() -> Result<tempfile::NamedTempFile, i32> {
    tempfile::Builder::new()
        .prefix("spinnaker_ips_")
        .suffix(".csv")
        .tempfile()
        .map_err(|e| {
            eprintln!("Cannot create the temporary Ethernet IPs file: {e} (check TMPDIR)");
            1
        })
}

/// Everything after argument checking: the exit status of the whole run.
pub fn run(plan: &Plan) -> i32 {
    let section = InterruptibleSection::enter();
    let reporter = Reporter {
        quiet: plan.quiet,
        debug: plan.debug,
        terminal: Terminal::stderr(),
    };
    let csv_file = match ethernet_ips_file() {
        Ok(file) => file,
        Err(code) => return code,
    };
    // Shared with the thread that watches the held job (see `quota_notice`),
    // which reads its state while this thread waits for the command.
    let client = Arc::new(ProtocolClient::new(plan.hostname.clone(), plan.port));
    if let Err(e) = client.connect() {
        reporter.line(&Style::RED, &format!("Could not connect to server: {e}"));
        return EXIT_SERVER;
    }
    client.set_timeout(plan.timeout);
    let started = match start_job(&client, plan) {
        Ok(started) => started,
        Err(code) => {
            if let Some(message) = code.1 {
                reporter.line(&Style::RED, &message);
            }
            return code.0;
        }
    };
    let job_id = started.job_id;
    let mut keepalive = started.keepalive.filter(|k| *k > 0.0).map(|seconds| {
        Keepalive::start(
            plan.hostname.clone(),
            plan.port,
            plan.timeout,
            plan.reconnect_delay,
            job_id,
            Duration::from_secs_f64(seconds / 2.0),
        )
    });

    let settings = WaitSettings {
        job_id,
        reconnect_delay: plan.reconnect_delay,
        server_timeout: plan.server_timeout,
    };
    let mut notices = QuotaNotices::default();
    let end = wait_until_ready(&client, &settings, &section, &reporter, &mut notices);
    let watched = Arc::clone(&client);
    let held = HeldWatch {
        job_id,
        notices,
        quiet: plan.quiet,
        read: Box::new(move || read_held(&watched, job_id)),
    };
    let (code, destroy_reason) = after_wait(
        end,
        &reporter,
        || client.get_job_machine_info(job_id),
        |machine| {
            use_machine(
                plan,
                job_id,
                machine,
                csv_file.path(),
                &section,
                &reporter,
                held,
            )
        },
        || explain_impossible(&client, plan, job_id, &reporter),
    );
    if let Some(k) = keepalive.as_mut() {
        k.stop();
    }
    let job_lives = ![EXIT_DESTROYED, EXIT_UNKNOWN, EXIT_SERVER_GONE].contains(&code);
    if !plan.no_destroy && code != EXIT_SERVER_GONE {
        // Like the reference's Job.destroy: failures are quietly ignored.
        let _ = client.destroy_job(job_id, destroy_reason);
    } else if plan.no_destroy && job_lives {
        reporter.info(&format!("{}\n", still_exists(job_id, started.keepalive)));
    }
    drop(csv_file);
    code
}

/// What the tool does when the wait ends, over either protocol: with the
/// job ready, reads its machine (`machine_info`) and uses it (`use_it`: run
/// the command or print the boards); otherwise says why it ended, and in
/// numbers why a request can never fit (`explain_impossible`). Gives the
/// exit code and, after Ctrl-C, the reason to destroy the job with.
fn after_wait(
    end: WaitEnd,
    reporter: &Reporter,
    machine_info: impl FnOnce() -> spalloc::Result<JobMachineInfo>,
    use_it: impl FnOnce(&JobMachineInfo) -> i32,
    explain_impossible: impl FnOnce(),
) -> (i32, Option<&'static str>) {
    match end {
        WaitEnd::Ready => match machine_info() {
            Ok(machine) => (use_it(&machine), None),
            Err(e) => {
                reporter.line(
                    &Style::RED,
                    &format!("Error communicating with server: {e}"),
                );
                (EXIT_SERVER, None)
            }
        },
        WaitEnd::Exit { code, message } => {
            reporter.line(&Style::RED, &message);
            if code == EXIT_DESTROYED && message.ends_with(impossible::NO_SUITABLE_MACHINES) {
                explain_impossible();
            }
            let reason = (code == EXIT_INTERRUPTED).then_some("Keyboard interrupt.");
            (code, reason)
        }
    }
}

/// What `--no-destroy` leaves behind, and how to come back to it.
fn still_exists(job_id: u64, keepalive: Option<f64>) -> String {
    let expiry = match keepalive.filter(|k| *k > 0.0) {
        Some(seconds) => format!(
            " until {} s pass without a keepalive",
            crate::python_text::float_text(seconds)
        ),
        None => String::new(),
    };
    format!(
        "Job {job_id} still exists (--no-destroy){expiry}: `spalloc --resume {job_id}` to use it again, `spalloc-job {job_id} --destroy` to free its boards."
    )
}

/// After a cancellation for "No suitable machines available.", says in
/// numbers why the request can never fit (from `list_machines`).
fn explain_impossible(client: &ProtocolClient, plan: &Plan, job_id: u64, reporter: &Reporter) {
    let JobRequest::Create {
        allocation,
        options,
    } = &plan.request
    else {
        return;
    };
    if let Ok(machines) = client.list_machines() {
        reporter.line(
            &Style::RED,
            &format!(
                "Job {job_id}: {}.",
                impossible::explain(allocation, options, &machines)
            ),
        );
    }
}

/// One read of the held job's state, for its quota warning (see
/// [`quota_notice`]).
fn read_held(client: &ProtocolClient, job_id: u64) -> spalloc::Result<Held> {
    let reply = crate::queue_state::job_state_reply(client, job_id)?;
    Ok(match reply.record.state {
        state @ (JobState::Destroyed | JobState::Unknown) => Held::Gone(state, reply.record.reason),
        _ => Held::Live(reply.quota_warning),
    })
}

/// The job being waited for.
struct StartedJob {
    job_id: u64,
    keepalive: Option<f64>,
}

/// Creates the job, or checks the resumed one; on failure the exit status
/// and the message to print.
fn start_job(client: &ProtocolClient, plan: &Plan) -> Result<StartedJob, (i32, Option<String>)> {
    let server_error = |e: spalloc::Error| match e {
        spalloc::Error::ServerException(text) => {
            (EXIT_SERVER, Some(format!("Error from server: {text}")))
        }
        other if other.is_communication_error() => (
            EXIT_SERVER,
            Some(format!("Could not connect to server: {other}")),
        ),
        other => (1, Some(other.to_string())),
    };
    let version = client.version().map_err(server_error)?;
    if !spalloc::version::is_compatible(&version) {
        return Err((1, Some(format!("Incompatible server version ({version})"))));
    }
    match &plan.request {
        JobRequest::Resume(job_id) => {
            let state = client.get_job_state(*job_id).map_err(server_error)?;
            match state.state {
                JobState::Unknown | JobState::Destroyed => Err((
                    1,
                    Some(match state.reason {
                        Some(reason) => format!("Job {job_id}: Destroyed: {reason}"),
                        None if state.state == JobState::Unknown => {
                            format!("Job {job_id}: Job not recognised by server.")
                        }
                        None => format!("Job {job_id}: Destroyed."),
                    }),
                )),
                _ => Ok(StartedJob {
                    job_id: *job_id,
                    keepalive: state.keepalive,
                }),
            }
        }
        JobRequest::Create {
            allocation,
            options,
        } => {
            let job_id = client
                .create_job(allocation, options)
                .map_err(|e| match e {
                    spalloc::Error::ServerException(text)
                        if JobOptions::is_unsupported_avoid_boards(&text) =>
                    {
                        destroy_ghost_jobs(client, options);
                        (EXIT_SERVER, Some(capitalised(avoid::UNSUPPORTED)))
                    }
                    other => server_error(other),
                })?;
            Ok(StartedJob {
                job_id,
                keepalive: options.keepalive.map(|k| k.as_f64()),
            })
        }
    }
}

/// The reference server registers a job before it checks the keywords
/// (its bug B1), so the refused create leaves a queued "ghost" job behind,
/// which would poison its config reloads until its keepalive runs out:
/// destroy ours, found by owner and avoid-list (nothing else carries one).
fn destroy_ghost_jobs(client: &ProtocolClient, options: &JobOptions) {
    let sent = serde_json::json!(options.avoid_boards);
    let Ok(jobs) = client.list_jobs() else {
        return;
    };
    for job in jobs {
        if job.state == JobState::Queued
            && job.owner == options.owner
            && job.kwargs.get("avoid_boards") == Some(&sent)
        {
            let _ = client.destroy_job(job.job_id, Some("avoid_boards is not supported"));
        }
    }
}

/// `text` with a capital first letter, as a sentence on its own.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Writes the CSV, announces readiness, then prints the info block and
/// waits for Enter, or runs the command. Returns the exit status.
fn use_machine(
    plan: &Plan,
    job_id: u64,
    machine: &JobMachineInfo,
    csv_path: &std::path::Path,
    section: &InterruptibleSection,
    reporter: &Reporter,
    held: HeldWatch,
) -> i32 {
    let connections = machine.connections.clone().unwrap_or_default();
    let csv_path_text = csv_path.display().to_string();
    if let Err(e) = std::fs::write(csv_path, render_ethernet_csv(&connections)) {
        eprintln!("Cannot write {csv_path_text}: {e}");
    }
    reporter.line(&Style::GREEN, &format!("Job {job_id}: Ready!"));
    let hostname = first_hostname(&connections).unwrap_or_default().to_owned();
    let (width, height) = (machine.width.unwrap_or(0), machine.height.unwrap_or(0));
    let machine_name = machine.machine_name.clone().unwrap_or_default();
    reporter.debug(&format!(
        "Allocated {width} x {height} chip machine in '{machine_name}'"
    ));
    reporter.debug(&format!("Chip (0, 0) IP: {hostname}"));
    reporter.debug(&format!("All board IPs listed in: {csv_path_text}"));

    match plan.command.as_deref() {
        Some(words) if !words.is_empty() => {
            let substitutions = Substitutions {
                hostname,
                width,
                height,
                ethernet_ips: csv_path_text,
                job_id,
            };
            let line = match build_command_line(words, &substitutions) {
                Ok(line) => line,
                Err(e) => {
                    eprintln!("{e}");
                    return 2;
                }
            };
            let mut watch = held.start(false);
            let status = command_run::run_shell_command(&line, section);
            watch.stop();
            match status {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("Cannot run /bin/sh: {e}");
                    127
                }
            }
        }
        _ => {
            let out = Terminal::stdout();
            let ready = ReadyMachine {
                hostname,
                width,
                height,
                num_boards: connections.len(),
                csv_path: csv_path_text,
                machine_name,
            };
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", render_ready_info(&ready, &out));
            let _ = write!(stdout, "{}", render_prompt(&out));
            let _ = stdout.flush();
            drop(stdout);
            let mut watch = held.start(true);
            let entered = waiting::wait_for_enter(section);
            watch.stop();
            if !entered {
                println!();
            }
            0
        }
    }
}
