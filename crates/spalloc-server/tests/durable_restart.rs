//! The real binary killed with SIGKILL at several moments and restarted on
//! the same state file: every acknowledged job must come back as it was.

mod common;

use common::server_process::{write_config, ServerProcess};
use common::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::Command;

use std::time::{Duration, Instant};

const QUEUED: u64 = 1;
const POWER: u64 = 2;
const READY: u64 = 3;
const DESTROYED: u64 = 4;

/// What an acknowledged job must look like after a restart.
#[derive(Debug, Clone)]
enum Expect {
    /// Queued (no boards yet).
    Queued { owner: String },
    /// Allocated: boards and target power (state power or ready).
    Allocated {
        owner: String,
        boards: Value,
        power: bool,
    },
    /// Destroyed with this reason.
    Destroyed { reason: String },
}

/// Checks every expected job; returns how many are wrong (lost).
fn check(c: &mut Client, model: &BTreeMap<u64, Expect>) -> usize {
    let jobs = c.ok("list_jobs", json!([]), json!({}));
    let listed: BTreeMap<u64, Value> = jobs
        .as_array()
        .expect("list")
        .iter()
        .map(|j| (j["job_id"].as_u64().expect("id"), j.clone()))
        .collect();
    let mut lost = 0;
    for (id, expect) in model {
        let state = c.state(*id);
        let ok = match expect {
            Expect::Queued { owner } => {
                state["state"] == json!(QUEUED) && listed[id]["owner"] == json!(owner)
            }
            Expect::Allocated {
                owner,
                boards,
                power,
            } => {
                let s = state["state"].as_u64();
                (s == Some(POWER) || s == Some(READY))
                    && state["power"] == json!(power)
                    && listed
                        .get(id)
                        .is_some_and(|j| j["owner"] == json!(owner) && j["boards"] == *boards)
            }
            Expect::Destroyed { reason } => {
                state["state"] == json!(DESTROYED)
                    && state["reason"] == json!(reason)
                    && !listed.contains_key(id)
            }
        };
        if !ok {
            eprintln!(
                "job {id}: expected {expect:?}, got {state} / {:?}",
                listed.get(id)
            );
            lost += 1;
        }
    }
    lost
}

fn boards_of(c: &mut Client, id: u64) -> Value {
    c.ok("get_job_machine_info", json!([id]), json!({}))["boards"].clone()
}

fn create(c: &mut Client, args: Value, owner: &str) -> u64 {
    c.create(args, json!({"owner": owner, "keepalive": null}))
}

#[test]
fn every_acknowledged_job_survives_kill_9() {
    let dir = common::temp_dir("durable-restart");
    let config = write_config(&dir);
    let mut model: BTreeMap<u64, Expect> = BTreeMap::new();
    let mut restarts = 0;
    let mut lost = 0;

    // Round 1: a ready single board, a ready triad, a destroyed job and a
    // queued whole-machine job; killed right after the last acknowledgement.
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    let a = create(&mut c, json!([]), "alice");
    c.wait_state(a, READY);
    let b = create(&mut c, json!([1, 1]), "bob");
    c.wait_state(b, READY);
    let gone = create(&mut c, json!([]), "carol");
    c.wait_state(gone, READY);
    c.ok("destroy_job", json!([gone, "done with it"]), json!({}));
    let d = create(&mut c, json!([2, 1]), "dave");
    for (id, owner) in [(a, "alice"), (b, "bob")] {
        let boards = boards_of(&mut c, id);
        model.insert(
            id,
            Expect::Allocated {
                owner: owner.into(),
                boards,
                power: true,
            },
        );
    }
    model.insert(
        gone,
        Expect::Destroyed {
            reason: "done with it".into(),
        },
    );
    model.insert(
        d,
        Expect::Queued {
            owner: "dave".into(),
        },
    );
    server.kill9();
    assert!(
        dir.join(".server.toml.state.sqlite").exists(),
        "the default state file"
    );

    // Round 2: the next job ID survived; B destroyed and killed while its
    // power-off is in flight.
    let server = ServerProcess::start(&config, &[]);
    restarts += 1;
    let mut c = server.client();
    lost += check(&mut c, &model);
    let e = create(&mut c, json!([]), "erin");
    assert_eq!(e, d + 1, "the next job ID survives");
    model.insert(
        e,
        Expect::Queued {
            owner: "erin".into(),
        },
    );
    c.ok("destroy_job", json!([b, "finished B"]), json!({}));
    model.insert(
        b,
        Expect::Destroyed {
            reason: "finished B".into(),
        },
    );
    server.kill9();

    // Round 3: B's and C's boards were freed: with A and E gone, D gets the
    // whole machine. Killed while D is powering on.
    let server = ServerProcess::start(&config, &[]);
    restarts += 1;
    let mut c = server.client();
    lost += check(&mut c, &model);
    c.ok("destroy_job", json!([a, "a gone"]), json!({}));
    c.ok("destroy_job", json!([e, "e gone"]), json!({}));
    model.insert(
        a,
        Expect::Destroyed {
            reason: "a gone".into(),
        },
    );
    model.insert(
        e,
        Expect::Destroyed {
            reason: "Cancelled: e gone".into(),
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.state(d)["state"] == json!(QUEUED) {
        assert!(
            Instant::now() < deadline,
            "the destroyed jobs' boards were never freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.state(d)["state"],
        json!(POWER),
        "killed while powering on"
    );
    let boards = boards_of(&mut c, d);
    assert_eq!(
        boards.as_array().map(Vec::len),
        Some(6),
        "the whole machine"
    );
    model.insert(
        d,
        Expect::Allocated {
            owner: "dave".into(),
            boards: boards.clone(),
            power: true,
        },
    );
    server.kill9();

    // Round 4: the power-on is re-issued; then a power-off, killed at once.
    let server = ServerProcess::start(&config, &[]);
    restarts += 1;
    let mut c = server.client();
    lost += check(&mut c, &model);
    c.wait_state(d, READY);
    c.ok("power_off_job_boards", json!([d]), json!({}));
    model.insert(
        d,
        Expect::Allocated {
            owner: "dave".into(),
            boards: boards.clone(),
            power: false,
        },
    );
    server.kill9();

    // Round 5: nothing in flight; and one more restart on top.
    for _ in 0..2 {
        let server = ServerProcess::start(&config, &[]);
        restarts += 1;
        let mut c = server.client();
        lost += check(&mut c, &model);
        c.wait_state(d, READY);
        server.kill9();
    }

    // --cold-start starts empty, as the reference does, and stays empty;
    // job IDs never go back, so an old ID is never handed out again.
    let server = ServerProcess::start(&config, &["--cold-start"]);
    let mut c = server.client();
    assert_eq!(c.ok("list_jobs", json!([]), json!({})), json!([]));
    assert_eq!(c.state(d)["state"], json!(0), "unknown after a cold start");
    let frank = create(&mut c, json!([]), "frank");
    assert!(frank > d, "job {frank} after job {d}");
    server.kill9();
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    let jobs = c.ok("list_jobs", json!([]), json!({}));
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
    assert_eq!(jobs[0]["owner"], json!("frank"));
    drop(server);

    println!("durable state: {restarts} kill -9 restarts survived, {lost} acknowledged jobs lost");
    assert_eq!(lost, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_file_is_set_aside_under_its_own_name_and_a_cold_start_follows() {
    let dir = common::temp_dir("durable-corrupt");
    let config = write_config(&dir);
    let state = dir.join("state.sqlite");
    std::fs::write(
        &state,
        b"this is not a database, not even close; ".repeat(200),
    )
    .expect("write junk");
    let state_arg = state.to_string_lossy().into_owned();
    let server = ServerProcess::start(&config, &["--state", &state_arg]);
    let mut c = server.client();
    assert_eq!(c.ok("list_jobs", json!([]), json!({})), json!([]));
    let id = create(&mut c, json!([]), "gina");
    server.kill9();
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.sqlite.damaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "kept for inspection");
    let server = ServerProcess::start(&config, &["--state", &state_arg]);
    let mut c = server.client();
    assert_eq!(
        c.ok("list_jobs", json!([]), json!({}))[0]["job_id"],
        json!(id)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A protocol client that reports a dead server instead of panicking.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(address: &str) -> Raw {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// The reply's `return` value, or `None` if the server died first.
    fn call(&mut self, command: &str, args: Value, kwargs: Value) -> Option<Value> {
        use std::io::Write;
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
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_job() {
    let dir = common::temp_dir("durable-random");
    let config = write_config(&dir);
    // job -> (owner, Some(reason) once a destroy was acknowledged)
    let mut model: BTreeMap<u64, (String, Option<String>)> = BTreeMap::new();
    let mut seed: u64 = 0x5eed;
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let (mut restarts, mut lost, mut acknowledged) = (0, 0, 0);
    // Destroyed jobs in order: only the last max_retired_jobs (1200, the
    // default) keep their reasons.
    let mut destroyed: Vec<u64> = Vec::new();
    const ROUNDS: usize = 10;
    for round in 0..=ROUNDS {
        let server = ServerProcess::start(&config, &[]);
        let pid = server.child.id();
        let mut c = Raw::connect(&server.address);
        // Check everything acknowledged so far.
        if round > 0 {
            restarts += 1;
            let jobs = c
                .call("list_jobs", json!([]), json!({}))
                .expect("list_jobs");
            let live: BTreeMap<u64, Value> = jobs
                .as_array()
                .expect("list")
                .iter()
                .map(|j| (j["job_id"].as_u64().expect("id"), j.clone()))
                .collect();
            let evicted: std::collections::BTreeSet<u64> = destroyed
                [..destroyed.len().saturating_sub(1200)]
                .iter()
                .copied()
                .collect();
            for (id, (owner, reason)) in &model {
                if evicted.contains(id) {
                    continue;
                }
                let ok = match reason {
                    None => live.get(id).is_some_and(|j| j["owner"] == json!(owner)),
                    Some(reason) => {
                        let s = c
                            .call("get_job_state", json!([id]), json!({}))
                            .expect("state");
                        // A job destroyed while still queued is "Cancelled: ...".
                        s["state"] == json!(DESTROYED)
                            && (s["reason"] == json!(reason)
                                || s["reason"] == json!(format!("Cancelled: {reason}")))
                    }
                };
                if !ok {
                    eprintln!(
                        "job {id} ({owner}, {reason:?}) lost; live: {:?}",
                        live.get(id)
                    );
                    lost += 1;
                }
            }
        }
        if round == ROUNDS {
            drop(server);
            break;
        }
        // Kill at a random moment while requests stream in.
        let delay = Duration::from_millis(20 + random(200));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        });
        loop {
            let live: Vec<u64> = model
                .iter()
                .filter(|(_, (_, r))| r.is_none())
                .map(|(id, _)| *id)
                .collect();
            if live.len() < 4 || random(2) == 0 {
                let owner = format!("owner{}", random(1000));
                let args = if random(3) == 0 {
                    json!([1, 1])
                } else {
                    json!([])
                };
                match c.call(
                    "create_job",
                    args,
                    json!({"owner": owner, "keepalive": null}),
                ) {
                    Some(id) => {
                        let id = id.as_u64().expect("job id");
                        assert!(!model.contains_key(&id), "job ID {id} handed out twice");
                        model.insert(id, (owner, None));
                        acknowledged += 1;
                    }
                    None => break,
                }
            } else {
                let id = live[random(live.len() as u64) as usize];
                let reason = format!("reason {id}");
                match c.call("destroy_job", json!([id, reason]), json!({})) {
                    Some(_) => {
                        model.insert(id, (model[&id].0.clone(), Some(reason)));
                        destroyed.push(id);
                        acknowledged += 1;
                    }
                    // Not acknowledged: either outcome is fine; stop
                    // checking this job (but it may take a retired slot).
                    None => {
                        model.remove(&id);
                        destroyed.push(id);
                        break;
                    }
                }
            }
        }
        killer.join().expect("killer");
        server.kill9();
    }
    println!(
        "random kills: {restarts} restarts survived, {acknowledged} acknowledged operations, \
         {} jobs tracked, {lost} lost",
        model.len()
    );
    assert_eq!(lost, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_server_on_one_state_file_refuses_to_start_and_names_the_holder() {
    let dir = common::temp_dir("durable-twice");
    let config = write_config(&dir);
    let first = ServerProcess::start(&config, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .arg(&config)
        .env("NO_COLOR", "1")
        .output()
        .expect("run a second server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("in use by another server")
            && stderr.contains(&first.child.id().to_string()),
        "{stderr}"
    );
    // The first one still serves.
    let mut c = first.client();
    assert_eq!(create(&mut c, json!([]), "ivan"), 1);
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_change_the_disk_refuses_is_refused_and_reads_keep_working() {
    // A file-size limit makes every write past it fail (EFBIG); SIGXFSZ is
    // ignored so that the server sees the error instead of dying.
    let dir = common::temp_dir("durable-full");
    let config = write_config(&dir);
    let state = dir.join("state.sqlite");
    let script = format!(
        "trap '' XFSZ; ulimit -f 200; exec '{}' '{}' --state '{}'",
        env!("CARGO_BIN_EXE_spalloc-server"),
        config.display(),
        state.display()
    );
    let mut command = Command::new("bash");
    command.arg("-c").arg(&script);
    let server = ServerProcess::spawn(command);
    let stream = TcpStream::connect(&server.address).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut call = |command: &str, kwargs: Value| -> Option<Value> {
        use std::io::Write;
        let line = json!({"command": command, "args": [], "kwargs": kwargs}).to_string() + "\n";
        writer.write_all(line.as_bytes()).ok()?;
        let mut text = String::new();
        if reader.read_line(&mut text).ok()? == 0 {
            return None;
        }
        serde_json::from_str(&text).ok()
    };
    // Create jobs as large as a request may make them (the longest owner,
    // arguments padded to nearly their bound) until the disk refuses one.
    let owner = "x".repeat(256);
    let padded_ratio = format!("{}0.5", " ".repeat(1800));
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for _ in 0..400 {
        let kwargs = json!({"owner": owner, "keepalive": null, "min_ratio": padded_ratio});
        match call("create_job", kwargs) {
            Some(v) if v.get("return").is_some() => acknowledged.push(v["return"].clone()),
            Some(v) => {
                refused = Some(v);
                break;
            }
            None => panic!("the server died"),
        }
    }
    let refused = refused.expect("the disk refused a change");
    let message = refused["exception"].as_str().unwrap_or("");
    assert!(message.contains("could not save"), "{refused}");
    // Reads keep working, and show no refused job.
    let listed = call("list_jobs", json!({})).expect("list_jobs answers");
    let listed = listed["return"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(listed.len(), acknowledged.len(), "only acknowledged jobs");
    // And every acknowledged job survives a crash.
    server.kill9();
    let server = ServerProcess::start(&config, &["--state", &state.to_string_lossy()]);
    let mut c = server.client();
    let jobs = c.ok("list_jobs", json!([]), json!({}));
    let ids: Vec<Value> = jobs
        .as_array()
        .map(|a| a.iter().map(|j| j["job_id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids, acknowledged, "0 acknowledged jobs lost");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
