//! `spalloc` over the v2 (REST) protocol: the same request, status lines,
//! ready block, `-c` substitutions and exit statuses as over the legacy
//! protocol, through the library's v2 [`Job`], whose own thread keeps the
//! job alive (logging in again and riding out a server restart).

use super::plan::{JobRequest, Plan, V2Service};
use super::quota_notice::{Held, HeldWatch, QuotaNotices};
use super::reporter::Reporter;
use super::waiting::WaitSettings;
use super::{
    ethernet_ips_file, still_exists, use_machine, EXIT_DESTROYED, EXIT_SERVER, EXIT_SERVER_GONE,
    EXIT_UNKNOWN,
};
use crate::interrupt::InterruptibleSection;
use crate::terminal::{Style, Terminal};
use spalloc::v2::{BoardSelector, Client, CreateJob, Credentials, Job, SubMachine};
use spalloc::{Allocation, Config, Connection, JobMachineInfo, JobOptions, JobState};
use std::time::Duration;

/// Runs `spalloc` against the v2 service; returns the exit status.
pub fn run(plan: &Plan, service: &V2Service, config: &Config) -> i32 {
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
    let client = match client(plan, service, config) {
        Ok(client) => client,
        Err(e) => {
            reporter.line(&Style::RED, &failure_message(&e));
            return EXIT_SERVER;
        }
    };
    let job = match start_job(&client, plan) {
        Ok(job) => job,
        Err((code, message)) => {
            reporter.line(&Style::RED, &message);
            return code;
        }
    };
    let job_id = job.id();
    reporter.debug(&format!("job {job_id} at {}", job.url()));
    let settings = WaitSettings {
        job_id,
        reconnect_delay: plan.reconnect_delay,
        server_timeout: plan.server_timeout,
    };
    let poller = match client.job(job_id) {
        Ok(handle) => handle,
        Err(e) => {
            reporter.line(&Style::RED, &failure_message(&e));
            return finish(job, plan, EXIT_SERVER, None, &reporter);
        }
    };
    let mut notices = QuotaNotices::default();
    let end = super::v2_wait::wait_until_ready(
        &client,
        poller,
        &settings,
        &section,
        &reporter,
        &mut notices,
    );
    // A handle of its own (made as the poller's was, which worked).
    let watched = client.job(job_id).ok();
    let held = HeldWatch {
        job_id,
        notices,
        quiet: plan.quiet,
        read: Box::new(move || match &watched {
            Some(job) => read_held(job),
            None => Ok(Held::Live(None)),
        }),
    };
    let (code, destroy_reason) = super::after_wait(
        end,
        &reporter,
        || machine_info(&client, &job),
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
    drop(csv_file);
    finish(job, plan, code, destroy_reason, &reporter)
}

/// One read of the held job's state, for its quota warning (see
/// [`super::quota_notice`]).
fn read_held(job: &Job) -> spalloc::Result<Held> {
    match job.status(false) {
        Ok(status) => Ok(match status.job_state() {
            state @ (JobState::Destroyed | JobState::Unknown) => Held::Gone(state, status.reason),
            _ => Held::Live(status.quota_warning.map(Into::into)),
        }),
        Err(spalloc::Error::JobDestroyed { reason, .. }) => {
            Ok(Held::Gone(JobState::Destroyed, reason))
        }
        Err(e) => Err(e),
    }
}

/// After a cancellation for "No suitable machines available.", says in
/// numbers why the request can never fit, as over legacy.
fn explain_impossible(client: &Client, plan: &Plan, job_id: u64, reporter: &Reporter) {
    let JobRequest::Create {
        allocation,
        options,
    } = &plan.request
    else {
        return;
    };
    if let Ok(machines) = crate::tools::machine::v2::list_machines(client) {
        reporter.line(
            &Style::RED,
            &format!(
                "Job {job_id}: {}.",
                super::impossible::explain(allocation, options, &machines)
            ),
        );
    }
}

/// Ends the run as the legacy tool does: the job is destroyed unless
/// `--no-destroy` (then it is left, and the way back to it printed) or the
/// server was lost; returns `code`.
fn finish(job: Job, plan: &Plan, code: i32, reason: Option<&str>, reporter: &Reporter) -> i32 {
    let job_id = job.id();
    let keepalive = job.keepalive().map(|k| k.as_secs_f64());
    let job_lives = ![EXIT_DESTROYED, EXIT_UNKNOWN, EXIT_SERVER_GONE].contains(&code);
    if !plan.no_destroy && code != EXIT_SERVER_GONE {
        // Like the legacy tool (and the reference): failures are ignored.
        let _ = job.destroy(reason);
    } else {
        job.close();
        if plan.no_destroy && job_lives {
            reporter.info(&format!("{}\n", still_exists(job_id, keepalive)));
        }
    }
    code
}

/// The client for the service, with the credentials found in the
/// environment and config files.
fn client(plan: &Plan, service: &V2Service, config: &Config) -> spalloc::Result<Client> {
    let credentials = Credentials::find(config, &service.url)?;
    Client::builder(service.url.clone())
        .credentials(credentials)
        .ca_cert_opt(service.ca_cert.clone())
        .timeout(plan.timeout.unwrap_or(Duration::from_secs(3600)))
        .build()
}

/// A failure to reach or use the service, in words that say what to do.
fn failure_message(error: &spalloc::Error) -> String {
    match error {
        spalloc::Error::Unauthorized { .. } => format!(
            "Could not log in: {error} (check SPALLOC_USER and SPALLOC_PASSWORD, or the token: `spalloc login` makes a new one)"
        ),
        spalloc::Error::Http { message, .. } => format!("Error from server: {message}"),
        e if e.is_communication_error() => format!("Could not connect to server: {e}"),
        e => e.to_string(),
    }
}

/// The v2 request for the legacy tool's options: the same forms, machine
/// or tags, dead boards, keepalive and boards to avoid (the legacy-only
/// options were refused when the plan was made).
pub fn create_request(
    allocation: &Allocation,
    options: &JobOptions,
    avoid: &[BoardSelector],
) -> CreateJob {
    let mut request = match *allocation {
        Allocation::OneBoard => CreateJob::one_board(),
        Allocation::Boards(n) => CreateJob::boards(n),
        Allocation::Triads { width, height } => CreateJob::dimensions(width, height),
        Allocation::Board { x, y, z } => CreateJob::board(BoardSelector::Triad { x, y, z }),
    };
    request = match (&options.machine, &options.tags) {
        (Some(machine), _) => request.machine(machine.clone()),
        (None, Some(tags)) => request.tags(tags.clone()),
        (None, None) => request,
    };
    if let Some(n) = options.max_dead_boards {
        request = request.max_dead_boards(n);
    }
    request
        .keepalive(keepalive_interval(options.keepalive.map(|k| k.as_f64())))
        .avoid_boards(avoid.iter().cloned())
}

/// The legacy keepalive as a v2 interval: v2 jobs always have one, so
/// "none" (-1) becomes the longest allocserv allows, and others are moved
/// into its range (30 to 300 s; this tool keeps the job alive at half the
/// interval whatever it is, so only an orphaned job notices).
fn keepalive_interval(seconds: Option<f64>) -> Duration {
    let (shortest, longest) = spalloc::v2::create::KEEPALIVE_RANGE;
    seconds
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(longest)
        .clamp(shortest, longest)
}

/// Creates the job, or takes over the resumed one; on failure the exit
/// status and the message, as the legacy tool gives them.
fn start_job(client: &Client, plan: &Plan) -> Result<Job, (i32, String)> {
    match &plan.request {
        JobRequest::Resume(job_id) => {
            // Keep the job alive at its own interval, as the legacy tool does.
            let interval = client
                .job(*job_id)
                .and_then(|j| j.status(false))
                .ok()
                .and_then(|s| s.original_request)
                .and_then(|r| {
                    r.get("keepalive-interval")
                        .and_then(|v| v.as_str().map(str::to_owned))
                })
                .and_then(|text| iso_seconds(&text))
                .unwrap_or(spalloc::v2::create::DEFAULT_KEEPALIVE.as_secs_f64());
            client
                .resume_job(*job_id, Some(keepalive_interval(Some(interval))))
                .map_err(|e| match e {
                    spalloc::Error::JobDestroyed { reason, .. } => (
                        1,
                        match reason {
                            Some(reason) => format!("Job {job_id}: Destroyed: {reason}"),
                            None => format!("Job {job_id}: Destroyed."),
                        },
                    ),
                    other => (EXIT_SERVER, failure_message(&other)),
                })
        }
        JobRequest::Create {
            allocation,
            options,
        } => {
            let avoiding = !plan.avoid_boards.is_empty();
            let job = client
                .create_job(&create_request(allocation, options, &plan.avoid_boards))
                .map_err(|e| match e {
                    spalloc::Error::Http { message, .. }
                        if avoiding && refuses_avoid_boards(&message) =>
                    {
                        (EXIT_SERVER, super::capitalised(super::avoid::UNSUPPORTED))
                    }
                    other => (EXIT_SERVER, failure_message(&other)),
                })?;
            if avoiding && dropped_avoid_boards(&job) {
                let _ = job.destroy(Some("avoid-boards is not supported"));
                return Err((EXIT_SERVER, super::capitalised(super::avoid::UNSUPPORTED)));
            }
            Ok(job)
        }
    }
}

/// Whether a refused create says the server does not know `avoid-boards`
/// (a strict JSON reader's "unknown field").
fn refuses_avoid_boards(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("avoid-boards")
        && ["unknown", "unexpected", "unrecognized"]
            .iter()
            .any(|word| lower.contains(word))
}

/// Whether the server stored the request without its `avoid-boards`, as
/// allocserv does with fields it does not know (it echoes the request it
/// parsed): then it cannot honour them. A server that echoes no request
/// at all gets the benefit of the doubt.
fn dropped_avoid_boards(job: &Job) -> bool {
    let stored = job.status(false).ok().and_then(|s| s.original_request);
    stored.is_some_and(|request| request.get("avoid-boards").is_none())
}

/// `PT60S` (or `PT1.5S`) as seconds.
fn iso_seconds(text: &str) -> Option<f64> {
    text.strip_prefix("PT")?.strip_suffix('S')?.parse().ok()
}

/// The allocation as the legacy `get_job_machine_info` record: width and
/// height in chips, the Ethernet connections and the machine.
fn machine_info(client: &Client, job: &Job) -> spalloc::Result<JobMachineInfo> {
    let Some(allocated): Option<SubMachine> = job.sub_machine()? else {
        return Err(spalloc::Error::ProtocolError(format!(
            "job {} is ready but has no boards",
            job.id()
        )));
    };
    // The machine's size matters only for a job of several boards (does it
    // wrap around?): one board is 8×8 chips, with no request.
    let machine = match allocated.boards.len() {
        1 => None,
        _ => client.machine(&allocated.machine_name, false).ok(),
    };
    let (width, height) = allocated.chip_size(machine.as_ref());
    Ok(JobMachineInfo {
        width: Some(width),
        height: Some(height),
        connections: Some(
            allocated
                .connections
                .iter()
                .map(|(chip, ip)| Connection(*chip, ip.clone()))
                .collect(),
        ),
        machine_name: Some(allocated.machine_name.clone()),
        boards: Some(allocated.boards.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spalloc::WireNumber;

    #[test]
    fn the_legacy_forms_become_their_v2_requests() {
        let mut options = JobOptions::new("me");
        options.tags = Some(vec!["default".into()]);
        options.keepalive = Some(WireNumber::Int(45));
        assert_eq!(keepalive_interval(Some(5.0)), Duration::from_secs(30));
        options.max_dead_boards = Some(1);
        let json = create_request(&Allocation::Boards(3), &options, &[]).to_json();
        assert_eq!(json["num-boards"], 3);
        assert_eq!(json["tags"], serde_json::json!(["default"]));
        assert_eq!(json["max-dead-boards"], 1);
        assert_eq!(json["keepalive-interval"], "PT45S");
        options.machine = Some("m1".into());
        options.tags = None;
        options.keepalive = None;
        let json = create_request(&Allocation::Board { x: 1, y: 0, z: 2 }, &options, &[]).to_json();
        assert_eq!(json["board"], serde_json::json!({"x": 1, "y": 0, "z": 2}));
        assert_eq!(json["machine-name"], "m1");
        assert_eq!(json["keepalive-interval"], "PT300S");
        let json = create_request(
            &Allocation::Triads {
                width: 2,
                height: 1,
            },
            &options,
            &[BoardSelector::Physical {
                cabinet: 0,
                frame: 0,
                board: 4,
            }],
        )
        .to_json();
        assert_eq!(
            json["dimensions"],
            serde_json::json!({"width": 2, "height": 1})
        );
        assert_eq!(
            json["avoid-boards"],
            serde_json::json!([{"cabinet": 0, "frame": 0, "board": 4}])
        );
    }

    #[test]
    fn a_refusal_naming_avoid_boards_as_unknown_means_no_avoid_lists() {
        assert!(refuses_avoid_boards(
            "unknown field `avoid-boards`, expected one of `owner`, `group`"
        ));
        assert!(!refuses_avoid_boards(
            "avoid-boards: no such board on any machine matching the request"
        ));
        assert!(!refuses_avoid_boards("unknown field `colour`"));
    }

    #[test]
    fn iso_durations_read_as_seconds() {
        assert_eq!(iso_seconds("PT60S"), Some(60.0));
        assert_eq!(iso_seconds("PT1.5S"), Some(1.5));
        assert_eq!(iso_seconds("60"), None);
    }
}
