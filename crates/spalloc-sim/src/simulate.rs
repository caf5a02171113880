//! One run of a workload through the real controller, in simulated time.
//!
//! Events are submissions, job ends and (when boards are freed with a
//! delay) due frees, handled in time order. After each, every BMP request
//! the controller issued is completed at once, so a job placed is ready at
//! the same instant; its end is then scheduled `duration` later. The
//! controller's own decisions (which job goes where, and when) are the
//! only thing measured.

use crate::workload::SimJob;
use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::machine::Machine;
use spalloc_server::core::scheduler::Scheduler;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// What happened to one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobOutcome {
    /// The job as submitted.
    pub job: SimJob,
    /// When it got its boards (seconds); `None` if it never could (larger
    /// than the machine, or never placed).
    pub start: Option<f64>,
    /// Boards it was given (a rectangle of triads may hold more than asked).
    pub boards_given: u32,
    /// Seconds it spent at the head of the queue before starting.
    pub head_wait: f64,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The policy it ran under.
    pub scheduler: Scheduler,
    /// Live boards of the machine.
    pub live_boards: u32,
    /// Every job, in submission order.
    pub outcomes: Vec<JobOutcome>,
    /// Board-seconds of the boards given, while given.
    pub busy_board_seconds: f64,
    /// From the first submission to the last job's end.
    pub makespan: f64,
}

/// A time in the event heap: seconds as ordered bits (times are finite and
/// non-negative, whose IEEE bits order as the numbers do).
type Time = u64;

fn time(t: f64) -> Time {
    t.max(0.0).to_bits()
}

/// Runs `jobs` (sorted by submission) on `machine` under `scheduler`, with
/// `seconds_before_free` between a job's end and its boards' reuse.
pub fn run(
    machine: &Machine,
    scheduler: Scheduler,
    seconds_before_free: f64,
    jobs: &[SimJob],
) -> Run {
    let mut machine = machine.clone();
    machine.scheduler = scheduler;
    let live_boards = machine.width * machine.height * 3 - machine.dead_boards.len() as u32;
    let mut c = Controller::new(
        ControllerSettings {
            max_retired_jobs: 16,
            seconds_before_free,
        },
        vec![machine],
    );
    let mut sim = Sim {
        outcomes: jobs
            .iter()
            .map(|&job| JobOutcome {
                job,
                start: None,
                boards_given: 0,
                head_wait: 0.0,
            })
            .collect(),
        ids: BTreeMap::new(),
        queued: BTreeSet::new(),
        head: None,
        ends: BinaryHeap::new(),
        frees: BinaryHeap::new(),
        busy_board_seconds: 0.0,
        last_end: 0.0,
    };
    let mut next = 0;
    loop {
        let submit = jobs.get(next).map(|j| time(j.submit));
        let end = sim.ends.peek().map(|Reverse((t, _))| *t);
        let free = sim.frees.peek().map(|Reverse(t)| *t);
        let Some(now) = [submit, end, free].into_iter().flatten().min() else {
            break;
        };
        let t = f64::from_bits(now);
        if end == Some(now) {
            if let Some(Reverse((_, id))) = sim.ends.pop() {
                c.destroy_job(id, None, t);
                if seconds_before_free > 0.0 {
                    sim.frees.push(Reverse(time(t + seconds_before_free)));
                }
            }
        } else if free == Some(now) {
            sim.frees.pop();
            c.tick(t);
        } else {
            let index = next;
            next += 1;
            let id = c.create_job(spec(jobs[index].boards), None, t);
            sim.ids.insert(id, index);
            sim.queued.insert(id);
        }
        sim.settle(&mut c, t);
    }
    let first = jobs.first().map_or(0.0, |j| j.submit);
    Run {
        scheduler,
        live_boards,
        outcomes: sim.outcomes,
        busy_board_seconds: sim.busy_board_seconds,
        makespan: (sim.last_end - first).max(0.0),
    }
}

/// The `create_job` request for `boards` boards, parsed as the server
/// parses the wire request (so defaults such as `min_ratio` are the
/// server's): `create_job()` for one board, `create_job(n)` for more.
fn spec(boards: u32) -> spalloc_server::core::job::JobSpec {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("sim"));
    kwargs.insert("keepalive".into(), Value::Null);
    let args = if boards == 1 {
        Vec::new()
    } else {
        vec![json!(boards)]
    };
    // Positive board counts always parse.
    create_job::parse(args, kwargs).unwrap_or_else(|e| unreachable!("{e}"))
}

/// The run's bookkeeping beside the controller.
struct Sim {
    outcomes: Vec<JobOutcome>,
    /// Controller job ID → index in the workload.
    ids: BTreeMap<u64, usize>,
    /// Jobs waiting, by ID: the lowest is the head of the queue (one
    /// machine, so the queue is in creation order).
    queued: BTreeSet<u64>,
    /// The head of the queue and since when.
    head: Option<(u64, f64)>,
    /// Job ends: (time, job ID), earliest first.
    ends: BinaryHeap<Reverse<(Time, u64)>>,
    /// Due delayed frees, earliest first.
    frees: BinaryHeap<Reverse<Time>>,
    busy_board_seconds: f64,
    last_end: f64,
}

impl Sim {
    /// Completes every BMP request at once, starts the jobs that were
    /// placed and notes who is at the head of the queue.
    fn settle(&mut self, c: &mut Controller, t: f64) {
        loop {
            let requests = c.take_bmp_requests();
            if requests.is_empty() {
                break;
            }
            for r in requests {
                if r.power && self.queued.remove(&r.job_id) {
                    self.start(c, r.job_id, t);
                }
                c.bmp_request_done(r.id, Ok(()), t);
            }
        }
        // Jobs the controller cancelled (too big for the machine) leave
        // the queue without starting.
        while let Some(&first) = self.queued.first() {
            if c.get_job_state(first, None, t).state == JobState::Queued {
                break;
            }
            self.queued.remove(&first);
        }
        let head = self.queued.first().copied();
        if self.head.map(|(id, _)| id) != head {
            self.head = head.map(|id| (id, t));
        }
        c.take_changes();
    }

    fn start(&mut self, c: &mut Controller, id: u64, t: f64) {
        let Some(&index) = self.ids.get(&id) else {
            return;
        };
        // Also a keepalive, which changes nothing: jobs never expire here.
        let boards = c
            .get_job_machine_info(id, None, t)
            .boards
            .map_or(0, |b| b.len() as u32);
        let outcome = &mut self.outcomes[index];
        outcome.start = Some(t);
        outcome.boards_given = boards;
        if let Some((head, since)) = self.head {
            if head == id {
                outcome.head_wait = t - since;
            }
        }
        let end = t + outcome.job.duration;
        self.busy_board_seconds += f64::from(boards) * outcome.job.duration;
        self.last_end = self.last_end.max(end);
        self.ends.push(Reverse((time(end), id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;
    use crate::workload;
    use spalloc_server::ServerConfig;

    fn machine() -> Machine {
        let config = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"m\"\nwidth = 4\nheight = 2\nbase_ip = \"10.0.0.0\"\n",
        )
        .unwrap();
        config.machines[0].machine.clone()
    }

    #[test]
    fn fifo_starts_jobs_in_submission_order_and_backfill_never_starves_the_head() {
        let jobs = workload::seeded(3, 400, 24, 0.9);
        let longest = jobs.iter().map(|j| j.duration).fold(0.0, f64::max);
        for scheduler in [Scheduler::Fifo, Scheduler::Backfill] {
            let run = run(&machine(), scheduler, 0.0, &jobs);
            let starts: Vec<f64> = run.outcomes.iter().map(|o| o.start.unwrap()).collect();
            for o in &run.outcomes {
                assert!(o.start.unwrap() >= o.job.submit, "{scheduler}: {o:?}");
                assert!(o.boards_given >= o.job.boards, "{scheduler}: {o:?}");
                // Everything in the head's way started before it became
                // the head, so it ends within one job's longest run.
                assert!(o.head_wait <= longest, "{scheduler}: {o:?}");
            }
            let summary = Summary::of(&run);
            assert!(summary.utilisation > 0.0 && summary.utilisation <= 100.0);
            assert_eq!(summary.never_started, 0);
            if scheduler == Scheduler::Fifo {
                assert!(starts.windows(2).all(|w| w[0] <= w[1]), "FIFO overtook");
            } else {
                assert!(
                    starts.windows(2).any(|w| w[0] > w[1]),
                    "nothing was backfilled"
                );
            }
        }
    }

    #[test]
    fn a_job_larger_than_the_machine_never_starts_and_the_rest_still_run() {
        let jobs = [
            SimJob {
                submit: 0.0,
                boards: 25,
                duration: 10.0,
            },
            SimJob {
                submit: 1.0,
                boards: 1,
                duration: 10.0,
            },
        ];
        let run = run(&machine(), Scheduler::Backfill, 0.0, &jobs);
        assert_eq!(run.outcomes[0].start, None);
        assert_eq!(run.outcomes[1].start, Some(1.0));
        assert_eq!(run.makespan, 11.0);
        assert_eq!(run.busy_board_seconds, 10.0);
    }
}
