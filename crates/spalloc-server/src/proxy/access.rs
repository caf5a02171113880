//! Who may proxy to which boards, decided from the core's job table with no
//! I/O: the job must be live and allocated, the caller its owner or an
//! admin, and only its boards' IPs are reachable.

use crate::core::controller::Controller;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The boards one allocation lets a proxy reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// The job's owner.
    pub owner: String,
    /// The machine and the allocator's ID of the allocation: a change means
    /// the job was given other boards, and its proxies must close.
    pub allocation: (String, u64),
    /// Ethernet chip (job coordinates) to board IP. Hostnames that are not
    /// IPv4 addresses are left out (boards are configured by IP).
    pub boards: BTreeMap<(u32, u32), Ipv4Addr>,
}

/// What the job table says about a job, for the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No such live job.
    Unknown,
    /// Live but not (yet, or no longer) given boards.
    Unallocated {
        /// The job's owner.
        owner: String,
    },
    /// Live with boards.
    Allocated(ProxyTarget),
}

impl Lookup {
    /// The job's owner, if it is live.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Lookup::Unknown => None,
            Lookup::Unallocated { owner } => Some(owner),
            Lookup::Allocated(target) => Some(&target.owner),
        }
    }
}

/// Looks `job` up in the controller's live jobs.
pub fn lookup(controller: &Controller, job: u64) -> Lookup {
    let Some(job) = controller.jobs.live(job) else {
        return Lookup::Unknown;
    };
    let Some(allocation) = &job.allocation else {
        return Lookup::Unallocated {
            owner: job.owner.clone(),
        };
    };
    let boards = allocation
        .connections
        .iter()
        .filter_map(|([x, y], host)| Some(((*x, *y), host.parse().ok()?)))
        .collect();
    Lookup::Allocated(ProxyTarget {
        owner: job.owner.clone(),
        allocation: (allocation.machine.clone(), allocation.allocation_id),
        boards,
    })
}

/// Whether `user` (an admin if `admin`) may proxy to a job owned by
/// `owner`.
pub fn may_proxy(owner: &str, user: &str, admin: bool) -> bool {
    admin || owner == user
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::create_job;
    use crate::core::controller::ControllerSettings;
    use crate::ServerConfig;
    use serde_json::{json, Map, Value};

    fn controller() -> Controller {
        let config = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"10.2.0.0\"\n",
        )
        .unwrap_or_default();
        Controller::new(
            ControllerSettings {
                max_retired_jobs: 10,
                seconds_before_free: 0.0,
            },
            config.machines.iter().map(|m| m.machine.clone()).collect(),
        )
    }

    fn create(c: &mut Controller, args: Value) -> u64 {
        let mut kwargs = Map::new();
        kwargs.insert("owner".into(), json!("alice"));
        let args = args.as_array().cloned().unwrap_or_default();
        match create_job::parse(args, kwargs) {
            Ok(spec) => c.create_job(spec, None, 0.0),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn an_allocated_job_reaches_exactly_its_boards_by_ethernet_chip() {
        let mut c = controller();
        let id = create(&mut c, json!([1, 1]));
        let Lookup::Allocated(target) = lookup(&c, id) else {
            panic!("not allocated");
        };
        assert_eq!(target.owner, "alice");
        assert_eq!(target.boards.len(), 3);
        assert!(target.boards.contains_key(&(0, 0)));
        assert!(target.boards.values().all(|ip| ip.octets()[..2] == [10, 2]));
    }

    #[test]
    fn a_queued_job_is_unallocated_and_a_destroyed_one_unknown() {
        let mut c = controller();
        let first = create(&mut c, json!([1, 1]));
        let queued = create(&mut c, json!([1, 1]));
        assert_eq!(
            lookup(&c, queued),
            Lookup::Unallocated {
                owner: "alice".into()
            }
        );
        c.destroy_job(first, None, 1.0);
        assert_eq!(lookup(&c, first), Lookup::Unknown);
        assert_eq!(lookup(&c, 999), Lookup::Unknown);
    }

    #[test]
    fn only_the_owner_or_an_admin_may_proxy() {
        assert!(may_proxy("alice", "alice", false));
        assert!(may_proxy("alice", "root", true));
        assert!(!may_proxy("alice", "bob", false));
    }
}
