//! Tests of usage accounting and quotas, with time passed in.

use super::*;
use crate::cmd::create_job;
use crate::config::ServerConfig;
use crate::core::controller::ControllerSettings;
use crate::core::machine::Machine;
use proptest::prelude::*;
use spalloc_protocol::JobState;

const SETTINGS: ControllerSettings = ControllerSettings {
    max_retired_jobs: 2,
    seconds_before_free: 0.0,
};

/// A simulated machine of 2 × 1 triads (6 boards).
fn machine() -> Machine {
    ServerConfig::from_toml_str(
        "[[machine]]\nname = \"m\"\nwidth = 2\nheight = 1\nbase_ip = \"10.0.0.0\"\n",
    )
    .expect("config")
    .machines
    .remove(0)
    .machine
}

fn controller(quotas: &[(&str, f64)]) -> Controller {
    let mut c = Controller::new(SETTINGS, vec![machine()]);
    c.set_quota_settings(QuotaSettings {
        groups: quotas.iter().map(|(g, q)| ((*g).to_owned(), *q)).collect(),
        legacy_group: None,
        warning_seconds: 100.0,
    });
    c
}

/// A spec for `boards` boards (1 or a multiple of 3) owned by `owner`.
fn spec(owner: &str, boards: u32) -> JobSpec {
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("owner".into(), owner.into());
    kwargs.insert("keepalive".into(), serde_json::Value::Null);
    let args = if boards == 1 {
        vec![]
    } else {
        vec![serde_json::json!(boards / 3), serde_json::json!(1)]
    };
    create_job::parse(args, kwargs).expect("valid spec")
}

fn create(c: &mut Controller, owner: &str, boards: u32, group: Option<&str>, now: f64) -> u64 {
    c.create_charged_job(
        spec(owner, boards),
        None,
        None,
        group.map(str::to_owned),
        now,
    )
    .expect("created")
}

#[test]
fn a_job_is_charged_boards_times_the_seconds_it_held_them() {
    let mut c = controller(&[]);
    let id = create(&mut c, "alice", 3, Some("g"), 10.0);
    assert_eq!(c.job_usage(id, 10.0).map(|r| r.board_seconds), Some(0.0));
    assert_eq!(c.job_usage(id, 20.0).map(|r| r.board_seconds), Some(30.0));
    c.destroy_job(id, Some("done".into()), 30.0);
    let record = c.job_usage(id, 100.0).expect("kept after the job is gone");
    assert_eq!(record.board_seconds, 60.0);
    assert_eq!(record.boards, 3);
    assert_eq!(record.finish_time, Some(30.0));
    assert_eq!(record.group.as_deref(), Some("g"));
    assert_eq!(record.reason.as_deref(), Some("done"));
    assert_eq!(c.group_standing("g", 100.0).used, 60.0);
}

#[test]
fn a_job_that_never_got_boards_is_charged_nothing_and_is_still_in_the_history() {
    let mut c = controller(&[]);
    let big = create(&mut c, "alice", 6, None, 0.0);
    let waiting = create(&mut c, "bob", 1, None, 0.0);
    assert_eq!(c.job(waiting).map(|j| j.state), Some(JobState::Queued));
    c.destroy_job(waiting, None, 50.0);
    let report = c.usage_report(
        &UsageQuery {
            limit: 10,
            ..UsageQuery::default()
        },
        50.0,
    );
    assert_eq!(report.matched, 2, "the running job and the cancelled one");
    assert_eq!(report.by_owner.get("bob"), Some(&0.0));
    assert_eq!(report.by_owner.get("alice"), Some(&300.0));
    assert_eq!(report.jobs[0].job_id, waiting, "newest first");
    assert!(c.job(big).is_some());
}

#[test]
fn the_history_outlives_the_retired_reasons_cache() {
    let mut c = controller(&[]);
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            let id = create(&mut c, "alice", 1, None, f64::from(i));
            c.destroy_job(id, None, f64::from(i) + 1.0);
            id
        })
        .collect();
    assert!(c.destroyed_job(ids[0]).is_none(), "reason evicted");
    assert_eq!(c.usage_book().records().len(), 5);
    assert_eq!(c.job_usage(ids[0], 9.0).map(|r| r.board_seconds), Some(1.0));
}

#[test]
fn usage_survives_records_and_restore_and_running_jobs_keep_counting() {
    let mut c = controller(&[]);
    let done = create(&mut c, "alice", 1, Some("g"), 0.0);
    c.destroy_job(done, None, 10.0);
    let running = create(&mut c, "alice", 3, Some("g"), 10.0);
    let records = c.records();
    let restored = Controller::from_records(SETTINGS, records, vec![machine()], 20.0);
    assert_eq!(
        restored.job_usage(done, 50.0).map(|r| r.board_seconds),
        Some(10.0)
    );
    assert_eq!(
        restored.job_usage(running, 20.0).map(|r| r.board_seconds),
        Some(30.0)
    );
    assert_eq!(restored.group_standing("g", 20.0).used, 40.0);
}

#[test]
fn finished_jobs_leave_in_the_record_changes_once() {
    let mut c = controller(&[]);
    let id = create(&mut c, "alice", 1, None, 0.0);
    c.take_record_changes(false);
    c.destroy_job(id, None, 5.0);
    assert!(c.has_unsaved_changes());
    let changes = c.take_record_changes(false);
    assert_eq!(changes.usage.len(), 1);
    assert_eq!(changes.usage[0].board_seconds, 5.0);
    assert!(c.take_record_changes(false).usage.is_empty());
    assert!(
        c.take_record_changes(true).usage.is_empty(),
        "a full rewrite keeps the usage rows the file has"
    );
}

#[test]
fn a_restored_history_is_not_written_again_by_the_first_full_save() {
    let mut c = controller(&[]);
    for t in 0..3 {
        let id = create(&mut c, "alice", 1, None, t as f64);
        c.destroy_job(id, None, t as f64 + 1.0);
    }
    let restored_from = c.records();
    assert_eq!(restored_from.usage.len(), 3);
    let mut restored = Controller::from_records(SETTINGS, restored_from, vec![machine()], 9.0);
    assert!(restored.take_record_changes(true).usage.is_empty());
    let id = create(&mut restored, "bob", 1, None, 10.0);
    restored.destroy_job(id, None, 12.0);
    let changes = restored.take_record_changes(true);
    assert_eq!(changes.usage.len(), 1, "only the job finished since");
    assert_eq!(changes.usage[0].owner, "bob");
}

#[test]
fn a_power_on_failure_stops_the_charge_until_new_boards_are_given() {
    let mut c = controller(&[]);
    let id = create(&mut c, "alice", 1, None, 0.0);
    let request = c.take_bmp_requests().remove(0);
    let board = c
        .job(id)
        .and_then(|j| j.allocation.as_ref())
        .and_then(|a| a.origin())
        .expect("allocated");
    c.power_on_failed(request.id, &[board], 10.0);
    // Requeued and placed again on another board at once.
    assert_eq!(c.job_usage(id, 10.0).map(|r| r.board_seconds), Some(10.0));
    assert_eq!(c.job_usage(id, 15.0).map(|r| r.board_seconds), Some(15.0));
}

#[test]
fn a_create_charged_to_a_spent_group_is_refused_with_the_quota_in_the_message() {
    let mut c = controller(&[("g", 50.0)]);
    let id = create(&mut c, "alice", 1, Some("g"), 0.0);
    c.destroy_job(id, None, 50.0);
    let refused = c
        .create_charged_job(spec("alice", 1), None, None, Some("g".into()), 60.0)
        .expect_err("out of quota");
    assert!(refused.contains("out of quota"), "{refused}");
    assert!(refused.contains("group g"), "{refused}");
    assert!(c.live_jobs().next().is_none(), "nothing was created");
    // Another group, or none, is not affected.
    assert!(c
        .create_charged_job(spec("alice", 1), None, None, Some("h".into()), 60.0)
        .is_ok());
}

#[test]
fn the_group_is_the_one_asked_for_or_the_first_with_quota_left() {
    let mut c = controller(&[("a", 10.0)]);
    let groups = vec!["b".to_owned(), "a".to_owned()];
    assert_eq!(
        c.choose_group("u", None, &groups, false, 0.0),
        Ok(Some("a".into()))
    );
    assert_eq!(c.choose_group("u", None, &[], false, 0.0), Ok(None));
    assert!(c
        .choose_group("u", Some("z"), &groups, false, 0.0)
        .expect_err("not a member")
        .contains("not a member"));
    assert_eq!(
        c.choose_group("u", Some("z"), &groups, true, 0.0),
        Ok(Some("z".into())),
        "an administrator may charge any group"
    );
    let id = create(&mut c, "u", 1, Some("a"), 0.0);
    c.destroy_job(id, None, 10.0);
    assert_eq!(
        c.choose_group("u", None, &groups, false, 10.0),
        Ok(Some("b".into())),
        "a is spent"
    );
    assert!(c
        .choose_group("u", None, &["a".to_owned()], false, 10.0)
        .is_err());
}

#[test]
fn a_running_job_is_warned_before_its_group_runs_out_then_destroyed_naming_the_quota() {
    // 1000 board-seconds at 3 boards: spent after 333.3 s; the warning
    // (100 s ahead) starts at 233.3 s.
    let mut c = controller(&[("g", 1000.0)]);
    let id = create(&mut c, "alice", 3, Some("g"), 0.0);
    c.tick(200.0);
    assert!(c.quota_warning(id, 200.0).is_none());
    let warning = c.quota_warning(id, 250.0).expect("warned");
    assert!((warning.seconds_left - 83.33).abs() < 0.01, "{warning:?}");
    assert!(warning.message().contains("group g"));
    c.tick(250.0);
    assert!(c.job(id).is_some(), "still running while warned");
    c.tick(334.0);
    assert!(c.job(id).is_none(), "destroyed once spent");
    let reason = c.get_job_state(id, None, 335.0).reason.unwrap_or_default();
    assert!(reason.contains("Quota exceeded"), "{reason}");
    let record = c.job_usage(id, 400.0).expect("recorded");
    assert!(record.board_seconds >= 1000.0);
}

#[test]
fn jobs_in_unlimited_groups_or_none_are_never_warned_or_destroyed() {
    let mut c = controller(&[("g", 1.0)]);
    let free = create(&mut c, "alice", 1, Some("h"), 0.0);
    let none = create(&mut c, "bob", 1, None, 0.0);
    c.tick(1e6);
    assert!(c.quota_warning(free, 1e6).is_none());
    assert!(c.job(free).is_some() && c.job(none).is_some());
}

#[test]
fn a_report_filters_by_owner_and_time_and_pages_newest_first() {
    let mut c = controller(&[]);
    for (i, owner) in ["a", "b", "a", "a"].iter().enumerate() {
        let t = i as f64 * 10.0;
        let id = create(&mut c, owner, 1, None, t);
        c.destroy_job(id, None, t + 5.0);
    }
    let q = UsageQuery {
        owner: Some("a".into()),
        since: Some(10.0),
        start: 1,
        limit: 1,
        ..UsageQuery::default()
    };
    let report = c.usage_report(&q, 100.0);
    assert_eq!(report.matched, 2, "jobs 3 and 4 ended after 10 s");
    assert_eq!(report.total, 10.0);
    assert_eq!(report.jobs.len(), 1);
    assert_eq!(report.jobs[0].job_id, 3);
}

/// One step of a random life of a small machine.
#[derive(Debug, Clone)]
enum Step {
    Create(u8, bool),
    Destroy(u8),
    CompleteBmp,
    Tick(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..3, any::<bool>()).prop_map(|(g, big)| Step::Create(g, big)),
        2 => any::<u8>().prop_map(Step::Destroy),
        2 => Just(Step::CompleteBmp),
        2 => (1u8..30).prop_map(Step::Tick),
    ]
}

proptest! {
    /// Whatever happens, the usage recorded equals Σ boards × held time,
    /// measured independently from the allocations seen between steps, and
    /// each group's standing is the sum of its jobs.
    #[test]
    fn usage_sums_equal_boards_times_held_time(steps in prop::collection::vec(step(), 1..60)) {
        let mut c = controller(&[]);
        let mut now = 0.0;
        // Per job: (group, boards held now, board-seconds measured).
        let mut measured: BTreeMap<u64, (Option<String>, u32, f64)> = BTreeMap::new();
        for s in steps {
            let before = now;
            match s {
                Step::Create(g, big) => {
                    let group = (g > 0).then(|| format!("g{g}"));
                    let id = create(&mut c, "u", if big { 3 } else { 1 }, group.as_deref(), now);
                    measured.insert(id, (group, 0, 0.0));
                }
                Step::Destroy(n) => {
                    let live: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
                    if !live.is_empty() {
                        c.destroy_job(live[usize::from(n) % live.len()], None, now);
                    }
                }
                Step::CompleteBmp => {
                    for r in c.take_bmp_requests() {
                        c.bmp_request_done(r.id, Ok(()), now);
                    }
                }
                Step::Tick(dt) => {
                    now += f64::from(dt);
                    c.tick(now);
                }
            }
            // Boards held during (before, now]: what each job held after the
            // previous step, as measured then.
            for (_, held, total) in measured.values_mut() {
                *total += f64::from(*held) * (now - before);
            }
            for (id, (_, held, _)) in measured.iter_mut() {
                *held = c
                    .job(*id)
                    .and_then(|j| j.allocation.as_ref())
                    .map_or(0, |a| a.boards.len() as u32);
            }
        }
        let mut by_group: BTreeMap<String, f64> = BTreeMap::new();
        for (id, (group, _, total)) in &measured {
            let recorded = c.job_usage(*id, now).map(|r| r.board_seconds);
            prop_assert_eq!(recorded, Some(*total), "job {}", id);
            if let Some(g) = group {
                *by_group.entry(g.clone()).or_default() += total;
            }
        }
        for (g, total) in by_group {
            prop_assert_eq!(c.group_standing(&g, now).used, total);
        }
        let report = c.usage_report(&UsageQuery { limit: 1000, ..UsageQuery::default() }, now);
        prop_assert_eq!(report.total, measured.values().map(|m| m.2).sum::<f64>());
    }
}

#[test]
fn the_quota_table_of_the_configuration_is_read_and_bad_values_refused() {
    let base = "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\n";
    let config = ServerConfig::from_toml_str(&format!(
        "{base}[quota]\nlegacy_group = \"legacy\"\nwarning_seconds = 60\n\
         [quota.groups]\nstudents = 3600000\nlegacy = 0\n"
    ))
    .expect("valid");
    assert_eq!(config.quota.groups.get("students"), Some(&3_600_000.0));
    assert_eq!(config.quota.legacy_group.as_deref(), Some("legacy"));
    assert_eq!(config.quota.warning_seconds, 60.0);
    let unlimited = ServerConfig::from_toml_str(base).expect("valid");
    assert_eq!(unlimited.quota, QuotaSettings::default());
    for bad in [
        "[quota.groups]\nstudents = -1\n",
        "[quota]\nwarning_seconds = -5\n",
        "[quota]\nlegacy_group = \"no spaces\"\n",
        "[quota]\nlimit = 3\n",
    ] {
        assert!(
            ServerConfig::from_toml_str(&format!("{base}{bad}")).is_err(),
            "{bad}"
        );
    }
}
