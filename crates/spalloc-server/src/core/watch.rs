//! Which clients want to hear about which jobs and machines.
//!
//! Each client has at most one job watch and one machine watch: either
//! "everything" or a set of IDs or names (spalloc-server.md §2.5 `notify_*`).
//! Given the changes of one round, [`Watches::notifications`] says what to
//! send to whom: the whole change set to clients watching everything, the
//! intersection to the others, nothing where it is empty.
//!
//! A client's sets are bounded ([`MAX_WATCHES_PER_CLIENT`]), and the
//! command layer only records IDs and names that can still change (live
//! jobs, configured machines), so one connection cannot make the server's
//! memory grow; all of it goes with the connection
//! ([`Watches::remove_client`]).

use spalloc_protocol::Notification;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// An opaque client identifier chosen by the shell.
pub type ClientId = u64;

/// The most job IDs, and the most machine names, one client may watch one
/// by one (watching everything costs nothing per item).
pub const MAX_WATCHES_PER_CLIENT: usize = 1024;

/// A client already watches [`MAX_WATCHES_PER_CLIENT`] items of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many {what} watched by this connection (at most {limit}); watch them all instead \
     (notify_job() or notify_machine() with no argument)"
)]
pub struct TooManyWatches {
    /// "jobs" or "machines".
    pub what: &'static str,
    /// The limit.
    pub limit: usize,
}

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
    /// Adds a watch; with a full set, first forgets the items `relevant`
    /// rejects (such as jobs that have ended), then refuses if still full.
    fn notify(
        &mut self,
        client: ClientId,
        item: Option<T>,
        what: &'static str,
        relevant: impl Fn(&T) -> bool,
    ) -> Result<(), TooManyWatches> {
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
                    if set.len() >= MAX_WATCHES_PER_CLIENT && !set.contains(&item) {
                        set.retain(|i| relevant(i));
                        if set.len() >= MAX_WATCHES_PER_CLIENT {
                            return Err(TooManyWatches {
                                what,
                                limit: MAX_WATCHES_PER_CLIENT,
                            });
                        }
                    }
                    set.insert(item);
                }
            },
        }
        Ok(())
    }

    fn remove_client(&mut self, client: ClientId) {
        self.by_client.remove(&client);
        // The table itself shrinks back after a crowd of clients has gone.
        if self.by_client.capacity() > 64 && self.by_client.len() * 4 < self.by_client.capacity() {
            self.by_client.shrink_to_fit();
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
    /// `notify_job(job_id)`: `None` watches every job. A client watching
    /// [`MAX_WATCHES_PER_CLIENT`] jobs one by one first loses those that
    /// `live` says have ended, then is refused.
    pub fn notify_job(
        &mut self,
        client: ClientId,
        job: Option<u64>,
        live: impl Fn(&u64) -> bool,
    ) -> Result<(), TooManyWatches> {
        self.jobs.notify(client, job, "jobs", live)
    }

    /// `no_notify_job(job_id)`: `None` removes the whole watch.
    pub fn no_notify_job(&mut self, client: ClientId, job: Option<u64>) {
        self.jobs.no_notify(client, job);
    }

    /// `notify_machine(name)`: `None` watches every machine. As
    /// [`Watches::notify_job`], with `exists` saying which names are still
    /// configured.
    pub fn notify_machine(
        &mut self,
        client: ClientId,
        machine: Option<String>,
        exists: impl Fn(&String) -> bool,
    ) -> Result<(), TooManyWatches> {
        self.machines.notify(client, machine, "machines", exists)
    }

    /// `no_notify_machine(name)`: `None` removes the whole watch.
    pub fn no_notify_machine(&mut self, client: ClientId, machine: Option<String>) {
        self.machines.no_notify(client, machine);
    }

    /// Forgets a client that disconnected.
    pub fn remove_client(&mut self, client: ClientId) {
        self.jobs.remove_client(client);
        self.machines.remove_client(client);
    }

    /// How many clients have a watch of any kind (for tests and diagnostics).
    pub fn clients(&self) -> usize {
        let mut clients: Vec<&ClientId> = self.jobs.by_client.keys().collect();
        clients.extend(self.machines.by_client.keys());
        clients.sort_unstable();
        clients.dedup();
        clients.len()
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
        w.notify_job(1, None, |_| true).unwrap();
        w.notify_job(2, Some(5), |_| true).unwrap();
        w.notify_job(2, Some(6), |_| true).unwrap();
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
        w.notify_job(1, None, |_| true).unwrap();
        w.notify_job(1, Some(3), |_| true).unwrap();
        assert_eq!(w.notifications(&ids(&[4]), &BTreeSet::new()).len(), 1);
        // Removing an ID from an "all" watch is a no-op.
        w.no_notify_job(1, Some(4));
        assert_eq!(w.notifications(&ids(&[4]), &BTreeSet::new()).len(), 1);
        // Removing the last ID deletes the watch.
        w.notify_job(2, Some(8), |_| true).unwrap();
        w.no_notify_job(2, Some(8));
        assert_eq!(w.notifications(&ids(&[8]), &BTreeSet::new()).len(), 1);
        w.no_notify_job(1, None);
        assert!(w.notifications(&ids(&[4]), &BTreeSet::new()).is_empty());
        w.notify_machine(3, Some("m".into()), |_| true).unwrap();
        let changed: BTreeSet<String> = ["m".to_owned(), "n".to_owned()].into();
        assert_eq!(
            w.notifications(&BTreeSet::new(), &changed),
            vec![(3, Notification::MachinesChanged(vec!["m".into()]))]
        );
        w.remove_client(3);
        assert!(w.is_empty());
    }

    #[test]
    fn a_client_watches_a_bounded_number_of_items_and_ended_ones_make_room() {
        let mut w = Watches::default();
        let max = MAX_WATCHES_PER_CLIENT as u64;
        for id in 0..max {
            w.notify_job(1, Some(id), |_| true).unwrap();
        }
        // Watching one already watched, or everything, is always fine.
        w.notify_job(1, Some(0), |_| true).unwrap();
        let refused = w.notify_job(1, Some(max), |_| true).unwrap_err();
        assert_eq!(refused.limit, MAX_WATCHES_PER_CLIENT);
        assert!(refused.to_string().contains("too many jobs"), "{refused}");
        // Once the first half has ended, their places are free again.
        w.notify_job(1, Some(max), |id| *id >= max / 2).unwrap();
        let n = w.notifications(&(0..=max).collect(), &BTreeSet::new());
        assert_eq!(
            n,
            vec![(1, Notification::JobsChanged((max / 2..=max).collect()))]
        );
        // Other clients have their own allowance.
        w.notify_job(2, Some(1), |_| true).unwrap();
        w.notify_machine(2, Some("m".into()), |_| true).unwrap();
        assert_eq!(w.clients(), 2);
    }

    #[test]
    fn everything_a_client_watched_goes_with_it() {
        let mut w = Watches::default();
        for client in 0..1000 {
            for id in 0..50 {
                w.notify_job(client, Some(id), |_| true).unwrap();
            }
            w.notify_machine(client, Some(format!("m{client}")), |_| true)
                .unwrap();
        }
        assert_eq!(w.clients(), 1000);
        for client in 0..1000 {
            w.remove_client(client);
        }
        assert!(w.is_empty());
        assert_eq!(w.clients(), 0);
        assert!(
            w.jobs.by_client.capacity() <= 64,
            "{}",
            w.jobs.by_client.capacity()
        );
        assert!(w.machines.by_client.capacity() <= 64);
    }
}
