//! Tests of the state file: what is committed loads back as the live
//! controller's records (a property test over random command sequences,
//! including reloads, BMP completions and restarts), damaged rows, schema
//! versions and the lock.

use super::*;
use crate::core::controller::ControllerSettings;
use crate::core::machine::Machine;
use proptest::prelude::*;
use serde_json::{json, Map};

const SETTINGS: ControllerSettings = ControllerSettings {
    max_retired_jobs: 4,
    seconds_before_free: 1.0,
};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("state.sqlite")
}

fn machines(width: u32, dead: bool) -> Vec<Machine> {
    let dead = if dead {
        "dead_boards = [[0, 0, 1]]\n"
    } else {
        ""
    };
    ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"m\"\nwidth = {width}\nheight = 2\nbase_ip = \"10.0.0.0\"\n{dead}"
    ))
    .expect("config")
    .machines
    .into_iter()
    .map(|m| m.machine)
    .collect()
}

fn spec(args: serde_json::Value) -> crate::core::job::JobSpec {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("keepalive".into(), json!(30.0));
    crate::cmd::create_job::parse(args.as_array().cloned().unwrap_or_default(), kwargs)
        .expect("spec")
}

/// One step of a random session.
#[derive(Debug, Clone)]
enum Step {
    Create(u8),
    Destroy(u8),
    Power(u8, bool),
    CompleteBmp(u8),
    FailBmp(u8),
    Tick(u8),
    Reload(u32, bool),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..4).prop_map(Step::Create),
        2 => any::<u8>().prop_map(Step::Destroy),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(j, on)| Step::Power(j, on)),
        3 => any::<u8>().prop_map(Step::CompleteBmp),
        1 => any::<u8>().prop_map(Step::FailBmp),
        1 => (0u8..50).prop_map(Step::Tick),
        1 => (2u32..4, any::<bool>()).prop_map(|(w, d)| Step::Reload(w, d)),
        1 => Just(Step::Restart),
    ]
}

/// Runs one step other than [`Step::Restart`] on the controller.
fn run_step(
    c: &mut Controller,
    config: &mut Vec<Machine>,
    outstanding: &mut Vec<u64>,
    s: &Step,
    now: &mut f64,
) {
    let ids: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
    let pick = |n: u8| ids.get(usize::from(n) % ids.len().max(1)).copied();
    match *s {
        Step::Create(kind) => {
            let args = [json!([]), json!([2]), json!([1, 1]), json!([0, 1, 2])];
            c.create_job(spec(args[usize::from(kind)].clone()), None, *now);
        }
        Step::Destroy(n) => {
            if let Some(id) = pick(n) {
                c.destroy_job(id, Some("bye".into()), *now);
            }
        }
        Step::Power(n, on) => {
            if let Some(id) = pick(n) {
                c.power_job(id, on, None, *now);
            }
        }
        Step::CompleteBmp(n) | Step::FailBmp(n) if !outstanding.is_empty() => {
            let i = usize::from(n) % outstanding.len();
            let id = outstanding.remove(i);
            let result = if matches!(s, Step::FailBmp(_)) {
                Err("bmp".into())
            } else {
                Ok(())
            };
            c.bmp_request_done(id, result, *now);
        }
        Step::CompleteBmp(_) | Step::FailBmp(_) | Step::Restart => {}
        Step::Tick(dt) => {
            *now += f64::from(dt);
            c.tick(*now);
        }
        Step::Reload(width, dead) => {
            *config = machines(width, dead);
            c.reconfigure(SETTINGS, config.clone(), *now);
        }
    }
}

/// Appends one change set to the journal under the next number.
fn journal_change(
    journal: &mut journal::Journal,
    seq: &mut u64,
    changes: RecordChanges,
    all: bool,
) -> (u64, RecordChanges, bool) {
    *seq += 1;
    journal.append(&[(*seq, &changes, all)]).expect("append");
    (*seq, changes, all)
}

fn commit(store: &mut Store, c: &mut Controller, all: bool) {
    store
        .commit(&[(c.take_record_changes(all), all)])
        .expect("commit");
}

/// The records without the allocator's renumbered allocation IDs.
fn comparable(r: &Records) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("json");
    for j in v["jobs"].as_array_mut().expect("jobs") {
        if j["allocation"].is_object() {
            j["allocation"]["allocation_id"] = json!(0);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn what_is_committed_loads_back_as_the_live_controllers_records(
        steps in proptest::collection::vec((step(), any::<bool>()), 1..40)
    ) {
        let path = temp("prop");
        let (mut store, _) = Store::open(&path, Synchronous::Normal).expect("open");
        let mut config = machines(2, false);
        let mut c = Controller::new(SETTINGS, config.clone());
        let mut outstanding: Vec<u64> = Vec::new();
        let mut now = 100.0;
        commit(&mut store, &mut c, true);
        // Change sets not committed yet: committed in groups, as the
        // writer does (each group written as its net effect).
        let mut group: Vec<(RecordChanges, bool)> = Vec::new();
        for (s, commit_now) in steps {
            now += 1.0;
            if matches!(s, Step::Restart) {
                drop(store);
                group.clear(); // never committed: lost with the server
                let (reopened, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
                store = reopened;
                let records = opened.records.expect("records");
                c = Controller::from_records(SETTINGS, records, config.clone(), now);
                outstanding.clear();
                commit(&mut store, &mut c, true);
            } else {
                run_step(&mut c, &mut config, &mut outstanding, &s, &mut now);
            }
            outstanding.extend(c.take_bmp_requests().into_iter().map(|r| r.id));
            group.push((c.take_record_changes(false), false));
            if !commit_now {
                continue;
            }
            store.commit(&group).expect("commit");
            group.clear();
            let (loaded, bad) = store.read().expect("read");
            prop_assert!(bad.is_empty(), "{bad:?}");
            let loaded = loaded.expect("records");
            prop_assert_eq!(comparable(&loaded), comparable(&c.records()));
            // And a controller rebuilt from them holds the same records.
            let rebuilt = Controller::from_records(SETTINGS, loaded, config.clone(), now);
            rebuilt.check_board_ownership().map_err(TestCaseError::fail)?;
            let live: Vec<u64> = c.live_jobs().map(|j| j.id).collect();
            let back: Vec<u64> = rebuilt.live_jobs().map(|j| j.id).collect();
            prop_assert_eq!(live, back);
        }
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn what_is_journaled_loads_back_whatever_part_of_it_the_tables_already_hold(
        steps in proptest::collection::vec((step(), any::<bool>(), any::<bool>()), 1..40)
    ) {
        // Change sets go to the journal as the writer's committer writes
        // them; now and then the tables take everything journaled so far,
        // as the applier does, but the journal is not emptied (a crash
        // between the two): a restart must apply exactly what the tables
        // lack, and a reader must see tables and journal together.
        let path = temp("prop-journal");
        let (mut store, opened) = Store::open(&path, Synchronous::Normal).expect("open");
        let mut journal = opened.journal;
        let mut seq = store.journal_seq();
        let mut unapplied: Vec<(RecordChanges, bool)> = Vec::new();
        let mut config = machines(2, false);
        let mut c = Controller::new(SETTINGS, config.clone());
        let mut outstanding: Vec<u64> = Vec::new();
        let mut now = 100.0;
        let (_, first, all) = journal_change(&mut journal, &mut seq, c.take_record_changes(true), true);
        unapplied.push((first, all));
        for (s, apply_now, restart_instead) in steps {
            now += 1.0;
            if matches!(s, Step::Restart) || (restart_instead && apply_now) {
                drop(store);
                drop(journal);
                unapplied.clear();
                let (reopened, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
                store = reopened;
                journal = opened.journal;
                prop_assert!(store.journal_seq() >= seq, "numbering never goes back");
                seq = store.journal_seq();
                let records = opened.records.expect("records");
                prop_assert_eq!(comparable(&records), comparable(&c.records()));
                c = Controller::from_records(SETTINGS, records, config.clone(), now);
                outstanding.clear();
                let (_, changes, all) = journal_change(&mut journal, &mut seq, c.take_record_changes(true), true);
                unapplied.push((changes, all));
                continue;
            }
            run_step(&mut c, &mut config, &mut outstanding, &s, &mut now);
            outstanding.extend(c.take_bmp_requests().into_iter().map(|r| r.id));
            let (_, changes, all) = journal_change(&mut journal, &mut seq, c.take_record_changes(false), false);
            unapplied.push((changes, all));
            if apply_now {
                let sets: Vec<(&RecordChanges, bool)> = unapplied.iter().map(|(c, a)| (c, *a)).collect();
                store.commit_through(&sets, Some(seq)).expect("apply");
                unapplied.clear();
            }
            let (seen, bad) = snapshot::read(&path).expect("snapshot");
            prop_assert!(bad.is_empty(), "{bad:?}");
            prop_assert_eq!(comparable(&seen.expect("records")), comparable(&c.records()));
        }
        drop(store);
        drop(journal);
        let (_, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
        prop_assert_eq!(comparable(&opened.records.expect("records")), comparable(&c.records()));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}

#[test]
fn a_damaged_job_row_drops_only_that_job_and_a_copy_is_kept() {
    let path = temp("badrow");
    let (mut store, _) = Store::open(&path, Synchronous::Normal).expect("open");
    let mut c = Controller::new(SETTINGS, machines(2, false));
    let a = c.create_job(spec(json!([])), None, 1.0);
    let b = c.create_job(spec(json!([])), None, 1.0);
    commit(&mut store, &mut c, true);
    store
        .conn
        .execute("UPDATE jobs SET record = '{broken' WHERE id = ?1", [b])
        .expect("damage");
    drop(store);
    let (_store, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
    assert_eq!(opened.damage.len(), 1, "{:?}", opened.damage);
    let records = opened.records.expect("records");
    assert_eq!(records.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [a]);
    assert!(records.next_job_id > b, "IDs never go back");
    let mut restored = Controller::from_records(SETTINGS, records, machines(2, false), 2.0);
    let s = restored.get_job_state(b, None, 2.0);
    assert_eq!(
        s.reason.as_deref(),
        Some(crate::core::controller::REASON_BAD_RECORD)
    );
    let copies = std::fs::read_dir(path.parent().expect("dir"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.sqlite.damaged-")
        })
        .count();
    assert_eq!(copies, 1);
}

#[test]
fn a_file_from_a_newer_release_is_refused_and_left_alone() {
    let path = temp("newer");
    {
        let conn = Connection::open(&path).expect("create");
        conn.pragma_update(None, "user_version", schema::current() + 1)
            .expect("version");
    }
    match Store::open(&path, Synchronous::Normal) {
        Err(StoreError::TooNew { found, .. }) => assert_eq!(found, schema::current() + 1),
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert!(path.exists(), "left where it was");
}

#[test]
fn a_second_store_on_one_file_is_refused() {
    let path = temp("twice");
    let _first = Store::open(&path, Synchronous::Full).expect("open");
    assert!(matches!(
        Store::open(&path, Synchronous::Normal),
        Err(StoreError::Lock(LockError::Held { .. }))
    ));
}

#[test]
fn default_state_path_is_hidden_beside_the_config() {
    assert_eq!(
        default_state_path(Path::new("/etc/spalloc/server.toml")),
        Path::new("/etc/spalloc/.server.toml.state.sqlite")
    );
}

#[test]
fn destroyed_jobs_tombstones_are_read_back_and_evicted_ones_deleted() {
    let path = temp("tombstones");
    let (mut store, _) = Store::open(&path, Synchronous::Normal).expect("open");
    let mut c = Controller::new(SETTINGS, machines(2, false));
    commit(&mut store, &mut c, true);
    let ids: Vec<u64> = (0..6)
        .map(|_| c.create_job(spec(json!([])), None, 100.0))
        .collect();
    for id in &ids {
        c.destroy_job(*id, Some("done".into()), 200.0);
    }
    commit(&mut store, &mut c, false);
    drop(store);
    let (_, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
    let records = opened.records.expect("records");
    // Only the newest `max_retired_jobs` are kept, in the file as in memory.
    let kept: Vec<u64> = records.tombstones.iter().map(|(id, _)| *id).collect();
    assert_eq!(kept, ids[2..]);
    let rebuilt = Controller::from_records(SETTINGS, records, machines(2, false), 300.0);
    let (reason, tombstone) = rebuilt.destroyed_job(ids[5]).expect("remembered");
    assert!(reason.is_some_and(|r| r.contains("done")), "{reason:?}");
    let tombstone = tombstone.expect("tombstone");
    assert_eq!(
        (tombstone.start_time, tombstone.finish_time),
        (100.0, 200.0)
    );
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn a_damaged_journal_keeps_the_changes_before_the_damage_and_a_copy_is_set_aside() {
    let path = temp("badjournal");
    let (store, opened) = Store::open(&path, Synchronous::Normal).expect("open");
    let mut journal = opened.journal;
    let mut seq = store.journal_seq();
    let mut c = Controller::new(SETTINGS, machines(2, false));
    let kept = c.create_job(spec(json!([])), None, 1.0);
    journal_change(&mut journal, &mut seq, c.take_record_changes(true), true);
    let lost = c.create_job(spec(json!([])), None, 1.0);
    journal_change(&mut journal, &mut seq, c.take_record_changes(false), false);
    let damaged_at = std::fs::metadata(journal.paths()[0])
        .expect("journal")
        .len()
        - 2;
    c.create_job(spec(json!([])), None, 1.0);
    journal_change(&mut journal, &mut seq, c.take_record_changes(false), false);
    let file = journal.paths()[0].to_owned();
    drop(journal);
    drop(store);
    let mut bytes = std::fs::read(&file).expect("read");
    // Inside the second entry's payload, with a valid third one after it.
    bytes[damaged_at as usize] ^= 0x55;
    std::fs::write(&file, &bytes).expect("write");

    let (_store, opened) = Store::open(&path, Synchronous::Normal).expect("reopen");
    assert_eq!(opened.damage.len(), 1, "{:?}", opened.damage);
    assert!(opened.damage[0].contains("checksum"), "{:?}", opened.damage);
    let ids: Vec<u64> = opened
        .records
        .expect("records")
        .jobs
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        ids,
        [kept],
        "job {lost} was in the damaged entry, the next one after it"
    );
    let copies: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.sqlite.changes-0.damaged-"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let left = journal::Journal::read_only(&path).expect("journal");
    assert!(
        left.entries.is_empty() && left.damaged.is_empty(),
        "the journal starts empty again"
    );
}

#[test]
fn a_writer_leaves_everything_in_the_tables_and_an_empty_journal_when_it_stops() {
    let path = temp("writer-stop");
    let (store, opened) = Store::open(&path, Synchronous::Normal).expect("open");
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&reports);
    let writer = writer::Writer::spawn(
        store,
        opened.journal,
        None,
        Vec::new(),
        Box::new(move |seq, result| sink.lock().expect("reports").push((seq, result))),
    );
    let mut c = Controller::new(SETTINGS, machines(2, false));
    writer.submit(1, c.take_record_changes(true), true);
    let ids: Vec<u64> = (0..3)
        .map(|_| c.create_job(spec(json!([])), None, 1.0))
        .collect();
    writer.submit(2, c.take_record_changes(false), false);
    writer.commit_pending();
    assert_eq!(*reports.lock().expect("reports"), vec![(2, Ok(()))]);
    drop(writer);
    let left = journal::Journal::read_only(&path).expect("journal");
    assert!(left.entries.is_empty() && left.damaged.is_empty());
    let conn = Connection::open(&path).expect("sqlite");
    let (records, _) = read_records(&conn).expect("read");
    let stored: Vec<u64> = records
        .expect("records")
        .jobs
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(stored, ids);
}
