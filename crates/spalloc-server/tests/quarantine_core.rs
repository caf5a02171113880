//! Failure-aware boards in the sans-I/O core (issue 16, item 3): reports
//! from distinct jobs take a board out of service at the machine's
//! threshold, returning it closes its reports, a back end's power-on check
//! failure takes the failure-aware path, the board records survive a
//! restart through the state file, and avoid-lists are honoured.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::bmp_request::{BmpFailure, BmpRequest};
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::coordinates::Board;
use spalloc_server::core::issue_report::IssueReport;
use spalloc_server::store::{Store, Synchronous};
use spalloc_server::ServerConfig;
use std::collections::BTreeSet;

const SETTINGS: ControllerSettings = ControllerSettings {
    max_retired_jobs: 10,
    seconds_before_free: 0.0,
};

fn machines(width: u32, height: u32, extra: &str) -> Vec<spalloc_server::core::machine::Machine> {
    let config = ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"m\"\nwidth = {width}\nheight = {height}\nbase_ip = \"10.0.0.0\"\n{extra}\n"
    ))
    .unwrap();
    config.machines.into_iter().map(|m| m.machine).collect()
}

fn controller(width: u32, height: u32, extra: &str) -> Controller {
    Controller::new(SETTINGS, machines(width, height, extra))
}

fn create_with(c: &mut Controller, args: Value, extra: Value, now: f64) -> u64 {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("keepalive".into(), Value::Null);
    if let Value::Object(extra) = extra {
        kwargs.extend(extra);
    }
    let spec = create_job::parse(args.as_array().cloned().unwrap(), kwargs).unwrap();
    c.create_job(spec, None, now)
}

fn create(c: &mut Controller, args: Value, now: f64) -> u64 {
    create_with(c, args, json!({}), now)
}

fn complete_all(c: &mut Controller, now: f64) {
    for r in c.take_bmp_requests() {
        c.bmp_request_done(r.id, Ok(()), now);
    }
}

fn boards(c: &mut Controller, id: u64) -> BTreeSet<Board> {
    c.get_job_machine_info(id, None, 0.0)
        .boards
        .unwrap_or_default()
        .into_iter()
        .map(|[x, y, z]| Board::new(x, y, z))
        .collect()
}

fn report(job_id: u64, board: Board, time: f64) -> IssueReport {
    IssueReport {
        job_id,
        reporter: "alice".into(),
        machine: "m".into(),
        board,
        issue: "it smokes".into(),
        time,
    }
}

#[test]
fn reports_from_the_threshold_of_distinct_jobs_take_a_board_out_and_returning_it_closes_them() {
    let mut c = controller(2, 1, "quarantine_after_reports = 2");
    let one = create(&mut c, json!([1]), 1.0);
    let two = create(&mut c, json!([1]), 1.0);
    complete_all(&mut c, 1.0);
    let board = *boards(&mut c, one).iter().next().unwrap();
    // The same job reporting twice counts once.
    c.report_issue(report(one, board, 2.0));
    c.report_issue(report(one, board, 3.0));
    assert_eq!(c.boards_out_of_service("m"), Some(&BTreeSet::new()));
    c.report_issue(report(two, board, 4.0));
    assert_eq!(c.boards_out_of_service("m"), Some(&[board].into()));
    let listed = c.boards_out_of_service_all();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].since, 4.0);
    assert_eq!(listed[0].reason, "reported broken from 2 jobs");
    // Jobs holding it keep it.
    assert_eq!(boards(&mut c, one), [board].into());
    c.set_board_in_service("m", board, true, 5.0).unwrap();
    assert!(c.boards_out_of_service_all().is_empty());
    assert!(c.issue_reports_kept().all(|k| k.closed));
    // Closed reports do not count again: one new report is not enough.
    c.report_issue(report(two, board, 6.0));
    assert_eq!(c.boards_out_of_service("m"), Some(&BTreeSet::new()));
    assert_eq!(c.issue_reports().count(), 4);
}

#[test]
fn without_a_threshold_reports_never_take_a_board_out() {
    let mut c = controller(1, 1, "");
    let ids: Vec<u64> = (0..3).map(|_| create(&mut c, json!([1]), 1.0)).collect();
    complete_all(&mut c, 1.0);
    for id in ids {
        c.report_issue(report(id, Board::new(0, 0, 0), 2.0));
    }
    assert!(c.boards_out_of_service_all().is_empty());
}

#[test]
fn a_legacy_report_names_the_board_by_address_and_counts_for_the_job_holding_it() {
    let mut c = controller(1, 1, "quarantine_after_reports = 1");
    let ip = |c: &Controller, z: u32| {
        c.machine("m").unwrap().spinnaker_ips[&Board::new(0, 0, z)].clone()
    };
    let (held, free) = (ip(&c, 0), ip(&c, 1));
    assert_eq!(
        c.report_problem("10.9.9.9", None, "x", "legacy client", 1.0),
        Err("no board has the address 10.9.9.9".into())
    );
    let id = create(&mut c, json!([0, 0, 0]), 1.0);
    complete_all(&mut c, 1.0);
    assert_eq!(
        c.report_problem(&free, None, "x", "legacy client", 1.0),
        Err(format!("the board at {free} is not allocated to a job"))
    );
    c.report_problem(
        &held,
        Some((1, 2, Some(3))),
        "bad core",
        "legacy client",
        2.0,
    )
    .unwrap();
    let kept: Vec<_> = c.issue_reports().cloned().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].job_id, id);
    assert_eq!(kept[0].board, Board::new(0, 0, 0));
    assert_eq!(kept[0].issue, "chip (1, 2) core 3: bad core");
    assert_eq!(
        c.boards_out_of_service("m"),
        Some(&[Board::new(0, 0, 0)].into())
    );
}

fn power_on_request(c: &mut Controller) -> BmpRequest {
    let mut requests = c.take_bmp_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

#[test]
fn a_back_end_reporting_failed_power_on_checks_quarantines_the_boards_and_requeues_the_job() {
    let mut c = controller(2, 1, "");
    let id = create(&mut c, json!([1, 1]), 1.0);
    let request = power_on_request(&mut c);
    let first = boards(&mut c, id);
    let bad = request.boards[0];
    let failure = BmpFailure::PowerOnChecks {
        bmp_ip: request.bmp_ip.clone(),
        slots: vec![bad],
    };
    c.bmp_request_finished(&request, Err(failure), 2.0);
    let out = c.boards_out_of_service_all();
    assert_eq!(out.len(), 1);
    assert!(first.contains(&out[0].board));
    assert_eq!(
        out[0].reason,
        format!("failed its power-on checks (job {id})")
    );
    // Not destroyed: queued again, and placed on the other triad at once.
    let state = c.get_job_state(id, None, 2.0);
    assert_eq!(state.state, JobState::Power);
    let second = boards(&mut c, id);
    assert!(second.is_disjoint(&first));
    complete_all(&mut c, 3.0);
    assert_eq!(c.get_job_state(id, None, 3.0).state, JobState::Ready);
    c.check_board_ownership().unwrap();
}

#[test]
fn a_bmp_failing_outright_still_destroys_the_job_as_the_reference_does() {
    let mut c = controller(1, 1, "");
    let id = create(&mut c, json!([1]), 1.0);
    let request = power_on_request(&mut c);
    let failure = BmpFailure::Bmp(request.bmp_ip.clone());
    c.bmp_request_finished(&request, Err(failure), 2.0);
    let state = c.get_job_state(id, None, 2.0);
    assert_eq!(state.state, JobState::Destroyed);
    assert!(c.boards_out_of_service_all().is_empty());
}

#[test]
fn boards_out_of_service_and_reports_survive_a_restart_on_the_same_state_file() {
    let dir = std::env::temp_dir().join(format!("spalloc-quarantine-core-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.sqlite");
    let out = Board::new(1, 0, 2);
    let reported = Board::new(0, 0, 1);
    {
        let (mut store, _) = Store::open(&path, Synchronous::Normal).unwrap();
        let mut c = controller(2, 1, "quarantine_after_reports = 3");
        let id = create(&mut c, json!([0, 0, 1]), 1.0);
        complete_all(&mut c, 1.0);
        c.report_issue(report(id, reported, 2.0));
        c.take_board_out_of_service("m", out, "fan broken", 3.0)
            .unwrap();
        store
            .commit(&[(c.take_record_changes(false), false)])
            .unwrap();
    }
    let (_store, opened) = Store::open(&path, Synchronous::Normal).unwrap();
    let records = opened.records.expect("records");
    let mut c = Controller::from_records(
        SETTINGS,
        records,
        machines(2, 1, "quarantine_after_reports = 3"),
        10.0,
    );
    assert_eq!(c.boards_out_of_service("m"), Some(&[out].into()));
    let listed = c.boards_out_of_service_all();
    assert_eq!(
        (listed[0].since, listed[0].reason.as_str()),
        (3.0, "fan broken")
    );
    let reports: Vec<_> = c.issue_reports().cloned().collect();
    assert_eq!(reports, [report(1, reported, 2.0)]);
    // Still not handed out: a job asking for it waits, saying why.
    let waiting = create(&mut c, json!([1, 0, 2]), 11.0);
    assert_eq!(c.get_job_state(waiting, None, 11.0).state, JobState::Queued);
    let reason = c.queue_status(waiting).unwrap().reason.to_string();
    assert!(reason.contains("out of service"), "{reason}");
    // Returned: the waiting job gets it.
    c.set_board_in_service("m", out, true, 12.0).unwrap();
    assert_eq!(c.get_job_state(waiting, None, 12.0).state, JobState::Power);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_job_waiting_on_avoided_boards_says_so() {
    let mut c = controller(1, 1, "");
    let holder = create(&mut c, json!([0, 0, 0]), 1.0);
    complete_all(&mut c, 1.0);
    let avoid = json!({"avoid_boards": [[0, 0, 1], [0, 0, 2]]});
    let id = create_with(&mut c, json!([1]), avoid, 2.0);
    assert_eq!(c.get_job_state(id, None, 2.0).state, JobState::Queued);
    let reason = c.queue_status(id).unwrap().reason.to_string();
    assert!(reason.ends_with("; it avoids 2 boards"), "{reason}");
    // Once its own allowed board frees up, it gets that one.
    c.destroy_job(holder, None, 3.0);
    complete_all(&mut c, 3.0);
    c.tick(4.0);
    assert_eq!(boards(&mut c, id), [Board::new(0, 0, 0)].into());
}

#[test]
fn a_bad_avoid_list_is_refused_with_a_clear_message() {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("avoid_boards".into(), json!([[0, 0, 3]]));
    let e = create_job::parse(vec![json!(1)], kwargs.clone()).unwrap_err();
    assert!(e.contains("avoid_boards: [0, 0, 3] is not a board"), "{e}");
    kwargs.insert("avoid_boards".into(), json!("0,0,1"));
    let e = create_job::parse(vec![json!(1)], kwargs).unwrap_err();
    assert!(e.contains("avoid_boards must be a list"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// However jobs of every shape come and go, no job is ever given a
    /// board on its avoid-list.
    #[test]
    fn no_job_is_ever_given_a_board_it_avoids(
        jobs in proptest::collection::vec(
            (
                prop_oneof![
                    Just(json!([])),
                    Just(json!([2])),
                    Just(json!([4])),
                    Just(json!([1, 1])),
                    Just(json!([2, 1])),
                ],
                proptest::collection::btree_set((0u32..3, 0u32..2, 0u32..3), 0..4),
                any::<bool>(),
            ),
            1..20,
        )
    ) {
        let mut c = controller(3, 2, "");
        let mut live: Vec<(u64, BTreeSet<Board>)> = Vec::new();
        let mut now = 1.0;
        for (args, avoid, destroy_oldest) in jobs {
            now += 1.0;
            let avoided: BTreeSet<Board> =
                avoid.iter().map(|&(x, y, z)| Board::new(x, y, z)).collect();
            let list: Vec<[u32; 3]> = avoid.iter().map(|&(x, y, z)| [x, y, z]).collect();
            let id = create_with(&mut c, args, json!({ "avoid_boards": list }), now);
            live.push((id, avoided));
            if destroy_oldest && !live.is_empty() {
                let (oldest, _) = live.remove(0);
                c.destroy_job(oldest, None, now);
            }
            complete_all(&mut c, now);
            c.tick(now);
            for (id, avoided) in &live {
                let got = boards(&mut c, *id);
                prop_assert!(got.is_disjoint(avoided), "job {id} got {got:?}, avoiding {avoided:?}");
            }
            prop_assert!(c.check_board_ownership().is_ok());
        }
    }
}
