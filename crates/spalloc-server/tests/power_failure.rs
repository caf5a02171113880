//! Failure-aware power-on in the sans-I/O core: boards that fail go out of
//! service and their job goes back to the queue at its old place instead of
//! dying (issue 16, item 3, the core part).

use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::bmp_request::BmpRequest;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::coordinates::Board;
use spalloc_server::ServerConfig;
use std::collections::BTreeSet;

fn controller(width: u32, height: u32) -> Controller {
    let config = ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"m\"\nwidth = {width}\nheight = {height}\nbase_ip = \"10.0.0.0\"\n"
    ))
    .unwrap();
    Controller::new(
        ControllerSettings {
            max_retired_jobs: 10,
            seconds_before_free: 0.0,
        },
        config.machines.into_iter().map(|m| m.machine).collect(),
    )
}

fn create(c: &mut Controller, args: Value, now: f64) -> u64 {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("keepalive".into(), Value::Null);
    let spec = create_job::parse(args.as_array().cloned().unwrap(), kwargs).unwrap();
    c.create_job(spec, None, now)
}

fn complete(c: &mut Controller, requests: Vec<BmpRequest>, now: f64) {
    for r in requests {
        c.bmp_request_done(r.id, Ok(()), now);
    }
}

/// Completes every BMP request outstanding now.
fn complete_all(c: &mut Controller, now: f64) {
    let requests = c.take_bmp_requests();
    complete(c, requests, now);
}

fn state(c: &mut Controller, id: u64) -> JobState {
    c.get_job_state(id, None, 0.0).state
}

fn boards(c: &mut Controller, id: u64) -> BTreeSet<Board> {
    c.get_job_machine_info(id, None, 0.0)
        .boards
        .unwrap_or_default()
        .into_iter()
        .map(|[x, y, z]| Board::new(x, y, z))
        .collect()
}

#[test]
fn a_job_whose_board_fails_to_power_on_goes_back_ahead_of_later_jobs_and_avoids_that_board() {
    let mut c = controller(2, 1);
    let first = create(&mut c, json!([1, 1]), 1.0);
    let first_power_on = c.take_bmp_requests();
    assert_eq!(first_power_on.len(), 1);
    let second = create(&mut c, json!([1, 1]), 2.0);
    complete_all(&mut c, 2.0);
    let later = create(&mut c, json!([1, 1]), 3.0);
    assert_eq!(state(&mut c, second), JobState::Ready);
    assert_eq!(state(&mut c, later), JobState::Queued);
    let failed = Board::new(0, 0, 1);
    c.power_on_failed(first_power_on[0].id, &[failed], 4.0);
    assert_eq!(state(&mut c, first), JobState::Queued);
    assert_eq!(c.queue_status(first).unwrap().position, 1);
    assert_eq!(c.queue_status(later).unwrap().position, 2);
    assert_eq!(c.boards_out_of_service("m"), Some(&[failed].into()));
    c.check_board_ownership().unwrap();
    // Its old boards are powered off, then freed: it gets them back
    // without the failed one, ahead of the later job.
    let power_off = c.take_bmp_requests();
    assert!(power_off.iter().all(|r| !r.power && r.job_id == first));
    complete(&mut c, power_off, 5.0);
    assert_eq!(state(&mut c, first), JobState::Power);
    assert_eq!(
        boards(&mut c, first),
        [Board::new(0, 0, 0), Board::new(0, 0, 2)].into()
    );
    assert_eq!(state(&mut c, later), JobState::Queued);
    complete_all(&mut c, 6.0);
    assert_eq!(state(&mut c, first), JobState::Ready);
    c.check_board_ownership().unwrap();
}

#[test]
fn the_other_power_ons_of_a_failed_job_do_not_make_it_ready() {
    // 5×2 triads: 30 boards behind two BMPs (24 boards to a frame).
    let mut c = controller(5, 2);
    let job = create(&mut c, json!([5, 2]), 1.0);
    let power_on = c.take_bmp_requests();
    assert_eq!(power_on.len(), 2);
    let failed = Board::new(4, 1, 2);
    let (bad, good) = if power_on[0].bmp == (0, 1) {
        (power_on[0].clone(), power_on[1].clone())
    } else {
        (power_on[1].clone(), power_on[0].clone())
    };
    c.power_on_failed(bad.id, &[failed], 2.0);
    // The other BMP's power-on completes late: the job stays queued.
    c.bmp_request_done(good.id, Ok(()), 3.0);
    assert_eq!(state(&mut c, job), JobState::Queued);
    let power_off = c.take_bmp_requests();
    assert_eq!(power_off.len(), 2);
    complete(&mut c, power_off, 4.0);
    assert_eq!(state(&mut c, job), JobState::Power);
    let got = boards(&mut c, job);
    assert_eq!(got.len(), 29);
    assert!(!got.contains(&failed));
    c.check_board_ownership().unwrap();
}

#[test]
fn a_failure_reported_for_a_job_that_is_not_powering_on_only_completes_the_request() {
    let mut c = controller(1, 1);
    let job = create(&mut c, json!([]), 1.0);
    complete_all(&mut c, 1.0);
    c.destroy_job(job, None, 2.0);
    let power_off = c.take_bmp_requests();
    assert_eq!(power_off.len(), 1);
    c.power_on_failed(power_off[0].id, &[Board::new(0, 0, 0)], 3.0);
    assert_eq!(state(&mut c, job), JobState::Destroyed);
    c.tick(3.0);
    assert!(c.is_idle(), "the dying job's boards were released");
    // Unknown requests are ignored.
    c.power_on_failed(999, &[], 4.0);
    assert!(c.boards_out_of_service("m").unwrap().is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Create(Value),
        Destroy(usize),
        /// Complete the i-th outstanding BMP request.
        Complete(usize),
        /// Report the i-th outstanding request as a power-on failure of
        /// one of its job's boards (the j-th).
        Fail(usize, usize),
        /// Return every board to service.
        Repair,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop_oneof![
                Just(json!([])),
                (1i64..8).prop_map(|n| json!([n])),
                (1i64..3, 1i64..3).prop_map(|(w, h)| json!([w, h])),
            ]
            .prop_map(Op::Create),
            1 => any::<usize>().prop_map(Op::Destroy),
            3 => any::<usize>().prop_map(Op::Complete),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Op::Fail(i, j)),
            1 => Just(Op::Repair),
        ]
    }

    proptest! {
        /// Whatever fails, no board is ever in two jobs, and once everything
        /// is powered off and destroyed every board is free again.
        #[test]
        fn power_on_failures_never_share_or_leak_a_board(
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut c = controller(3, 1);
            let mut outstanding: Vec<BmpRequest> = Vec::new();
            let mut now = 0.0;
            for op in ops {
                now += 1.0;
                match op {
                    Op::Create(args) => {
                        create(&mut c, args, now);
                    }
                    Op::Destroy(i) => {
                        let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
                        if !ids.is_empty() {
                            c.destroy_job(ids[i % ids.len()], None, now);
                        }
                    }
                    Op::Complete(i) if !outstanding.is_empty() => {
                        let r = outstanding.remove(i % outstanding.len());
                        c.bmp_request_done(r.id, Ok(()), now);
                    }
                    Op::Fail(i, j) if !outstanding.is_empty() => {
                        let r = outstanding.remove(i % outstanding.len());
                        let held: Vec<Board> = boards(&mut c, r.job_id).into_iter().collect();
                        let failed: Vec<Board> = held.get(j % held.len().max(1)).copied().into_iter().collect();
                        c.power_on_failed(r.id, &failed, now);
                    }
                    Op::Repair => {
                        let out: Vec<Board> = c.boards_out_of_service("m").unwrap().iter().copied().collect();
                        for b in out {
                            c.set_board_in_service("m", b, true, now).unwrap();
                        }
                    }
                    _ => {}
                }
                outstanding.extend(c.take_bmp_requests());
                prop_assert!(c.check_board_ownership().is_ok(), "{:?}", c.check_board_ownership());
            }
            let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
            for id in ids {
                c.destroy_job(id, None, now);
            }
            for _ in 0..10 {
                outstanding.extend(c.take_bmp_requests());
                for r in std::mem::take(&mut outstanding) {
                    c.bmp_request_done(r.id, Ok(()), now);
                }
            }
            c.tick(now + 1.0);
            prop_assert!(c.is_idle(), "boards leaked");
        }
    }
}
