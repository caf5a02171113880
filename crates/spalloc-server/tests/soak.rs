//! A bounded soak test: many concurrent raw TCP clients send random valid and
//! invalid commands to a real `spalloc-server` process for a fixed time,
//! checking invariants all along: no board is in two live jobs, every job a
//! client created is accounted for (listed while live; destroyed or gone
//! once destroyed), every request gets exactly one reply, and the server's
//! resident memory stays bounded. Half-way through, the server is killed
//! with SIGKILL and restarted on the same state file (`--state FILE`), and no
//! acknowledged job may be lost.
//!
//! CI runs a short variant; the long one is run explicitly:
//! `SOAK_CLIENTS=32 SOAK_SECS=60 cargo test --release -p spalloc-server
//! --test soak -- --ignored --nocapture`.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_spalloc-server");

/// Resident memory the server may use, in KiB, whatever the load.
const RSS_LIMIT_KIB: u64 = 256 * 1024;

/// Tiny deterministic PRNG (xorshift*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process under test.
struct Server {
    child: Child,
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
    address: SocketAddr,
}

impl Server {
    fn spawn(config: &Path, state: &Path, log: &Path, address: SocketAddr) -> Server {
        let mut cmd = Command::new(SERVER);
        cmd.arg(config).arg("--quiet").arg("--state").arg(state);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start spalloc-server");
        let server = Server {
            child,
            config: config.to_owned(),
            state: state.to_owned(),
            log: log.to_owned(),
            address,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "server never listened; log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        let next = Server::spawn(&self.config, &self.state, &self.log, self.address);
        // Replace in place; the dead child has been reaped.
        let old = std::mem::replace(self, next);
        std::mem::forget(old);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw protocol client that reconnects after the server restarts.
struct Conn {
    address: SocketAddr,
    stream: Option<(BufReader<TcpStream>, TcpStream)>,
}

enum Outcome {
    Return(Value),
    Exception,
    /// The connection broke before a reply (the server restarted).
    Lost,
}

impl Conn {
    fn open(&mut self) -> bool {
        if self.stream.is_none() {
            let Ok(s) = TcpStream::connect(self.address) else {
                return false;
            };
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            self.stream = Some((BufReader::new(s.try_clone().unwrap()), s));
        }
        true
    }

    /// Sends one line and reads its reply, skipping notifications.
    fn call_raw(&mut self, line: &[u8]) -> Outcome {
        if !self.open() {
            return Outcome::Lost;
        }
        let (reader, writer) = self.stream.as_mut().unwrap();
        if writer.write_all(line).is_err() {
            self.stream = None;
            return Outcome::Lost;
        }
        loop {
            let mut text = String::new();
            match reader.read_line(&mut text) {
                Ok(0) | Err(_) => {
                    self.stream = None;
                    return Outcome::Lost;
                }
                Ok(_) => {}
            }
            let msg: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("server sent non-JSON {text:?}: {e}"));
            if let Some(v) = msg.get("return") {
                return Outcome::Return(v.clone());
            }
            if msg.get("exception").is_some() {
                return Outcome::Exception;
            }
            assert!(
                msg.get("jobs_changed").is_some() || msg.get("machines_changed").is_some(),
                "unexpected message {msg}"
            );
        }
    }

    fn call(&mut self, command: &str, args: Value, kwargs: Value) -> Outcome {
        let line = json!({"command": command, "args": args, "kwargs": kwargs}).to_string() + "\n";
        self.call_raw(line.as_bytes())
    }
}

/// Checks the global invariant on a `list_jobs` reply: no board in two live
/// jobs. Returns the listed job IDs.
fn check_listing(jobs: &Value) -> BTreeSet<u64> {
    let mut owners: HashMap<(String, Vec<u64>), u64> = HashMap::new();
    let mut ids = BTreeSet::new();
    for job in jobs.as_array().expect("list_jobs returns a list") {
        let id = job["job_id"].as_u64().expect("job_id");
        ids.insert(id);
        let machine = job["allocated_machine_name"].as_str().unwrap_or_default();
        for b in job["boards"].as_array().into_iter().flatten() {
            let key = (
                machine.to_owned(),
                b.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .collect(),
            );
            if let Some(other) = owners.insert(key.clone(), id) {
                panic!("board {key:?} is in live jobs {other} and {id}");
            }
        }
    }
    ids
}

struct Totals {
    served: AtomicU64,
    created: AtomicU64,
    lost_in_flight: AtomicU64,
}

/// What one client knows about the jobs it created.
#[derive(Default)]
struct Mine {
    /// Acknowledged, not destroyed by us: must stay known to the server.
    live: BTreeMap<u64, ()>,
    /// Acknowledged destroys: must never be listed again.
    destroyed: BTreeSet<u64>,
}

const GARBAGE: [&[u8]; 9] = [
    b"not json\n",
    b"[1, 2, 3]\n",
    b"{}\n",
    b"{\"command\": 7}\n",
    b"{\"command\": \"frobnicate\", \"args\": []}\n",
    b"{\"command\": \"get_job_state\"}\n",
    b"{\"command\": \"create_job\", \"args\": [1], \"kwargs\": {\"owner\": \"soak\", \"bogus\": 1}}\n",
    b"\xff\xfe\xfd\n",
    b"{\"command\": \"destroy_job\", \"args\": [18446744073709551615]}\n",
];

fn client(
    seed: u64,
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    totals: Arc<Totals>,
    errors: Arc<Mutex<Vec<String>>>,
) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut conn = Conn {
        address,
        stream: None,
    };
    let mut mine = Mine::default();
    let mut seen_generation = generation.load(Ordering::Acquire);
    let fail = |msg: String| errors.lock().unwrap().push(msg);
    while !stop.load(Ordering::Acquire) {
        // After a restart: every acknowledged job must still be known.
        let g = generation.load(Ordering::Acquire);
        if g != seen_generation {
            seen_generation = g;
            for &id in mine.live.keys() {
                match conn.call("get_job_state", json!([id]), json!({})) {
                    Outcome::Return(s) if s["state"] == json!(0) => {
                        fail(format!("job {id} was acknowledged but lost by the restart"))
                    }
                    _ => {}
                }
            }
        }
        let outcome = match rng.below(20) {
            0..=4 => {
                let args = match rng.below(4) {
                    0 => json!([]),
                    1 => json!([rng.below(3) + 1]),
                    2 => json!([rng.below(2) + 1, rng.below(2) + 1]),
                    _ => json!([rng.below(4), rng.below(2), rng.below(3)]),
                };
                let kwargs = rng
                    .pick(&[
                        json!({"owner": "soak", "keepalive": null}),
                        json!({"owner": "soak", "keepalive": null, "tags": ["default"]}),
                        json!({"owner": "soak", "keepalive": null, "machine": "soak"}),
                        json!({"owner": "soak", "keepalive": null, "min_ratio": 0.2, "max_dead_boards": 2}),
                        json!({"owner": "soak", "keepalive": null, "require_torus": false}),
                        json!({"owner": "soak", "keepalive": 3600.0}),
                    ])
                    .clone();
                let outcome = conn.call("create_job", args, kwargs);
                if let Outcome::Return(id) = &outcome {
                    let id = id.as_u64().expect("create_job returns an ID");
                    totals.created.fetch_add(1, Ordering::Relaxed);
                    mine.live.insert(id, ());
                }
                outcome
            }
            5..=7 if !mine.live.is_empty() => {
                // Destroy one of ours, mostly the oldest, keeping few live.
                let id = *mine.live.keys().next().unwrap();
                let outcome = conn.call("destroy_job", json!([id, "soak"]), json!({}));
                mine.live.remove(&id);
                if matches!(outcome, Outcome::Return(_)) {
                    mine.destroyed.insert(id);
                }
                outcome
            }
            8 if !mine.live.is_empty() => {
                let id = *rng.pick(&mine.live.keys().copied().collect::<Vec<_>>());
                let command = rng.pick(&[
                    "power_on_job_boards",
                    "power_off_job_boards",
                    "job_keepalive",
                    "get_job_machine_info",
                    "notify_job",
                    "no_notify_job",
                ]);
                conn.call(command, json!([id]), json!({}))
            }
            9 if !mine.live.is_empty() => {
                let id = *rng.pick(&mine.live.keys().copied().collect::<Vec<_>>());
                let outcome = conn.call("get_job_state", json!([id]), json!({}));
                if let Outcome::Return(s) = &outcome {
                    match s["state"].as_u64() {
                        Some(1..=3) => {}
                        Some(4) => {
                            // Destroyed by the server (e.g. impossible).
                            mine.live.remove(&id);
                        }
                        other => fail(format!("live job {id} has state {other:?}: {s}")),
                    }
                }
                outcome
            }
            10 | 11 => {
                let outcome = conn.call("list_jobs", json!([]), json!({}));
                if let Outcome::Return(jobs) = &outcome {
                    let listed = std::panic::catch_unwind(|| check_listing(jobs));
                    match listed {
                        Ok(listed) => {
                            for id in &mine.destroyed {
                                if listed.contains(id) {
                                    fail(format!("destroyed job {id} is still listed"));
                                }
                            }
                            // Ours that are not listed must have been
                            // destroyed by the server.
                            let missing: Vec<u64> = mine
                                .live
                                .keys()
                                .copied()
                                .filter(|id| !listed.contains(id))
                                .collect();
                            for id in missing {
                                if let Outcome::Return(s) =
                                    conn.call("get_job_state", json!([id]), json!({}))
                                {
                                    if s["state"] != json!(4) {
                                        fail(format!(
                                            "job {id} is neither listed nor destroyed: {s}"
                                        ));
                                    }
                                    mine.live.remove(&id);
                                }
                            }
                        }
                        Err(_) => fail(format!("board in two live jobs: {jobs}")),
                    }
                }
                outcome
            }
            12 => conn.call("list_machines", json!([]), json!({})),
            13 => conn.call(
                "where_is",
                json!([]),
                rng.pick(&[
                    json!({"machine": "soak", "x": 0, "y": 0, "z": 1}),
                    json!({"machine": "soak", "cabinet": 0, "frame": 0, "board": 3}),
                    json!({"machine": "soak", "chip_x": 9, "chip_y": 5}),
                    json!({"job_id": 1, "chip_x": 0, "chip_y": 0}),
                ])
                .clone(),
            ),
            14 => {
                let commands = ["notify_machine", "no_notify_machine"];
                let command = *rng.pick(&commands);
                conn.call(command, json!([]), json!({}))
            }
            15 => conn.call("version", json!([]), json!({})),
            _ => {
                let line = *rng.pick(&GARBAGE);
                match conn.call_raw(line) {
                    Outcome::Return(v) if line.starts_with(b"{\"command\": \"destroy") => {
                        Outcome::Return(v)
                    }
                    Outcome::Return(v) => {
                        fail(format!(
                            "{:?} was accepted: {v}",
                            String::from_utf8_lossy(line)
                        ));
                        Outcome::Return(v)
                    }
                    other => other,
                }
            }
        };
        match outcome {
            Outcome::Return(_) | Outcome::Exception => {
                totals.served.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Lost => {
                // Only while the server restarts; wait for it and go on.
                totals.lost_in_flight.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Keep each client's share of the machine small.
        while mine.live.len() > 3 {
            let id = *mine.live.keys().next().unwrap();
            if let Outcome::Return(_) = conn.call("destroy_job", json!([id]), json!({})) {
                mine.destroyed.insert(id);
            }
            mine.live.remove(&id);
        }
    }
}

fn soak(clients: u64, duration: Duration) {
    let dir = std::env::temp_dir().join(format!("spalloc-soak-{}-{}", std::process::id(), clients));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = dir.join("soak.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            ip = "127.0.0.1"
            port = {port}
            timeout_check_interval = 0.05
            seconds_before_free = 0.05
            max_retired_jobs = 1000000

            [[machine]]
            name = "soak"
            tags = ["default"]
            width = 4
            height = 2
            base_ip = "127.0.1.0"
            dead_boards = [[3, 1, 2]]
            power_delay = 0.01
            "#
        ),
    )
    .unwrap();
    let state = dir.join("soak.state.sqlite");
    let log = dir.join("server.log");
    let mut server = Server::spawn(&config, &state, &log, address);

    let stop = Arc::new(AtomicBool::new(false));
    let generation = Arc::new(AtomicU64::new(0));
    let totals = Arc::new(Totals {
        served: AtomicU64::new(0),
        created: AtomicU64::new(0),
        lost_in_flight: AtomicU64::new(0),
    });
    let errors = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, generation, totals, errors) = (
                Arc::clone(&stop),
                Arc::clone(&generation),
                Arc::clone(&totals),
                Arc::clone(&errors),
            );
            std::thread::spawn(move || client(i + 1, address, stop, generation, totals, errors))
        })
        .collect();

    let start = Instant::now();
    let mut restarted = false;
    let mut peak_rss = 0;
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(100));
        let rss = server.rss_kib();
        peak_rss = peak_rss.max(rss);
        assert!(
            rss < RSS_LIMIT_KIB,
            "server RSS {rss} KiB exceeds {RSS_LIMIT_KIB} KiB"
        );
        if !restarted && start.elapsed() >= duration / 2 {
            restarted = true;
            server.kill_and_restart();
            generation.fetch_add(1, Ordering::Release);
        }
    }
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("client thread");
    }
    // A last global check, on a fresh connection.
    let mut conn = Conn {
        address,
        stream: None,
    };
    match conn.call("list_jobs", json!([]), json!({})) {
        Outcome::Return(jobs) => {
            check_listing(&jobs);
        }
        _ => panic!("server unusable after the soak"),
    }
    let served = totals.served.load(Ordering::Relaxed);
    eprintln!(
        "soak: {clients} clients x {:.1} s: {served} requests served, {} jobs created, \
         {} requests cut by the kill-and-restart, peak RSS {peak_rss} KiB",
        start.elapsed().as_secs_f64(),
        totals.created.load(Ordering::Relaxed),
        totals.lost_in_flight.load(Ordering::Relaxed),
    );
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "invariants broken: {errors:#?}");
    assert!(served > clients * 10, "too few requests served: {served}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn short_soak() {
    soak(8, Duration::from_secs(3));
}

#[test]
#[ignore = "long: run explicitly (SOAK_CLIENTS, SOAK_SECS)"]
fn long_soak() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    soak(
        env("SOAK_CLIENTS", 32),
        Duration::from_secs(env("SOAK_SECS", 60)),
    );
}
