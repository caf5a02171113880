//! Which clients want to hear about which jobs and machines.
//!
//! Each client has at most one job watch and one machine watch: either
//! "everything" or a set of IDs or names (spalloc-server.md §2.5 `notify_*`).
//! Given the changes of one round, [`Watches::notifications`] says what to
//! send to whom: the whole change set to clients watching everything, the
//! intersection to the others, nothing where it is empty.

use spalloc_protocol::Notification;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// An opaque client identifier chosen by the shell.
pub type ClientId = u64;

/// One client's watch over one kind of thing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Watch<T> {
    All,
    Some(BTreeSet<T>),
}

#[derive(Debug, Clone)]
struct WatchTable<T> {
    by_client: HashMap<ClientId, Watch<T>>,
}

impl<T> Default for WatchTable<T> {
    fn default() -> Self {
        WatchTable {
            by_client: HashMap::new(),
        }
    }
}

impl<T: Ord + Clone + Eq + Hash> WatchTable<T> {
    fn notify(&mut self, client: ClientId, item: Option<T>) {
        match item {
            None => {
                self.by_client.insert(client, Watch::All);
            }
            Some(item) => match self
                .by_client
                .entry(client)
                .or_insert_with(|| Watch::Some(BTreeSet::new()))
            {
                Watch::All => {}
                Watch::Some(set) => {
                    set.insert(item);
                }
            },
        }
    }

    fn no_notify(&mut self, client: ClientId, item: Option<T>) {
        match item {
            None => {
                self.by_client.remove(&client);
            }
            Some(item) => {
                if let Some(Watch::Some(set)) = self.by_client.get_mut(&client) {
                    set.remove(&item);
                    if set.is_empty() {
                        self.by_client.remove(&client);
                    }
                }
            }
        }
    }

    fn matches(&self, changed: &BTreeSet<T>) -> Vec<(ClientId, Vec<T>)> {
        if changed.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<(ClientId, Vec<T>)> = self
            .by_client
            .iter()
            .filter_map(|(client, watch)| {
                let items: Vec<T> = match watch {
                    Watch::All => changed.iter().cloned().collect(),
                    Watch::Some(set) => set.intersection(changed).cloned().collect(),
                };
                (!items.is_empty()).then_some((*client, items))
            })
            .collect();
        out.sort_by_key(|(c, _)| *c);
        out
    }
}

/// Every client's job and machine watches.
#[derive(Debug, Clone, Default)]
pub struct Watches {
    jobs: WatchTable<u64>,
    machines: WatchTable<String>,
}

impl Watches {
    /// `notify_job(job_id)`: `None` watches every job.
    pub fn notify_job(&mut self, client: ClientId, job: Option<u64>) {
        self.jobs.notify(client, job);
    }

    /// `no_notify_job(job_id)`: `None` removes the whole watch.
    pub fn no_notify_job(&mut self, client: ClientId, job: Option<u64>) {
        self.jobs.no_notify(client, job);
    }

    /// `notify_machine(name)`: `None` watches every machine.
    pub fn notify_machine(&mut self, client: ClientId, machine: Option<String>) {
        self.machines.notify(client, machine);
    }

    /// `no_notify_machine(name)`: `None` removes the whole watch.
    pub fn no_notify_machine(&mut self, client: ClientId, machine: Option<String>) {
        self.machines.no_notify(client, machine);
    }

    /// Forgets a client that disconnected.
    pub fn remove_client(&mut self, client: ClientId) {
        self.jobs.by_client.remove(&client);
        self.machines.by_client.remove(&client);
    }

    /// Whether anyone watches anything (so callers can skip work).
    pub fn is_empty(&self) -> bool {
        self.jobs.by_client.is_empty() && self.machines.by_client.is_empty()
    }

    /// The notifications to send for one round of changes, in client order
    /// (jobs before machines for each client).
    pub fn notifications(
        &self,
        changed_jobs: &BTreeSet<u64>,
        changed_machines: &BTreeSet<String>,
    ) -> Vec<(ClientId, Notification)> {
        let mut out: Vec<(ClientId, Notification)> = self
            .jobs
            .matches(changed_jobs)
            .into_iter()
            .map(|(c, ids)| (c, Notification::JobsChanged(ids)))
            .collect();
        out.extend(
            self.machines
                .matches(changed_machines)
                .into_iter()
                .map(|(c, names)| (c, Notification::MachinesChanged(names))),
        );
        out.sort_by_key(|(c, _)| *c);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn all_and_subsets() {
        let mut w = Watches::default();
        w.notify_job(1, None);
        w.notify_job(2, Some(5));
        w.notify_job(2, Some(6));
        let n = w.notifications(&ids(&[5, 7]), &BTreeSet::new());
        assert_eq!(
            n,
            vec![
                (1, Notification::JobsChanged(vec![5, 7])),
                (2, Notification::JobsChanged(vec![5])),
            ]
        );
        assert!(w.notifications(&ids(&[9]), &BTreeSet::new()).len() == 1);
    }

    #[test]
    fn register_and_unregister_semantics() {
        let mut w = Watches::default();
        // Adding an ID to an "all" watch keeps it "all".
        w.notify_job(1, None);
        w.notify_job(1, Some(3));
        assert_eq!(w.notifications(&ids(&[4]), &BTreeSet::new()).len(), 1);
        // Removing an ID from an "all" watch is a no-op.
        w.no_notify_job(1, Some(4));
        assert_eq!(w.notifications(&ids(&[4]), &BTreeSet::new()).len(), 1);
        // Removing the last ID deletes the watch.
        w.notify_job(2, Some(8));
        w.no_notify_job(2, Some(8));
        assert_eq!(w.notifications(&ids(&[8]), &BTreeSet::new()).len(), 1);
        w.no_notify_job(1, None);
        assert!(w.notifications(&ids(&[4]), &BTreeSet::new()).is_empty());
        w.notify_machine(3, Some("m".into()));
        let changed: BTreeSet<String> = ["m".to_owned(), "n".to_owned()].into();
        assert_eq!(
            w.notifications(&BTreeSet::new(), &changed),
            vec![(3, Notification::MachinesChanged(vec!["m".into()]))]
        );
        w.remove_client(3);
        assert!(w.is_empty());
    }
}
