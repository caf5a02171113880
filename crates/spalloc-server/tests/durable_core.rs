//! Records of the sans-I/O controller: round trips, re-issued power work,
//! dying jobs freed, changed machines, and (a property test) that the
//! records written after any sequence of commands load back as the live
//! controller's.

use serde_json::{json, Map, Value};
use spalloc_protocol::JobState;
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::job::JobSpec;
use spalloc_server::core::machine::Machine;
use spalloc_server::core::reconfigure::MACHINE_REMOVED;
use spalloc_server::core::records::Records;
use spalloc_server::ServerConfig;

fn machines(name: &str, width: u32, height: u32) -> Vec<Machine> {
    ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"{name}\"\nwidth = {width}\nheight = {height}\nbase_ip = \"10.0.0.0\"\n"
    ))
    .unwrap()
    .machines
    .into_iter()
    .map(|m| m.machine)
    .collect()
}

const SETTINGS: ControllerSettings = ControllerSettings {
    max_retired_jobs: 100,
    seconds_before_free: 10.0,
};

fn spec(args: Value, keepalive: f64) -> JobSpec {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("keepalive".into(), json!(keepalive));
    create_job::parse(args.as_array().cloned().unwrap_or_default(), kwargs).unwrap()
}

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

/// Through JSON, as the state file stores each record.
fn reload(c: &Controller, machines: Vec<Machine>, now: f64) -> Controller {
    let text = serde_json::to_string(&c.records()).unwrap();
    let records: Records = serde_json::from_str(&text).unwrap();
    Controller::from_records(SETTINGS, records, machines, now)
}

/// The records, without what a restore legitimately renumbers (the
/// allocator's allocation IDs).
fn comparable(c: &Controller) -> Value {
    let mut v = serde_json::to_value(c.records()).unwrap();
    for j in v["jobs"].as_array_mut().unwrap() {
        if j["allocation"].is_object() {
            j["allocation"]["allocation_id"] = json!(0);
        }
    }
    v
}

/// A 2x2-triad machine with a ready job, a queued job, a powering job, a
/// job being torn down and a destroyed one with a reason.
fn busy() -> (Controller, [u64; 5]) {
    let mut c = Controller::new(SETTINGS, machines("m", 2, 2));
    let ready = c.create_job(spec(json!([1, 1]), 60.0), Some("1.2.3.4".into()), 100.0);
    complete_bmp(&mut c, 100.0);
    let gone = c.create_job(spec(json!([]), 60.0), None, 100.0);
    complete_bmp(&mut c, 100.0);
    c.destroy_job(gone, Some("bye".into()), 101.0);
    complete_bmp(&mut c, 101.0);
    let dying = c.create_job(spec(json!([1, 1]), 60.0), None, 102.0);
    complete_bmp(&mut c, 102.0);
    c.destroy_job(dying, Some("tearing down".into()), 103.0);
    let _ = c.take_bmp_requests(); // the power-off never completes
    let powering = c.create_job(spec(json!([]), 60.0), None, 104.0);
    let _ = c.take_bmp_requests(); // nor this power-on
    let queued = c.create_job(spec(json!([2, 2]), 60.0), None, 105.0);
    (c, [ready, gone, dying, powering, queued])
}

#[test]
fn records_round_trip() {
    let (c, _) = busy();
    let restored = reload(&c, machines("m", 2, 2), 105.0);
    assert_eq!(comparable(&restored), comparable(&c));
    assert_eq!(restored.list_jobs(), c.list_jobs());
}

#[test]
fn in_flight_power_is_reissued_and_dying_jobs_are_freed() {
    let (c, [ready, gone, dying, powering, queued]) = busy();
    let mut r = reload(&c, machines("m", 2, 2), 200.0);
    let requests = r.take_bmp_requests();
    let for_job = |id: u64| requests.iter().filter(|q| q.job_id == id).count();
    assert_eq!(for_job(ready), 0, "a ready job needs nothing");
    assert!(for_job(powering) > 0, "the power-on is issued again");
    assert!(requests.iter().any(|q| q.job_id == powering && q.power));
    assert!(requests.iter().any(|q| q.job_id == dying && !q.power));
    assert_eq!(
        r.get_job_state(powering, None, 200.0).state,
        JobState::Power
    );
    assert_eq!(r.get_job_state(ready, None, 200.0).state, JobState::Ready);
    assert_eq!(r.get_job_state(queued, None, 200.0).state, JobState::Queued);
    let state = r.get_job_state(gone, None, 200.0);
    assert_eq!(
        (state.state, state.reason.as_deref()),
        (JobState::Destroyed, Some("bye"))
    );
    // Keepalive deadlines restart at the restore time.
    assert_eq!(r.live_jobs().next().unwrap().keepalive_until, Some(260.0));
    for q in requests {
        r.bmp_request_done(q.id, Ok(()), 200.0);
    }
    assert_eq!(
        r.get_job_state(powering, None, 200.0).state,
        JobState::Ready
    );
    // The dying job's boards are freed: once the others go, all is idle.
    r.destroy_job(ready, None, 201.0);
    r.destroy_job(powering, None, 201.0);
    complete_bmp(&mut r, 201.0);
    r.tick(215.0);
    complete_bmp(&mut r, 215.0);
    assert_eq!(
        r.get_job_state(queued, None, 215.0).state,
        JobState::Ready,
        "the 2x2 job got the machine"
    );
    r.destroy_job(queued, None, 216.0);
    complete_bmp(&mut r, 216.0);
    r.tick(230.0);
    assert!(r.is_idle());
}

#[test]
fn the_next_job_id_survives() {
    let (c, ids) = busy();
    let mut r = reload(&c, machines("m", 2, 2), 200.0);
    let next = r.create_job(spec(json!([]), 60.0), None, 200.0);
    assert_eq!(next, ids.iter().max().unwrap() + 1);
}

#[test]
fn jobs_on_a_changed_machine_are_destroyed() {
    let (c, [ready, _, _, powering, queued]) = busy();
    let mut r = reload(&c, machines("m", 3, 2), 200.0);
    for id in [ready, powering] {
        let s = r.get_job_state(id, None, 200.0);
        assert_eq!(
            (s.state, s.reason.as_deref()),
            (JobState::Destroyed, Some(MACHINE_REMOVED))
        );
    }
    // The queued job is re-queued on the new machine, which is idle; the
    // destroyed jobs' boards are powered off, as a reload does.
    assert_eq!(r.get_job_state(queued, None, 200.0).state, JobState::Power);
    let requests = r.take_bmp_requests();
    assert!(requests
        .iter()
        .filter(|q| q.power)
        .all(|q| q.job_id == queued));
    assert_eq!(
        r.get_job_machine_info(queued, None, 200.0)
            .boards
            .map(|b| b.len()),
        Some(12)
    );
}

#[test]
fn queued_jobs_no_machine_can_run_are_cancelled() {
    let (c, [ready, _, _, _, queued]) = busy();
    let mut r = reload(&c, machines("small", 1, 1), 200.0);
    let s = r.get_job_state(ready, None, 200.0);
    assert_eq!(s.reason.as_deref(), Some(MACHINE_REMOVED));
    let s = r.get_job_state(queued, None, 200.0);
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (
            JobState::Destroyed,
            Some("Cancelled: No suitable machines available.")
        )
    );
    let requests = r.take_bmp_requests();
    assert!(requests.iter().all(|q| !q.power), "only power-offs");
    for q in requests {
        r.bmp_request_done(q.id, Ok(()), 200.0);
    }
    r.tick(300.0);
    assert!(r.is_idle());
}

#[test]
fn keepalives_and_reads_change_no_record() {
    let (mut c, [ready, ..]) = busy();
    let _ = c.take_record_changes(false);
    c.job_keepalive(ready, Some("5.6.7.8"), 110.0);
    let _ = c.get_job_state(ready, None, 111.0);
    let _ = c.list_jobs();
    assert!(!c.has_unsaved_changes());
    c.destroy_job(ready, None, 112.0);
    assert!(c.has_unsaved_changes());
    let changes = c.take_record_changes(false);
    assert!(changes.jobs.iter().any(|(id, _)| *id == ready));
}

#[test]
fn a_damaged_record_destroys_only_its_job() {
    let (c, [ready, _, _, powering, queued]) = busy();
    let mut records = c.records();
    // Make the powering job claim the ready job's boards.
    let boards = records
        .jobs
        .iter()
        .find(|j| j.id == ready)
        .unwrap()
        .allocation
        .clone();
    records
        .jobs
        .iter_mut()
        .find(|j| j.id == powering)
        .unwrap()
        .allocation = boards;
    let mut r = Controller::from_records(SETTINGS, records, machines("m", 2, 2), 200.0);
    assert_eq!(r.get_job_state(ready, None, 200.0).state, JobState::Ready);
    let s = r.get_job_state(powering, None, 200.0);
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (
            JobState::Destroyed,
            Some(spalloc_server::core::controller::REASON_BAD_RECORD)
        )
    );
    assert_eq!(r.get_job_state(queued, None, 200.0).state, JobState::Queued);
    r.check_board_ownership().unwrap();
}

#[test]
fn freed_boards_wait_out_seconds_before_free_across_a_restart_neither_less_nor_more() {
    // One triad: the second job needs the first one's boards.
    let mut c = Controller::new(SETTINGS, machines("m", 1, 1));
    let first = c.create_job(spec(json!([1, 1]), 60.0), None, 100.0);
    complete_bmp(&mut c, 100.0);
    c.destroy_job(first, None, 101.0);
    complete_bmp(&mut c, 101.0); // freed at 101: usable again at 111
    assert_eq!(c.records().cooling.len(), 1, "recorded while they wait");

    let mut r = reload(&c, machines("m", 1, 1), 105.0);
    let second = r.create_job(spec(json!([1, 1]), 60.0), None, 105.0);
    r.tick(110.5);
    assert_eq!(
        r.get_job_state(second, None, 110.5).state,
        JobState::Queued,
        "the restart did not cut the wait"
    );
    r.tick(111.0);
    assert_eq!(
        r.get_job_state(second, None, 111.0).state,
        JobState::Power,
        "nor extend it (to 115)"
    );
    assert!(
        r.records().cooling.is_empty(),
        "the record goes with the wait"
    );
}

#[test]
fn a_restart_after_the_wait_frees_the_boards_at_once() {
    let mut c = Controller::new(SETTINGS, machines("m", 1, 1));
    let first = c.create_job(spec(json!([1, 1]), 60.0), None, 100.0);
    complete_bmp(&mut c, 100.0);
    c.destroy_job(first, None, 101.0);
    complete_bmp(&mut c, 101.0);
    let mut r = reload(&c, machines("m", 1, 1), 300.0);
    assert!(r.records().cooling.is_empty());
    let second = r.create_job(spec(json!([1, 1]), 60.0), None, 300.0);
    assert_eq!(r.get_job_state(second, None, 300.0).state, JobState::Power);
}
