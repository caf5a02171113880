//! Tests of the rule "nothing leaves before the change it reports is
//! committed", on a [`State`] whose writer commits only when told.

use super::*;
use crate::core::controller::ControllerSettings;
use crate::store::{Store, Synchronous};
use serde_json::{json, Map};
use std::sync::Arc;

fn config(machines: &[&str]) -> ServerConfig {
    let mut text = String::new();
    for (i, name) in machines.iter().enumerate() {
        text.push_str(&format!(
            "[[machine]]\nname = \"{name}\"\ntags = [\"{name}\"]\nwidth = 1\nheight = 1\n\
             base_ip = \"10.{i}.0.0\"\npower_delay = 60.0\n"
        ));
    }
    ServerConfig::from_toml_str(&text).expect("config")
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-shared-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("state.sqlite")
}

type Reports = Arc<Mutex<Vec<(u64, Result<(), String>)>>>;

/// A state over a fresh state file whose writer's reports are collected
/// (not applied: the test applies them when it chooses).
fn state(config: &ServerConfig, name: &str) -> (State, Writer, Reports) {
    let (store, opened) = Store::open(&temp(name), Synchronous::Normal).expect("store");
    let reports: Reports = Arc::default();
    let sink = Arc::clone(&reports);
    let writer = Writer::spawn(
        store,
        opened.journal,
        None,
        Vec::new(),
        Box::new(move |seq, result| {
            sink.lock().expect("reports").push((seq, result));
        }),
    );
    let bmp = BmpDispatcher::new(config, tokio::runtime::Handle::current());
    let state = State::new(Service::new(config), bmp, Some(writer.clone()));
    (state, writer, reports)
}

/// Commits what is queued and hands the reports to the state.
fn commit(state: &mut State, writer: &Writer, reports: &Reports) {
    writer.commit_pending();
    for (seq, result) in std::mem::take(&mut *reports.lock().expect("reports")) {
        state.committed(seq, result);
    }
    state.flush();
}

/// The BMP requests held for a commit, as (job, power).
fn held_bmp(state: &State) -> Vec<(u64, bool)> {
    state
        .journal
        .as_ref()
        .expect("journal")
        .waiting
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Bmp(r) => Some((r.job_id, r.power)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_reloads_power_offs_and_new_back_ends_wait_for_its_commit() {
    let before = config(&["keep", "gone"]);
    let (mut state, writer, reports) = state(&before, "reload");
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("me"));
    kwargs.insert("machine".into(), json!("gone"));
    let spec = crate::cmd::create_job::parse(vec![], kwargs).expect("spec");
    let job = state.service.controller.create_job(spec, None, 1.0);
    state.flush();
    commit(&mut state, &writer, &reports);
    assert!(state.is_committed());

    let after = config(&["keep"]);
    let settings = ControllerSettings {
        max_retired_jobs: after.max_retired_jobs,
        seconds_before_free: after.seconds_before_free,
    };
    let machines = after.machines.iter().map(|m| m.machine.clone()).collect();
    let report = crate::server::reload::apply_to_state(&mut state, &after, settings, machines, &[]);
    assert_eq!(report.destroyed_jobs, [job]);
    state.flush();

    assert!(
        !state.is_committed(),
        "the job's destruction is being saved"
    );
    assert_eq!(
        held_bmp(&state),
        [(job, false)],
        "the power-off waits for the commit"
    );
    assert!(
        state.bmp.backend("gone").is_some(),
        "the old back ends are kept until the commit"
    );

    commit(&mut state, &writer, &reports);
    assert!(state.is_committed());
    assert!(held_bmp(&state).is_empty(), "the power-off has left");
    assert!(
        state.bmp.backend("gone").is_none(),
        "the new back ends are adopted after the power-off left"
    );
    assert!(state.bmp.backend("keep").is_some());
}
