//! Fair scheduling in the sans-I/O core: queue reasons (every kind), the
//! backfill policy's reservations, and FIFO's decisions unchanged.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::allocator::{AllocRequest, Allocator};
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::job::{JobSpec, Target};
use spalloc_server::core::job_queue::{JobQueue, Placed};
use spalloc_server::core::machine::Machine;
use spalloc_server::core::queue_status::WaitReason;
use spalloc_server::ServerConfig;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Machines `(name, width, height, scheduler, tags)` in priority order.
fn machines(list: &[(&str, u32, u32, &str, &str)]) -> Vec<Machine> {
    let mut toml = String::new();
    for (i, (name, w, h, scheduler, tags)) in list.iter().enumerate() {
        toml += &format!(
            "[[machine]]\nname = \"{name}\"\nwidth = {w}\nheight = {h}\n\
             base_ip = \"10.{i}.0.0\"\nscheduler = \"{scheduler}\"\ntags = [{tags}]\n"
        );
    }
    ServerConfig::from_toml_str(&toml)
        .unwrap()
        .machines
        .into_iter()
        .map(|m| m.machine)
        .collect()
}

fn controller(list: &[(&str, u32, u32, &str, &str)]) -> Controller {
    Controller::new(
        ControllerSettings {
            max_retired_jobs: 100,
            seconds_before_free: 0.0,
        },
        machines(list),
    )
}

fn spec(args: Value) -> JobSpec {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("keepalive".into(), Value::Null);
    create_job::parse(args.as_array().cloned().unwrap_or_default(), kwargs).unwrap()
}

/// Completes every outstanding BMP request successfully.
fn complete_bmp(c: &mut Controller, now: f64) {
    loop {
        let requests = c.take_bmp_requests();
        if requests.is_empty() {
            return;
        }
        for r in requests {
            c.bmp_request_done(r.id, Ok(()), now);
        }
    }
}

fn create(c: &mut Controller, args: Value, now: f64) -> u64 {
    let id = c.create_job(spec(args), None, now);
    complete_bmp(c, now);
    id
}

fn destroy(c: &mut Controller, id: u64, now: f64) {
    c.destroy_job(id, None, now);
    complete_bmp(c, now);
}

fn is_queued(c: &mut Controller, id: u64) -> bool {
    c.get_job_state(id, None, 0.0).state == JobState::Queued
}

/// A 4×2-triad machine made full as: job 1 and job 2 in the two 1×1
/// triads of the left column, job 3 in the 3×2 triads to the right.
fn full_4x2(scheduler: &str) -> Controller {
    let mut c = controller(&[("m", 4, 2, scheduler, "\"default\"")]);
    for args in [json!([1, 1]), json!([1, 1]), json!([3, 2])] {
        create(&mut c, args, 1.0);
    }
    c
}

#[test]
fn a_head_job_waits_for_free_boards_and_the_job_behind_it_names_it_on_a_fifo_machine() {
    let mut c = full_4x2("fifo");
    destroy(&mut c, 1, 2.0);
    let big = create(&mut c, json!([2, 2]), 10.0);
    let small = create(&mut c, json!([]), 11.0);
    let head = c.queue_status(big).unwrap();
    assert_eq!(head.position, 1);
    assert_eq!(head.queued_at, 10.0);
    assert_eq!(
        head.reason.to_string(),
        "waiting for 12 free boards on m; 21 of 24 in use"
    );
    let behind = c.queue_status(small).unwrap();
    assert_eq!(behind.position, 2);
    assert_eq!(behind.queued_at, 11.0);
    assert_eq!(
        behind.reason,
        WaitReason::Behind {
            machine: "m".into(),
            head: big
        }
    );
    assert_eq!(
        behind.reason.to_string(),
        format!("behind job {big} at the head of the queue on m")
    );
    // Allocated and unknown jobs have no queue status.
    assert_eq!(c.queue_status(2), None);
    assert_eq!(c.queue_status(999), None);
}

#[test]
fn a_backfilling_machine_starts_a_small_job_outside_the_heads_reservation_at_once() {
    let mut c = full_4x2("backfill");
    destroy(&mut c, 1, 2.0);
    let big = create(&mut c, json!([2, 2]), 10.0);
    let small = create(&mut c, json!([]), 11.0);
    assert!(is_queued(&mut c, big));
    assert!(
        !is_queued(&mut c, small),
        "the single board went into the freed triad"
    );
    c.check_board_ownership().unwrap();
    // The single board opened a shared triad: two more fit in it.
    for _ in 0..2 {
        let filler = create(&mut c, json!([]), 11.5);
        assert!(!is_queued(&mut c, filler));
    }
    // The head holds the 3×2 region of job 3, the only one it fits in; job
    // 2 ending does not start it, but lets a single board in.
    let next = create(&mut c, json!([]), 12.0);
    assert_eq!(
        c.queue_status(next).unwrap().reason.to_string(),
        format!(
            "waiting for 1 free board on m outside those reserved for job {big} \
             at the head of the queue; 24 of 24 in use"
        )
    );
    destroy(&mut c, 2, 13.0);
    assert!(is_queued(&mut c, big));
    assert!(!is_queued(&mut c, next), "backfilled into job 2's triad");
    destroy(&mut c, 3, 14.0);
    assert!(!is_queued(&mut c, big), "its reservation came free");
    c.check_board_ownership().unwrap();
}

#[test]
fn a_job_queued_on_two_machines_is_reported_where_it_is_nearest_the_front() {
    let mut c = controller(&[
        ("a", 1, 1, "fifo", "\"default\""),
        ("b", 1, 1, "fifo", "\"default\""),
    ]);
    create(&mut c, json!([1, 1]), 1.0);
    create(&mut c, json!([1, 1]), 1.0);
    let mut only_a = spec(json!([1, 1]));
    only_a.target = Target::Machine("a".into());
    let on_a = c.create_job(only_a, None, 2.0);
    let anywhere = create(&mut c, json!([1, 1]), 3.0);
    assert_eq!(c.queue_status(on_a).unwrap().position, 1);
    // Second on a, but at the head on b.
    let status = c.queue_status(anywhere).unwrap();
    assert_eq!(status.position, 1);
    assert_eq!(
        status.reason.to_string(),
        "waiting for 3 free boards on b; 3 of 3 in use"
    );
}

/// A queue of one full 1×1-triad machine (so that nothing more fits).
fn busy_queue() -> JobQueue {
    let m = Arc::new(machines(&[("m", 1, 1, "fifo", "\"default\"")]).remove(0));
    let mut q = JobQueue::new(vec![m], 0.0);
    let s = spec(json!([1, 1]));
    assert_eq!(
        q.enqueue(1, s.target, s.request, 0.0).map(|p| p.len()),
        Some(1)
    );
    q
}

#[test]
fn a_job_in_no_queue_is_reported_as_one_no_machine_could_hold() {
    let mut q = busy_queue();
    let s = spec(json!([]));
    assert_eq!(q.enqueue(2, s.target, s.request, 0.0), Some(vec![]));
    assert!(matches!(
        q.wait_reason(2),
        Some((1, WaitReason::Boards { .. }))
    ));
    // Closing the machine (the first step of removing it) empties its queue.
    q.close_machine("m");
    let (position, reason) = q.wait_reason(2).unwrap();
    assert_eq!(position, 0);
    assert_eq!(
        reason.to_string(),
        "no machine with the requested tags could ever hold it"
    );
}

#[test]
fn a_head_job_its_machine_can_no_longer_hold_is_reported_out_of_service() {
    let mut q = busy_queue();
    let s = spec(json!([1, 1]));
    q.enqueue(2, s.target, s.request, 0.0);
    // Every board dead, and the queues not (yet) regenerated.
    let mut m = q.machine("m").unwrap().as_ref().clone();
    m.dead_boards = (0..3)
        .map(|z| spalloc_server::core::coordinates::Board::new(0, 0, z))
        .collect();
    assert!(q.modify_machine(Arc::new(m)));
    let (position, reason) = q.wait_reason(2).unwrap();
    assert_eq!(position, 1);
    assert_eq!(
        reason.to_string(),
        "machine m is out of service: too few of its boards are in service to hold it"
    );
}

#[test]
fn a_queued_job_on_a_machine_with_dead_boards_counts_only_live_ones() {
    let mut toml = String::from(
        "[[machine]]\nname = \"m\"\nwidth = 2\nheight = 1\nbase_ip = \"10.0.0.0\"\n\
         dead_boards = [[1, 0, 2]]\n",
    );
    toml += "scheduler = \"fifo\"\n";
    let config = ServerConfig::from_toml_str(&toml).unwrap();
    let mut c = Controller::new(
        ControllerSettings {
            max_retired_jobs: 10,
            seconds_before_free: 0.0,
        },
        config.machines.into_iter().map(|m| m.machine).collect(),
    );
    create(&mut c, json!([1, 1]), 1.0);
    let waiting = create(&mut c, json!([2, 1]), 2.0);
    assert_eq!(
        c.queue_status(waiting).unwrap().reason.to_string(),
        "waiting for 6 free boards on m; 3 of 5 in use"
    );
}

#[test]
fn an_unknown_scheduler_is_refused_with_the_valid_names() {
    let err = ServerConfig::from_toml_str(
        "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\nscheduler = \"lottery\"\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("scheduler must be \"fifo\" or \"backfill\", not \"lottery\""),
        "{err}"
    );
}

/// One step of a random workload.
#[derive(Debug, Clone)]
enum Op {
    Create(Value),
    Destroy(usize),
    /// A board `(x, y, z)` out of service (`false`) or back.
    Service(u32, u32, u32, bool),
}

fn shape() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(json!([])),
        2 => (1i64..10).prop_map(|n| json!([n])),
        2 => (1i64..4, 1i64..4).prop_map(|(w, h)| json!([w, h])),
        1 => (0i64..4, 0i64..4, 0i64..3).prop_map(|(x, y, z)| json!([x, y, z])),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => shape().prop_map(Op::Create),
        2 => any::<usize>().prop_map(Op::Destroy),
        1 => (0u32..4, 0u32..3, 0u32..3, any::<bool>())
            .prop_map(|(x, y, z, back)| Op::Service(x, y, z, back)),
    ]
}

/// Boards each allocated job holds on machine `m`.
fn holders(c: &Controller, m: &str) -> BTreeMap<u64, BTreeSet<(u32, u32)>> {
    c.live_jobs()
        .filter_map(|j| {
            let a = j.allocation.as_ref().filter(|a| a.machine == m)?;
            Some((j.id, a.boards.iter().map(|b| (b.x, b.y)).collect()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// With backfill, no board is ever in two jobs; a waiting head keeps its
    /// reservation, nobody new enters it, and it always still holds a board
    /// in use (a reservation that came free would have started the head).
    #[test]
    fn backfill_never_shares_a_board_nor_lets_a_later_job_into_the_heads_reservation(
        w in 1u32..5,
        h in 1u32..4,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut c = controller(&[("m", w, h, "backfill", "\"default\"")]);
        let mut now = 0.0;
        // The reservation in force and who held boards in it when it was made.
        let mut held: Option<((u64, spalloc_server::core::allocator::Reservation), BTreeSet<u64>)> = None;
        for op in ops {
            now += 1.0;
            match op {
                Op::Create(args) => {
                    create(&mut c, args, now);
                }
                Op::Destroy(i) => {
                    let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
                    if !ids.is_empty() {
                        destroy(&mut c, ids[i % ids.len()], now);
                    }
                }
                Op::Service(x, y, z, back) => {
                    let board = spalloc_server::core::coordinates::Board::new(x, y, z);
                    // Boards off the machine are refused; that is all.
                    if c.set_board_in_service("m", board, back, now).is_ok() {
                        complete_bmp(&mut c, now);
                        // The head chooses again when the boards change.
                        held = None;
                    }
                }
            }
            prop_assert!(c.check_board_ownership().is_ok(), "{:?}", c.check_board_ownership());
            let reservation = c.reservation("m");
            let inside: BTreeSet<u64> = match reservation {
                Some((_, r)) => holders(&c, "m")
                    .into_iter()
                    .filter(|(_, boards)| boards.iter().any(|&(x, y)| r.overlaps(x, y, 1, 1)))
                    .map(|(id, _)| id)
                    .collect(),
                None => BTreeSet::new(),
            };
            if let Some((head, r)) = reservation {
                prop_assert!(!inside.is_empty(), "job {head}'s reservation {r:?} is free");
                if let Some(((old_head, old_r), before)) = &held {
                    if *old_head == head {
                        prop_assert_eq!(*old_r, r, "the reservation moved");
                        prop_assert!(inside.is_subset(before), "{inside:?} entered {r:?}");
                    }
                }
                if held.as_ref().map_or(true, |((old_head, _), _)| *old_head != head) {
                    held = Some(((head, r), inside));
                } else if let Some((_, before)) = held.as_mut() {
                    *before = inside;
                }
            } else {
                held = None;
            }
        }
    }
}

/// The reference's strict FIFO, written out plainly as the oracle of the
/// FIFO policy: per machine in priority order, only the head is tried.
struct FifoOracle {
    machines: Vec<(Arc<Machine>, Allocator, VecDeque<u64>)>,
    pending: BTreeMap<u64, (Target, AllocRequest)>,
    allocated: BTreeMap<u64, (String, u64)>,
}

impl FifoOracle {
    fn new(machines: &[Arc<Machine>], delay: f64) -> FifoOracle {
        FifoOracle {
            machines: machines
                .iter()
                .map(|m| {
                    let a = Allocator::new(m.width, m.height, &m.dead_boards, &m.dead_links, delay);
                    (Arc::clone(m), a, VecDeque::new())
                })
                .collect(),
            pending: BTreeMap::new(),
            allocated: BTreeMap::new(),
        }
    }

    fn enqueue(
        &mut self,
        id: u64,
        target: Target,
        req: AllocRequest,
        now: f64,
    ) -> Option<Vec<Placed>> {
        let mut any = false;
        for (m, a, q) in &mut self.machines {
            let matches = match &target {
                Target::Machine(name) => m.name == *name,
                Target::Tags(tags) => tags.is_subset(&m.tags),
            };
            if matches && a.alloc_possible(&req) {
                q.push_back(id);
                any = true;
            }
        }
        if !any {
            return None;
        }
        self.pending.insert(id, (target, req));
        Some(self.process(now))
    }

    fn process(&mut self, now: f64) -> Vec<Placed> {
        let mut placed = Vec::new();
        loop {
            let mut changed = false;
            for (m, a, q) in &mut self.machines {
                while let Some(&head) = q.front() {
                    let Some((_, req)) = self.pending.get(&head) else {
                        q.pop_front();
                        continue;
                    };
                    if let Some(allocation) = a.alloc(req, now) {
                        q.pop_front();
                        self.pending.remove(&head);
                        self.allocated.insert(head, (m.name.clone(), allocation.id));
                        placed.push(Placed {
                            job_id: head,
                            machine: Arc::clone(m),
                            allocation,
                            at: now,
                        });
                        changed = true;
                    }
                    break;
                }
            }
            if !changed {
                return placed;
            }
        }
    }

    fn cancel(&mut self, id: u64, now: f64) -> Vec<Placed> {
        if self.pending.remove(&id).is_some() {
            self.process(now)
        } else {
            Vec::new()
        }
    }

    fn release(&mut self, id: u64, now: f64) -> Vec<Placed> {
        if let Some((name, allocation)) = self.allocated.remove(&id) {
            if let Some((_, a, _)) = self.machines.iter_mut().find(|(m, _, _)| m.name == name) {
                a.free(allocation, now);
            }
        }
        self.process(now)
    }

    fn check_free(&mut self, now: f64) -> Vec<Placed> {
        let mut any = false;
        for (_, a, _) in &mut self.machines {
            any |= a.check_free(now);
        }
        if any {
            self.process(now)
        } else {
            Vec::new()
        }
    }
}

#[derive(Debug, Clone)]
enum QueueOp {
    Enqueue(Value, bool),
    Cancel(usize),
    Release(usize),
    Advance(f64),
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        4 => (shape(), any::<bool>()).prop_map(|(s, special)| QueueOp::Enqueue(s, special)),
        1 => any::<usize>().prop_map(QueueOp::Cancel),
        2 => any::<usize>().prop_map(QueueOp::Release),
        1 => (0.0f64..8.0).prop_map(QueueOp::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// FIFO machines make exactly the reference's decisions: the same jobs
    /// placed, in the same order, with the same boards.
    #[test]
    fn fifo_places_exactly_what_strict_first_come_first_served_places(
        ops in proptest::collection::vec(queue_op(), 1..80),
    ) {
        let list: Vec<Arc<Machine>> = machines(&[
            ("a", 2, 2, "fifo", "\"default\""),
            ("b", 3, 1, "fifo", "\"default\", \"special\""),
        ])
        .into_iter()
        .map(Arc::new)
        .collect();
        let mut queue = JobQueue::new(list.clone(), 5.0);
        let mut oracle = FifoOracle::new(&list, 5.0);
        let mut now = 100.0;
        let mut next_id = 1;
        let mut pending: Vec<u64> = Vec::new();
        let mut allocated: Vec<u64> = Vec::new();
        for op in ops {
            let (got, want) = match op {
                QueueOp::Enqueue(args, special) => {
                    let mut s = spec(args);
                    if special {
                        s.target = Target::Tags(["special".to_owned()].into());
                    }
                    let id = next_id;
                    next_id += 1;
                    let got = queue.enqueue(id, s.target.clone(), s.request.clone(), now);
                    let want = oracle.enqueue(id, s.target, s.request, now);
                    prop_assert_eq!(&got, &want);
                    if got.is_some() {
                        pending.push(id);
                    }
                    (got.unwrap_or_default(), want.unwrap_or_default())
                }
                QueueOp::Cancel(i) if !pending.is_empty() => {
                    let id = pending.remove(i % pending.len());
                    (queue.cancel(id, now), oracle.cancel(id, now))
                }
                QueueOp::Release(i) if !allocated.is_empty() => {
                    let id = allocated.remove(i % allocated.len());
                    (queue.release(id, now), oracle.release(id, now))
                }
                QueueOp::Advance(dt) => {
                    now += dt;
                    (queue.check_free(now), oracle.check_free(now))
                }
                _ => (Vec::new(), Vec::new()),
            };
            prop_assert_eq!(&got, &want);
            for p in got {
                pending.retain(|&id| id != p.job_id);
                allocated.push(p.job_id);
            }
        }
    }
}

#[test]
fn a_job_that_needs_a_board_out_of_service_stays_queued_and_starts_when_it_returns() {
    use spalloc_server::core::coordinates::Board;
    for scheduler in ["fifo", "backfill"] {
        let mut c = controller(&[("m", 2, 1, scheduler, "\"default\"")]);
        c.set_board_in_service("m", Board::new(1, 0, 1), false, 1.0)
            .unwrap();
        // The whole machine with no dead board tolerated: impossible while
        // the board is out, but not cancelled.
        let mut whole = spec(json!([2, 1]));
        whole.request.max_dead_boards = Some(0);
        let waiting = c.create_job(whole, None, 2.0);
        complete_bmp(&mut c, 2.0);
        let status = c.queue_status(waiting).unwrap();
        assert_eq!(status.position, 1, "{scheduler}");
        assert_eq!(
            status.reason.to_string(),
            "machine m is out of service: too few of its boards are in service to hold it"
        );
        // Behind it, a single board still runs on a backfilling machine
        // (the head cannot run, so nothing is held for it), not on FIFO.
        let single = create(&mut c, json!([]), 3.0);
        assert_eq!(
            is_queued(&mut c, single),
            scheduler == "fifo",
            "{scheduler}"
        );
        if scheduler == "backfill" {
            destroy(&mut c, single, 4.0);
        }
        c.set_board_in_service("m", Board::new(1, 0, 1), true, 5.0)
            .unwrap();
        complete_bmp(&mut c, 5.0);
        assert!(!is_queued(&mut c, waiting), "{scheduler}");
        assert!(c.boards_out_of_service("m").unwrap().is_empty());
        c.check_board_ownership().unwrap();
        assert!(c
            .set_board_in_service("nope", Board::new(0, 0, 0), false, 6.0)
            .is_err());
    }
}

#[test]
fn a_head_that_wants_a_board_out_of_service_holds_no_reservation_on_a_backfilling_machine() {
    use spalloc_server::core::coordinates::Board;
    let mut c = controller(&[("m", 4, 1, "backfill", "\"default\"")]);
    c.set_board_in_service("m", Board::new(2, 0, 0), false, 0.0)
        .unwrap();
    let head = create(&mut c, json!([2, 0, 0]), 1.0);
    assert!(is_queued(&mut c, head));
    assert_eq!(c.reservation("m"), None);
    let other = create(&mut c, json!([]), 2.0);
    assert!(!is_queued(&mut c, other));
}

#[test]
fn a_restored_controller_takes_each_machines_scheduler_from_the_configuration() {
    use spalloc_server::core::scheduler::Scheduler;
    let mut c = full_4x2("backfill");
    destroy(&mut c, 1, 2.0);
    let big = create(&mut c, json!([2, 2]), 3.0);
    let settings = c.settings();
    let restored = Controller::from_records(
        settings,
        c.records(),
        machines(&[("m", 4, 2, "backfill", "\"default\"")]),
        4.0,
    );
    let scheduler: Vec<Scheduler> = restored.machines().map(|m| m.scheduler).collect();
    assert_eq!(scheduler, [Scheduler::Backfill]);
    restored.check_board_ownership().unwrap();
    assert_eq!(restored.queue_status(big).unwrap().position, 1);
    assert!(restored.reservation("m").is_some(), "the head chose again");
}
