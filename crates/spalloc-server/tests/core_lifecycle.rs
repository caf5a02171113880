//! The sans-I/O core driven directly: no sockets, no sleeps, time passed in.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::job::JobSpec;
use spalloc_server::ServerConfig;

fn machine_config(width: u32, height: u32, dead: &[(u32, u32, u32)]) -> ServerConfig {
    let dead: Vec<String> = dead
        .iter()
        .map(|(x, y, z)| format!("[{x},{y},{z}]"))
        .collect();
    ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"m\"\nwidth = {width}\nheight = {height}\nbase_ip = \"10.0.0.0\"\ndead_boards = [{}]\n",
        dead.join(",")
    ))
    .unwrap()
}

fn controller(config: &ServerConfig, seconds_before_free: f64) -> Controller {
    Controller::new(
        ControllerSettings {
            max_retired_jobs: 100,
            seconds_before_free,
        },
        config.machines.iter().map(|m| m.machine.clone()).collect(),
    )
}

fn spec(args: Value, extra: Value) -> JobSpec {
    let mut kwargs: Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    kwargs.insert("owner".into(), json!("me"));
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

#[test]
fn a_job_is_ready_when_its_bmp_requests_complete_and_released_after_power_off() {
    let config = machine_config(2, 1, &[]);
    let mut c = controller(&config, 10.0);
    let id = c.create_job(spec(json!([]), json!({})), None, 100.0);
    assert_eq!(c.get_job_state(id, None, 100.0).state, JobState::Power);
    let requests = c.take_bmp_requests();
    assert_eq!(requests.len(), 1, "one BMP");
    assert!(requests[0].power);
    assert_eq!(requests[0].boards, vec![0]);
    assert_eq!(
        requests[0].links.len(),
        6,
        "all six links of a lone board are isolated"
    );
    assert!(requests[0].links.iter().all(|(_, _, enable)| !enable));
    c.bmp_request_done(requests[0].id, Ok(()), 101.0);
    assert_eq!(c.get_job_state(id, None, 101.0).state, JobState::Ready);
    let changes = c.take_changes();
    assert!(changes.jobs.contains(&id));
    assert!(changes.machines.contains("m"));

    c.destroy_job(id, Some("done".into()), 102.0);
    let off = c.take_bmp_requests();
    assert_eq!(off.len(), 1);
    assert!(!off[0].power && off[0].links.is_empty());
    // The whole machine is not available until the power-off is done and
    // seconds_before_free has passed.
    let whole = c.create_job(spec(json!([2, 1]), json!({})), None, 102.0);
    assert_eq!(c.get_job_state(whole, None, 102.0).state, JobState::Queued);
    c.bmp_request_done(off[0].id, Ok(()), 103.0);
    c.tick(112.0);
    assert_eq!(c.get_job_state(whole, None, 112.0).state, JobState::Queued);
    c.tick(113.5);
    assert_eq!(c.get_job_state(whole, None, 113.5).state, JobState::Power);
}

#[test]
fn bmp_commands_follow_the_reference_order() {
    // The order the reference kit's fake BMP logs for the same allocations
    // (Python set order of the boards and links): scripts/compare-bmp-traffic.sh.
    use spalloc_protocol::Link::*;
    let config = machine_config(2, 1, &[]);
    let mut c = controller(&config, 0.0);
    let one = c.create_job(spec(json!([]), json!({})), None, 0.0);
    let requests = c.take_bmp_requests();
    let links: Vec<_> = requests[0].links.iter().map(|(_, l, _)| *l).collect();
    assert_eq!(links, [NorthEast, SouthWest, West, East, North, South]);
    c.bmp_request_done(requests[0].id, Ok(()), 0.0);
    c.destroy_job(one, None, 0.0);
    complete_bmp(&mut c, 0.0);
    c.tick(1.0);
    c.create_job(spec(json!([2, 1]), json!({})), None, 1.0);
    let requests = c.take_bmp_requests();
    assert_eq!(requests[0].boards, vec![4, 0, 3, 2, 5, 1]);
    assert!(requests[0].links.is_empty());
}

#[test]
fn head_of_line_blocking_is_per_machine_fifo() {
    let config = machine_config(2, 1, &[]);
    let mut c = controller(&config, 0.0);
    let a = c.create_job(spec(json!([1, 0, 0]), json!({})), None, 0.0);
    let big = c.create_job(spec(json!([2, 1]), json!({})), None, 0.0);
    let small = c.create_job(spec(json!([1]), json!({})), None, 0.0);
    complete_bmp(&mut c, 0.0);
    assert_eq!(c.get_job_state(a, None, 0.0).state, JobState::Ready);
    assert_eq!(c.get_job_state(big, None, 0.0).state, JobState::Queued);
    // The small job would fit but waits behind the big one (reference behaviour).
    assert_eq!(c.get_job_state(small, None, 0.0).state, JobState::Queued);
    assert_eq!(c.queue_position(small), Some(1));
}

#[test]
fn cancelling_the_head_of_a_queue_lets_the_jobs_behind_it_run() {
    let config = machine_config(2, 1, &[]);
    let mut c = controller(&config, 0.0);
    let half = c.create_job(spec(json!([1, 1]), json!({})), None, 0.0);
    let blocked = c.create_job(spec(json!([2, 1]), json!({})), None, 0.0);
    let single = c.create_job(spec(json!([]), json!({})), None, 0.0);
    complete_bmp(&mut c, 0.0);
    assert_eq!(c.get_job_state(half, None, 0.0).state, JobState::Ready);
    assert_eq!(c.get_job_state(single, None, 0.0).state, JobState::Queued);
    c.destroy_job(blocked, None, 0.0);
    assert_eq!(c.get_job_state(single, None, 0.0).state, JobState::Power);
}

#[test]
fn failing_bmp_destroys_the_job_and_still_frees_its_boards() {
    let config = machine_config(1, 1, &[]);
    let mut c = controller(&config, 0.0);
    let id = c.create_job(spec(json!([1, 1]), json!({})), None, 0.0);
    let on = c.take_bmp_requests();
    c.bmp_request_done(on[0].id, Err("10.0.0.0".into()), 1.0);
    let s = c.get_job_state(id, None, 1.0);
    assert_eq!(s.state, JobState::Destroyed);
    assert_eq!(
        s.reason.as_deref(),
        Some("Machine configuration failed. Error: Requests failed on BMP 10.0.0.0")
    );
    complete_bmp(&mut c, 2.0);
    c.tick(3.0);
    assert!(c.is_idle());
}

#[test]
fn where_is_reports_the_owning_job_chip() {
    let config = machine_config(2, 1, &[]);
    let mut c = controller(&config, 0.0);
    let id = c.create_job(spec(json!([1, 1]), json!({})), None, 0.0);
    use spalloc_server::core::where_is::WhereIsQuery;
    let r = c
        .where_is(&WhereIsQuery::JobChip {
            job_id: id,
            x: 13,
            y: 5,
        })
        .expect("chip (13, 5) is on a 1x1-triad job");
    assert_eq!(r.logical, [0, 0, 1]);
    assert_eq!(r.board_chip, [5, 1]);
    assert_eq!(r.job_chip, Some([13, 5]));
}

#[derive(Debug, Clone)]
enum Op {
    Create(Vec<i64>, Option<u32>),
    Destroy(usize),
    CompleteBmp(usize, bool),
    Advance(f64),
    Keepalive(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop_oneof![
            Just(vec![]),
            (1i64..8).prop_map(|n| vec![n]),
            (1i64..4, 1i64..3).prop_map(|(w, h)| vec![w, h]),
            (0i64..3, 0i64..2, 0i64..3).prop_map(|(x, y, z)| vec![x, y, z]),
        ], proptest::option::of(0u32..3)).prop_map(|(a, d)| Op::Create(a, d)),
        2 => (0usize..64).prop_map(Op::Destroy),
        3 => (0usize..64, proptest::bool::weighted(0.9)).prop_map(|(i, ok)| Op::CompleteBmp(i, ok)),
        1 => (0.0f64..3.0).prop_map(Op::Advance),
        1 => (0usize..64).prop_map(Op::Keepalive),
    ]
}

/// No board in two jobs (the controller's own check).
fn check_no_board_twice(c: &Controller) -> Result<(), TestCaseError> {
    c.check_board_ownership().map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No board is ever in two live jobs, and destroying everything returns
    /// every machine to its start state.
    #[test]
    fn allocation_invariants(ops in proptest::collection::vec(op(), 1..60), dead in proptest::collection::btree_set((0u32..3, 0u32..2, 0u32..3), 0..3)) {
        let dead: Vec<_> = dead.into_iter().collect();
        let config = machine_config(3, 2, &dead);
        let mut c = controller(&config, 1.0);
        let mut now = 1000.0;
        let mut ids = Vec::new();
        let mut pending = Vec::new();
        for op in ops {
            match op {
                Op::Create(args, max_dead) => {
                    let extra = json!({"keepalive": 5.0, "max_dead_boards": max_dead});
                    ids.push(c.create_job(spec(json!(args), extra), None, now));
                }
                Op::Destroy(i) => if !ids.is_empty() {
                    c.destroy_job(ids[i % ids.len()], None, now);
                },
                Op::CompleteBmp(i, ok) => {
                    pending.extend(c.take_bmp_requests());
                    if !pending.is_empty() {
                        let r = pending.remove(i % pending.len());
                        c.bmp_request_done(r.id, if ok { Ok(()) } else { Err(r.bmp_ip) }, now);
                    }
                }
                Op::Advance(dt) => { now += dt; c.tick(now); }
                Op::Keepalive(i) => if !ids.is_empty() {
                    c.job_keepalive(ids[i % ids.len()], None, now);
                },
            }
            check_no_board_twice(&c)?;
            for job in c.live_jobs() {
                if let Some(a) = &job.allocation {
                    for b in &a.boards {
                        prop_assert!(!dead.contains(&(b.x, b.y, b.z)), "dead board allocated");
                    }
                }
            }
        }
        for id in ids {
            c.destroy_job(id, None, now);
        }
        pending.extend(c.take_bmp_requests());
        for r in pending {
            c.bmp_request_done(r.id, Ok(()), now);
        }
        complete_bmp(&mut c, now);
        c.tick(now + 2.0);
        prop_assert!(c.is_idle(), "machine not back to its start state");
        // And the whole machine can be had again (when its corner board lives).
        if !dead.contains(&(0, 0, 0)) {
            let whole = c.create_job(spec(json!([3, 2]), json!({"max_dead_boards": null})), None, now + 2.0);
            prop_assert_eq!(c.get_job_state(whole, None, now + 2.0).state, JobState::Power);
        }
    }
}
