//! The real binary killed with SIGKILL while 200 clients create and destroy
//! jobs at once: every job whose creation or destruction was acknowledged
//! must come back as acknowledged after a restart on the same state file,
//! however the commits of those clients were grouped.

mod common;

use common::server_process::ServerProcess;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;
/// How long the clients run before the kill.
const LOAD: Duration = Duration::from_millis(1500);
const DESTROYED: u64 = 4;

/// A small machine (most jobs queue), no BMP delay, and every destroyed
/// job's reason remembered, so that each acknowledged destroy can be checked;
/// commits with `synchronous` ("normal" or "full").
fn write_config(dir: &Path, synchronous: &str) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            ip = "127.0.0.1"
            port = 0
            max_retired_jobs = 1000000
            [store]
            synchronous = "{synchronous}"
            [[machine]]
            name = "m"
            width = 2
            height = 1
            base_ip = "127.0.1.0"
            power_delay = 0.0
            "#
        ),
    )
    .expect("write config");
    path
}

/// A protocol client that reports a dead server instead of panicking.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(address: &str) -> Option<Raw> {
        let stream = TcpStream::connect(address).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .ok()?;
        Some(Raw {
            reader: BufReader::new(stream.try_clone().ok()?),
            writer: stream,
        })
    }

    /// The reply's `return` value, or `None` if the server died first.
    fn call(&mut self, command: &str, args: Value, kwargs: Value) -> Option<Value> {
        let line = json!({"command": command, "args": args, "kwargs": kwargs}).to_string() + "\n";
        self.writer.write_all(line.as_bytes()).ok()?;
        loop {
            let mut text = String::new();
            if self.reader.read_line(&mut text).ok()? == 0 {
                return None;
            }
            let v: Value = serde_json::from_str(&text).ok()?;
            if let Some(r) = v.get("return") {
                return Some(r.clone());
            }
            assert!(v.get("exception").is_none(), "refused: {v}");
        }
    }
}

/// What one client saw acknowledged.
#[derive(Debug, Default)]
struct Acknowledged {
    /// Created jobs and their owners.
    created: Vec<(u64, String)>,
    /// Destroyed jobs and the reasons given.
    destroyed: Vec<(u64, String)>,
    /// A job whose destroy was sent but not acknowledged: either outcome
    /// is right.
    in_doubt: Option<u64>,
}

/// Creates and destroys jobs until the server dies (or `deadline`, in case
/// the kill never comes), keeping every fourth job alive.
fn client(n: usize, address: &str, start: &Barrier, deadline: Instant) -> Acknowledged {
    let mut acked = Acknowledged::default();
    let connected = Raw::connect(address);
    start.wait();
    let Some(mut c) = connected else {
        return acked;
    };
    let owner = format!("client{n}");
    for cycle in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let Some(id) = c.call(
            "create_job",
            json!([1]),
            json!({"owner": owner, "keepalive": null}),
        ) else {
            break;
        };
        let id = id.as_u64().expect("a job ID");
        acked.created.push((id, owner.clone()));
        if cycle % 4 == 3 {
            continue;
        }
        let reason = format!("done {id}");
        if c.call("destroy_job", json!([id, reason]), json!({}))
            .is_none()
        {
            acked.in_doubt = Some(id);
            break;
        }
        acked.destroyed.push((id, reason));
    }
    acked
}

#[test]
fn kill_9_under_200_concurrent_clients_loses_no_acknowledged_job() {
    kill_9_under_load("durable-concurrent", "normal", CLIENTS, LOAD);
}

/// With `synchronous = "full"` each commit group waits for the disk on a
/// tokio worker lent to it (`block_in_place`): fewer clients and less time,
/// since every group costs an `fsync`.
#[test]
fn kill_9_with_synchronous_full_loses_no_acknowledged_job() {
    kill_9_under_load("durable-full", "full", 20, Duration::from_millis(800));
}

fn kill_9_under_load(name: &str, synchronous: &str, clients: usize, load: Duration) {
    let dir = common::temp_dir(name);
    let config = write_config(&dir, synchronous);
    let mut server = ServerProcess::start(&config, &[]);
    let start = Arc::new(Barrier::new(clients + 1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let clients_threads: Vec<_> = (0..clients)
        .map(|n| {
            let address = server.address.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || client(n, &address, &start, deadline))
        })
        .collect();
    start.wait();
    std::thread::sleep(load);
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    let acked: Vec<Acknowledged> = clients_threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();

    let mut alive: BTreeMap<u64, String> = BTreeMap::new();
    let mut destroyed: BTreeMap<u64, String> = BTreeMap::new();
    for a in &acked {
        for (id, owner) in &a.created {
            assert!(
                alive.insert(*id, owner.clone()).is_none(),
                "job ID {id} handed out twice"
            );
        }
        for (id, reason) in &a.destroyed {
            alive.remove(id);
            destroyed.insert(*id, reason.clone());
        }
    }
    for id in acked.iter().filter_map(|a| a.in_doubt) {
        alive.remove(&id);
    }
    let highest = alive.keys().chain(destroyed.keys()).max().copied();
    assert!(
        alive.len() + destroyed.len() >= clients,
        "the clients got too little done to prove anything: {} jobs",
        alive.len() + destroyed.len()
    );

    let server = ServerProcess::start(&config, &[]);
    let mut c = Raw::connect(&server.address).expect("connect after restart");
    let listed: BTreeMap<u64, Value> = c
        .call("list_jobs", json!([]), json!({}))
        .expect("list_jobs")
        .as_array()
        .expect("a list")
        .iter()
        .map(|j| (j["job_id"].as_u64().expect("id"), j.clone()))
        .collect();
    let mut lost = BTreeSet::new();
    for (id, owner) in &alive {
        if listed.get(id).map(|j| &j["owner"]) != Some(&json!(owner)) {
            lost.insert(*id);
        }
    }
    for (id, reason) in &destroyed {
        let state = c
            .call("get_job_state", json!([id]), json!({}))
            .expect("get_job_state");
        // A job destroyed while still queued is "Cancelled: REASON".
        let as_given = state["reason"] == json!(reason)
            || state["reason"] == json!(format!("Cancelled: {reason}"));
        if state["state"] != json!(DESTROYED) || !as_given {
            if lost.len() < 10 {
                eprintln!("destroyed job {id} came back as {state}");
            }
            lost.insert(*id);
        }
    }
    // IDs never go back: the next job is numbered above every one handed out.
    let next = c
        .call(
            "create_job",
            json!([1]),
            json!({"owner": "after", "keepalive": null}),
        )
        .expect("create after restart")
        .as_u64()
        .expect("a job ID");
    println!(
        "{clients} clients, synchronous = {synchronous}: {} jobs acknowledged alive, {} destroyed, {} lost; next ID {next}",
        alive.len(),
        destroyed.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged jobs lost, first {:?}",
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>()
    );
    assert!(highest.is_some_and(|h| next > h), "job IDs went back");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
