//! Applying a reloaded configuration to a running controller
//! (spalloc-server.md §4.10 and §7.2).
//!
//! Machines of the old and new configurations are matched by name:
//!
//! * a machine only in the new configuration is **added** (lowest priority
//!   until the final re-sort);
//! * a machine only in the old one is **removed**: its allocated jobs are
//!   destroyed with `Machine removed.` through the normal teardown (power-off
//!   requests to its BMPs), and its queued jobs are re-queued elsewhere or
//!   cancelled if nothing else can run them;
//! * a machine in both with a different width, height, board locations,
//!   BMP or board addresses is **changed**: removed, then added again;
//! * a machine in both differing only in tags, dead boards or dead links is
//!   **modified** in place: allocations continue and queued jobs are
//!   re-evaluated;
//! * an equal machine is left alone.
//!
//! After any add, change, modification or removal the queues are regenerated
//! once: cleared, then every queued job is re-enqueued in creation order (so
//! FIFO order survives), which may allocate it, and a job no machine can run
//! any more is cancelled with `No suitable machines available.`. Finally the
//! machines are re-sorted into the new configuration's priority order.
//!
//! Unlike the reference, nothing here can fail half-way: the configuration is
//! validated (and its BMPs checked) by the caller before this runs, and this
//! step only moves state around.

use crate::core::controller::{Controller, ControllerSettings, REASON_NO_MACHINE};
use crate::core::machine::Machine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The reason given to allocated jobs whose machine left the configuration
/// (or was reshaped), as the reference.
pub const MACHINE_REMOVED: &str = "Machine removed.";

/// How a machine present in both configurations differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineChange {
    /// Equal: nothing happens.
    Same,
    /// Only tags, dead boards or dead links differ: modified in place.
    Minor,
    /// The shape, board locations or addresses differ: removed and re-added.
    Major,
}

/// Classifies the difference between the old and new description of a
/// machine of the same name.
pub fn machine_change(old: &Machine, new: &Machine) -> MachineChange {
    if old == new {
        MachineChange::Same
    } else if old.width != new.width
        || old.height != new.height
        || old.board_locations != new.board_locations
        || old.bmp_ips != new.bmp_ips
        || old.spinnaker_ips != new.spinnaker_ips
    {
        MachineChange::Major
    } else {
        MachineChange::Minor
    }
}

/// What a reconfiguration did (or, from [`Controller::plan_reconfigure`],
/// would do to the machines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Machines that are new, in the new configuration's order.
    pub added: Vec<String>,
    /// Machines reshaped (a major change): removed and added again, in the
    /// new configuration's order.
    pub changed: Vec<String>,
    /// Machines whose tags, dead boards or dead links changed, kept in place,
    /// in the new configuration's order.
    pub modified: Vec<String>,
    /// Machines no longer configured, in their old priority order.
    pub removed: Vec<String>,
    /// Whether the priority order of the machines changed.
    pub reordered: bool,
    /// Allocated jobs destroyed with `Machine removed.`, in ID order.
    pub destroyed_jobs: Vec<u64>,
    /// Queued jobs cancelled because no machine can run them any more.
    pub cancelled_jobs: Vec<u64>,
}

impl ReconfigureReport {
    /// Whether no machine was added, changed, modified, removed or
    /// re-ordered.
    pub fn is_unchanged(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.modified.is_empty()
            && self.removed.is_empty()
            && !self.reordered
    }

    /// Machines whose BMP set-up is new: added and changed ones.
    pub fn new_machines(&self) -> impl Iterator<Item = &String> {
        self.added.iter().chain(&self.changed)
    }

    /// Machines whose old BMP set-up is gone: removed and changed ones.
    pub fn gone_machines(&self) -> impl Iterator<Item = &String> {
        self.removed.iter().chain(&self.changed)
    }

    /// Every machine name reported in `machines_changed`: added, changed,
    /// modified and removed.
    pub fn touched_machines(&self) -> impl Iterator<Item = &String> {
        self.added
            .iter()
            .chain(&self.changed)
            .chain(&self.modified)
            .chain(&self.removed)
    }
}

impl Controller {
    /// Classifies the machines of a new configuration against the current
    /// ones without changing anything (no jobs are listed).
    pub fn plan_reconfigure(&self, machines: &[Machine]) -> ReconfigureReport {
        let old: BTreeMap<&str, &Arc<Machine>> = self
            .queue
            .machines()
            .map(|m| (m.name.as_str(), m))
            .collect();
        let mut report = ReconfigureReport::default();
        for new in machines {
            match old.get(new.name.as_str()) {
                None => report.added.push(new.name.clone()),
                Some(old) => match machine_change(old, new) {
                    MachineChange::Same => {}
                    MachineChange::Minor => report.modified.push(new.name.clone()),
                    MachineChange::Major => report.changed.push(new.name.clone()),
                },
            }
        }
        report.removed = self
            .queue
            .machines()
            .filter(|m| !machines.iter().any(|n| n.name == m.name))
            .map(|m| m.name.clone())
            .collect();
        let old_order: Vec<&str> = self
            .queue
            .machines()
            .map(|m| m.name.as_str())
            .filter(|n| machines.iter().any(|m| m.name == *n))
            .collect();
        let new_order: Vec<&str> = machines
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| old.contains_key(n))
            .collect();
        report.reordered = old_order != new_order;
        report
    }

    /// Applies a reloaded configuration: new settings (`max_retired_jobs`
    /// trims the retired-job cache at once; `seconds_before_free` applies to
    /// allocators created from now on) and the new machines, highest
    /// priority first, with the reference's semantics (see the module
    /// documentation). Machine names must be unique, as a validated
    /// configuration guarantees.
    ///
    /// Every added, changed, modified and removed machine is reported as
    /// changed to `notify_machine` watchers; destroyed and cancelled jobs to
    /// `notify_job` watchers. Power-off requests for destroyed jobs leave
    /// through [`Controller::take_bmp_requests`] as usual, addressed to the
    /// old machine's BMPs.
    pub fn reconfigure(
        &mut self,
        settings: ControllerSettings,
        machines: Vec<Machine>,
        now: f64,
    ) -> ReconfigureReport {
        self.jobs.set_clock(now);
        let mut report = self.plan_reconfigure(&machines);
        if settings != self.settings || !report.is_unchanged() {
            // Saved at the next flush, even if no job changes.
            self.machines_changed();
        }
        self.settings = settings;
        self.retired.set_capacity(settings.max_retired_jobs);
        self.tombstones.set_capacity(settings.max_retired_jobs);
        if report.is_unchanged() {
            return report;
        }

        // Removed and reshaped machines, in old priority order: stop
        // allocating on them, tear their jobs down while their BMP details
        // are still known, then drop them.
        let gone: Vec<String> = self
            .queue
            .machines()
            .filter(|m| report.gone_machines().any(|n| *n == m.name))
            .map(|m| m.name.clone())
            .collect();
        for name in &gone {
            self.queue.close_machine(name);
            for job_id in self.queue.allocated_on(name) {
                if self.jobs.is_live(job_id) {
                    self.destroy_job(job_id, Some(MACHINE_REMOVED.to_owned()), now);
                    report.destroyed_jobs.push(job_id);
                }
            }
            self.queue.remove_machine(name);
        }

        let seconds_before_free = settings.seconds_before_free;
        for machine in &machines {
            if report.modified.contains(&machine.name) {
                self.queue.modify_machine(Arc::new(machine.clone()));
            } else if report.new_machines().any(|n| *n == machine.name) {
                self.queue
                    .add_machine(Arc::new(machine.clone()), seconds_before_free);
            }
        }
        let order: Vec<String> = machines.iter().map(|m| m.name.clone()).collect();
        self.queue.reorder(&order);

        let (placed, impossible) = self.queue.regenerate(now);
        for job_id in impossible {
            if self.jobs.is_live(job_id) {
                self.destroy_job(job_id, Some(REASON_NO_MACHINE.to_owned()), now);
                report.cancelled_jobs.push(job_id);
            }
        }
        self.on_placed(placed);

        let touched: Vec<String> = report.touched_machines().cloned().collect();
        self.changed_machines.extend(touched);
        report.destroyed_jobs.sort_unstable();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::create_job;
    use crate::config::ServerConfig;
    use spalloc_protocol::JobState;

    const SETTINGS: ControllerSettings = ControllerSettings {
        max_retired_jobs: 100,
        seconds_before_free: 0.0,
    };

    /// A simulated machine; `extra` is more TOML keys.
    fn machine(name: &str, width: u32, height: u32, tags: &[&str], extra: &str) -> Machine {
        let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
        let text = format!(
            "[[machine]]\nname = {name:?}\nwidth = {width}\nheight = {height}\n\
             tags = [{}]\nbase_ip = \"10.{}.0.0\"\n{extra}\n",
            tags.join(","),
            name.len()
        );
        ServerConfig::from_toml_str(&text)
            .expect("test machine")
            .machines
            .remove(0)
            .machine
    }

    fn job(c: &mut Controller, args: serde_json::Value, kwargs: serde_json::Value) -> u64 {
        let mut kw = kwargs.as_object().cloned().unwrap_or_default();
        kw.insert("owner".into(), "me".into());
        let spec =
            create_job::parse(args.as_array().cloned().unwrap_or_default(), kw).expect("valid job");
        c.create_job(spec, None, 0.0)
    }

    fn complete_bmp(c: &mut Controller) {
        loop {
            let requests = c.take_bmp_requests();
            if requests.is_empty() {
                return;
            }
            for r in requests {
                c.bmp_request_done(r.id, Ok(()), 1.0);
            }
        }
    }

    fn state(c: &mut Controller, id: u64) -> (JobState, Option<String>) {
        let s = c.get_job_state(id, None, 1.0);
        (s.state, s.reason)
    }

    fn machine_of(c: &mut Controller, id: u64) -> Option<String> {
        c.get_job_machine_info(id, None, 1.0).machine_name
    }

    fn names(c: &Controller) -> Vec<String> {
        c.machines().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn machine_changes_are_classified() {
        let a = machine("a", 2, 1, &["default"], "");
        assert_eq!(machine_change(&a, &a.clone()), MachineChange::Same);
        let tags = machine("a", 2, 1, &["x"], "");
        assert_eq!(machine_change(&a, &tags), MachineChange::Minor);
        let dead = machine("a", 2, 1, &["default"], "dead_boards = [[0, 0, 1]]");
        assert_eq!(machine_change(&a, &dead), MachineChange::Minor);
        let links = machine(
            "a",
            2,
            1,
            &["default"],
            "dead_links = [[0, 0, 1, \"north\"]]",
        );
        assert_eq!(machine_change(&a, &links), MachineChange::Minor);
        let wide = machine("a", 3, 1, &["default"], "");
        assert_eq!(machine_change(&a, &wide), MachineChange::Major);
    }

    #[test]
    fn an_unchanged_config_changes_nothing() {
        let mut c = Controller::new(SETTINGS, vec![machine("a", 1, 1, &["default"], "")]);
        let held = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let queued = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        complete_bmp(&mut c);
        c.take_changes();
        let report = c.reconfigure(SETTINGS, vec![machine("a", 1, 1, &["default"], "")], 1.0);
        assert!(report.is_unchanged(), "{report:?}");
        assert!(c.take_changes().is_empty());
        assert!(c.take_bmp_requests().is_empty());
        assert_eq!(state(&mut c, held).0, JobState::Ready);
        assert_eq!(state(&mut c, queued).0, JobState::Queued);
    }

    #[test]
    fn changed_tags_modify_in_place() {
        let mut c = Controller::new(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default", "old"], ""),
                machine("b", 1, 1, &["other"], ""),
            ],
        );
        let held = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        // Waits on "a" (tag "old"), which "a" loses.
        let orphan = job(
            &mut c,
            serde_json::json!([1, 1]),
            serde_json::json!({"tags": ["old"]}),
        );
        // Waits on "a" behind `orphan`; "b" gains its tag later.
        let wants_new = job(&mut c, serde_json::json!([]), serde_json::json!({}));
        complete_bmp(&mut c);
        assert_eq!(state(&mut c, wants_new).0, JobState::Queued);
        c.take_changes();

        // "a" loses "old"; "b" gains "default", so the queued single-board
        // job gets "b".
        let report = c.reconfigure(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default"], ""),
                machine("b", 1, 1, &["other", "default"], ""),
            ],
            2.0,
        );
        assert_eq!(report.modified, ["a", "b"]);
        assert!(report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty());
        assert!(report.destroyed_jobs.is_empty());
        assert_eq!(report.cancelled_jobs, [orphan]);
        assert_eq!(
            state(&mut c, held).0,
            JobState::Ready,
            "allocated job continues"
        );
        assert_eq!(machine_of(&mut c, held).as_deref(), Some("a"));
        assert_eq!(
            state(&mut c, orphan),
            (
                JobState::Destroyed,
                Some("Cancelled: No suitable machines available.".into())
            )
        );
        assert_eq!(machine_of(&mut c, wants_new).as_deref(), Some("b"));
        let changes = c.take_changes();
        assert_eq!(
            changes.machines,
            ["a".to_owned(), "b".to_owned()].into_iter().collect()
        );
        assert!(changes.jobs.contains(&orphan) && changes.jobs.contains(&wants_new));
        assert_eq!(c.list_machines()[1].tags, ["default", "other"]);
    }

    #[test]
    fn changed_dead_boards_modify_in_place() {
        let mut c = Controller::new(SETTINGS, vec![machine("a", 1, 1, &["default"], "")]);
        let held = job(&mut c, serde_json::json!([]), serde_json::json!({}));
        complete_bmp(&mut c);
        let boards = c.get_job_machine_info(held, None, 1.0).boards.unwrap();
        assert_eq!(boards, [[0, 0, 0]]);
        let report = c.reconfigure(
            SETTINGS,
            vec![machine(
                "a",
                1,
                1,
                &["default"],
                "dead_boards = [[0, 0, 1]]",
            )],
            1.0,
        );
        assert_eq!(report.modified, ["a"]);
        assert_eq!(state(&mut c, held).0, JobState::Ready);
        // The next single board skips the newly dead one.
        let next = job(&mut c, serde_json::json!([]), serde_json::json!({}));
        complete_bmp(&mut c);
        let boards = c.get_job_machine_info(next, None, 1.0).boards.unwrap();
        assert_eq!(boards, [[0, 0, 2]]);
        assert_eq!(c.list_machines()[0].dead_boards, [[0, 0, 1]]);
        // The whole machine can never be had now.
        let whole = job(
            &mut c,
            serde_json::json!([1, 1]),
            serde_json::json!({"max_dead_boards": 0}),
        );
        assert_eq!(state(&mut c, whole).0, JobState::Destroyed);
    }

    #[test]
    fn a_reshaped_machine_destroys_its_jobs_and_requeues_the_queued_ones() {
        let mut c = Controller::new(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default"], ""),
                machine("b", 1, 1, &["default"], ""),
            ],
        );
        let on_a = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let on_b = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let queued = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let only_a = job(
            &mut c,
            serde_json::json!([2, 1]),
            serde_json::json!({"machine": "a"}),
        );
        assert_eq!(state(&mut c, only_a).0, JobState::Destroyed, "a is 1x1");
        complete_bmp(&mut c);
        assert_eq!(machine_of(&mut c, on_a).as_deref(), Some("a"));
        c.take_changes();

        let report = c.reconfigure(
            SETTINGS,
            vec![
                machine("a", 2, 1, &["default"], ""),
                machine("b", 1, 1, &["default"], ""),
            ],
            2.0,
        );
        assert_eq!(report.changed, ["a"]);
        assert_eq!(report.destroyed_jobs, [on_a]);
        assert_eq!(
            state(&mut c, on_a),
            (JobState::Destroyed, Some(MACHINE_REMOVED.into()))
        );
        // Its boards are powered off through the old machine's BMP.
        let off = c.take_bmp_requests();
        assert!(off
            .iter()
            .any(|r| r.job_id == on_a && !r.power && r.machine == "a"));
        // The queued job gets the new, empty "a" at once.
        assert_eq!(machine_of(&mut c, queued).as_deref(), Some("a"));
        assert_eq!(state(&mut c, on_b).0, JobState::Ready);
        for r in off {
            c.bmp_request_done(r.id, Ok(()), 3.0);
        }
        complete_bmp(&mut c);
        assert_eq!(state(&mut c, queued).0, JobState::Ready);
        // Releasing the old allocation freed nothing on the new machine.
        let other = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        complete_bmp(&mut c);
        assert_eq!(machine_of(&mut c, other).as_deref(), Some("a"));
        let boards = c.get_job_machine_info(other, None, 4.0).boards.unwrap();
        assert_eq!(boards[0][0], 1, "x = 1: the other triad");
        assert!(c.take_changes().machines.contains("a"));
    }

    #[test]
    fn a_removed_machine_destroys_its_jobs_and_cancels_what_cannot_move() {
        let mut c = Controller::new(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default"], ""),
                machine("b", 1, 1, &["default"], ""),
            ],
        );
        let on_a = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let on_b = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let queued_any = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let queued_a = job(
            &mut c,
            serde_json::json!([1, 1]),
            serde_json::json!({"machine": "a"}),
        );
        complete_bmp(&mut c);
        c.take_changes();
        let report = c.reconfigure(SETTINGS, vec![machine("b", 1, 1, &["default"], "")], 2.0);
        assert_eq!(report.removed, ["a"]);
        assert_eq!(report.destroyed_jobs, [on_a]);
        assert_eq!(report.cancelled_jobs, [queued_a]);
        assert_eq!(
            state(&mut c, on_a),
            (JobState::Destroyed, Some(MACHINE_REMOVED.into()))
        );
        assert_eq!(
            state(&mut c, queued_a).1.as_deref(),
            Some("Cancelled: No suitable machines available.")
        );
        assert_eq!(state(&mut c, on_b).0, JobState::Ready);
        assert_eq!(state(&mut c, queued_any).0, JobState::Queued);
        assert_eq!(names(&c), ["b"]);
        let changes = c.take_changes();
        assert!(changes.machines.contains("a"));
        complete_bmp(&mut c);
        // Boards of the removed machine never come back anywhere.
        c.destroy_job(on_b, None, 3.0);
        complete_bmp(&mut c);
        c.tick(3.0);
        complete_bmp(&mut c);
        assert_eq!(machine_of(&mut c, queued_any).as_deref(), Some("b"));
    }

    #[test]
    fn an_added_machine_takes_queued_jobs() {
        let mut c = Controller::new(SETTINGS, vec![machine("a", 1, 1, &["default"], "")]);
        let held = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let queued = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        complete_bmp(&mut c);
        c.take_changes();
        let report = c.reconfigure(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default"], ""),
                machine("new", 1, 1, &["default"], ""),
            ],
            2.0,
        );
        assert_eq!(report.added, ["new"]);
        assert!(!report.reordered);
        assert_eq!(machine_of(&mut c, held).as_deref(), Some("a"));
        assert_eq!(machine_of(&mut c, queued).as_deref(), Some("new"));
        let power_on = c.take_bmp_requests();
        assert!(power_on.iter().all(|r| r.machine == "new" && r.power));
        assert!(c.take_changes().machines.contains("new"));
    }

    #[test]
    fn priority_follows_the_new_order() {
        let mut c = Controller::new(
            SETTINGS,
            vec![
                machine("a", 1, 1, &["default"], ""),
                machine("b", 1, 1, &["default"], ""),
            ],
        );
        let report = c.reconfigure(
            SETTINGS,
            vec![
                machine("b", 1, 1, &["default"], ""),
                machine("a", 1, 1, &["default"], ""),
            ],
            0.0,
        );
        assert!(report.reordered);
        assert!(report.touched_machines().next().is_none());
        assert_eq!(names(&c), ["b", "a"]);
        let first = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        assert_eq!(machine_of(&mut c, first).as_deref(), Some("b"));
        // An added machine lands where the configuration puts it.
        c.reconfigure(
            SETTINGS,
            vec![
                machine("c", 1, 1, &["default"], ""),
                machine("b", 1, 1, &["default"], ""),
                machine("a", 1, 1, &["default"], ""),
            ],
            0.0,
        );
        assert_eq!(names(&c), ["c", "b", "a"]);
        let second = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        assert_eq!(machine_of(&mut c, second).as_deref(), Some("c"));
    }

    #[test]
    fn queued_jobs_keep_their_fifo_order() {
        let mut c = Controller::new(SETTINGS, vec![machine("a", 1, 1, &["default"], "")]);
        let held = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let first = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        let second = job(&mut c, serde_json::json!([]), serde_json::json!({}));
        let third = job(&mut c, serde_json::json!([1, 1]), serde_json::json!({}));
        complete_bmp(&mut c);
        assert_eq!(c.queue_position(first), Some(0));
        assert_eq!(c.queue_position(third), Some(2));
        // A minor change regenerates the queues: the order is the same.
        c.reconfigure(
            SETTINGS,
            vec![machine("a", 1, 1, &["default", "x"], "")],
            1.0,
        );
        assert_eq!(c.queue_position(first), Some(0));
        assert_eq!(c.queue_position(second), Some(1));
        assert_eq!(c.queue_position(third), Some(2));
        c.destroy_job(held, None, 2.0);
        complete_bmp(&mut c);
        c.tick(2.0);
        assert_eq!(machine_of(&mut c, first).as_deref(), Some("a"));
        assert_eq!(state(&mut c, second).0, JobState::Queued);
    }

    #[test]
    fn settings_apply_at_once() {
        let mut c = Controller::new(SETTINGS, vec![machine("a", 1, 1, &["default"], "")]);
        let ids: Vec<u64> = (0..3)
            .map(|_| job(&mut c, serde_json::json!([5, 5]), serde_json::json!({})))
            .collect();
        let settings = ControllerSettings {
            max_retired_jobs: 1,
            seconds_before_free: 7.0,
        };
        let report = c.reconfigure(settings, vec![machine("a", 1, 1, &["default"], "")], 1.0);
        assert!(report.is_unchanged());
        assert_eq!(c.settings(), settings);
        assert_eq!(state(&mut c, ids[0]).0, JobState::Unknown, "trimmed");
        assert_eq!(state(&mut c, ids[2]).0, JobState::Destroyed);
    }
}
