//! `spalloc-job` over the v2 protocol: the job made into the legacy
//! records ([`Looked`]) so that the layout and `--json` are the same over
//! both protocols; the actions through the v2 job; and `--report-issue`,
//! which only v2 servers take.

use super::{JobArgs, Looked};
use crate::ethernet_csv::render_ethernet_csv;
use crate::failure::Failure;
use crate::output::{print_json, print_line, write_stdout};
use crate::terminal::Terminal;
use crate::tools::alloc::messages::QueueNote;
use spalloc::v2::{BoardSelector, Client, ReportedBoard};
use spalloc::{Connection, JobMachineInfo, JobState, JobStateRecord};
use std::time::{Duration, Instant};

/// How long `--power-on`/`--power-off` wait for the boards.
const POWER_WAIT: Duration = Duration::from_secs(300);

/// Runs `spalloc-job` against a v2 service.
pub fn run(client: &Client, args: &JobArgs) -> Result<(), Failure> {
    let Some(job_id) = args.job_id else {
        return Err(Failure::new(2, "over the v2 protocol, give the job ID"));
    };
    if args.watch {
        return watch(client, job_id, args.json);
    }
    let job = client.job(job_id)?;
    if let Some(issue) = &args.report_issue {
        let boards: Vec<ReportedBoard> = match args.board.as_deref() {
            Some([x, y, z]) => vec![ReportedBoard::Board(BoardSelector::Triad {
                x: *x,
                y: *y,
                z: *z,
            })],
            _ => Vec::new(),
        };
        let action = job.report_issue(issue, &boards)?;
        return print_line(&format!("Job {job_id}: {action}"));
    }
    if args.power_on || args.power_off {
        job.set_power(args.power_on)?;
        let deadline = Instant::now() + POWER_WAIT;
        loop {
            match job.state()? {
                JobState::Ready => break,
                JobState::Destroyed | JobState::Unknown => {
                    return Err(Failure::new(
                        1,
                        format!("Job {job_id} was destroyed while its power changed"),
                    ))
                }
                JobState::Queued | JobState::Power if Instant::now() < deadline => {
                    let _ = job.status(true);
                }
                _ => return Err(Failure::new(1, "the boards did not change power in time")),
            }
        }
    } else if args.ethernet_ips {
        let Some(machine) = job.sub_machine()? else {
            return Err(Failure::new(
                9,
                format!("Job {job_id} is queued or does not exist"),
            ));
        };
        if !args.json {
            let connections: Vec<Connection> = machine
                .connections
                .iter()
                .map(|(chip, ip)| Connection(*chip, ip.clone()))
                .collect();
            return write_stdout(&render_ethernet_csv(&connections));
        }
    } else if let Some(reason) = &args.destroy {
        let reason = reason.clone().filter(|r| !r.is_empty());
        job.destroy(reason.as_deref())?;
    } else {
        let looked = look_up(client, job_id)?;
        if args.json {
            print_json(&looked.to_json())?;
        } else {
            print_line(&looked.render(&Terminal::stdout()))?;
        }
        return looked.known();
    }
    if args.json {
        print_json(&look_up(client, job_id)?.to_json())?;
    }
    Ok(())
}

/// Shows the job at every change (long-polling its state) until it is
/// destroyed (exit 0, after showing its reason), found unknown (exit 10)
/// or Ctrl-C (exit 0), as over the legacy protocol.
fn watch(client: &Client, job_id: u64, json: bool) -> Result<(), Failure> {
    let terminal = Terminal::stdout();
    let handle = client.clone();
    // Checked once, so that a bad ID is an error before the first poll.
    client.job(job_id)?;
    let mut outcome = Ok(());
    crate::v2_watch::Watch {
        json,
        terminal: &terminal,
    }
    .run(
        || look_up(client, job_id),
        |looked| {
            if json {
                print_json(&looked.to_json())?;
            } else {
                print_line(&looked.render(&terminal))?;
            }
            if looked.is_gone() {
                outcome = looked.known();
                return Ok(false);
            }
            Ok(true)
        },
        std::sync::Arc::new(move || match handle.job(job_id)?.status(true) {
            // Gone: the next read shows it so.
            Ok(_) | Err(spalloc::Error::JobDestroyed { .. }) => Ok(()),
            Err(e) => Err(e),
        }),
    )?;
    outcome
}

/// The job as the legacy tool sees it.
pub fn look_up(client: &Client, job_id: u64) -> Result<Looked, Failure> {
    let job = client.job(job_id)?;
    let status = match job.status(false) {
        Ok(s) => s,
        Err(spalloc::Error::JobDestroyed { .. }) => {
            return Ok(Looked {
                job_id,
                listing: None,
                machine_info: None,
                state: Some(JobStateRecord::unknown()),
                queue: QueueNote::default(),
                quota_warning: None,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let live = !matches!(status.job_state(), JobState::Destroyed | JobState::Unknown);
    if !live {
        let mut state = JobStateRecord::unknown();
        state.state = status.job_state();
        state.reason = status.reason.clone();
        return Ok(Looked {
            job_id,
            listing: None,
            machine_info: None,
            state: Some(state),
            queue: QueueNote::default(),
            quota_warning: None,
        });
    }
    let allocated = job.sub_machine()?;
    let power = match allocated {
        Some(_) => job.power()?,
        None => None,
    };
    let machines = client.machines()?;
    let machine_info = match &allocated {
        Some(m) => {
            let (width, height) = m.chip_size(machines.iter().find(|x| x.name == m.machine_name));
            JobMachineInfo {
                width: Some(width),
                height: Some(height),
                connections: Some(
                    m.connections
                        .iter()
                        .map(|(chip, ip)| Connection(*chip, ip.clone()))
                        .collect(),
                ),
                machine_name: Some(m.machine_name.clone()),
                boards: Some(m.boards.clone()),
            }
        }
        None => JobMachineInfo {
            width: None,
            height: None,
            connections: None,
            machine_name: None,
            boards: None,
        },
    };
    let listing = crate::tools::ps::v2::listing(job_id, &status, allocated, power);
    Ok(Looked {
        job_id,
        listing: Some(listing),
        machine_info: Some(machine_info),
        state: None,
        queue: QueueNote::default(),
        quota_warning: quota_warning(client, job_id),
    })
}

/// The `quota-warning` this project's server adds to a running job's state
/// while its group is about to run out of quota (other servers send none,
/// and a failure to read it only loses the warning).
fn quota_warning(client: &Client, job_id: u64) -> Option<String> {
    let status = client.job(job_id).and_then(|job| job.status(false)).ok()?;
    status.quota_warning.map(|w| w.message)
}

/// `--report-issue` over the legacy protocol.
pub fn legacy_report_issue() -> Failure {
    Failure::new(
        2,
        "--report-issue needs a v2 server (give --url): the legacy protocol has no issue reports",
    )
}
