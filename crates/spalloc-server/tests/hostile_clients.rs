//! Hostile and broken clients: one that never reads its replies, too many
//! connections, and a flood of connections that come and go. None of them
//! may block the server, grow its memory without bound, or leak a slot.

mod common;

use common::{small_config, start, Client};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads `n` reply lines from `reader`, failing if the connection ends first.
fn read_replies(reader: &mut impl BufRead, n: usize) -> Vec<Value> {
    let mut replies = Vec::with_capacity(n);
    let mut line = String::new();
    while replies.len() < n {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => panic!(
                "the connection ended after {} of {n} replies",
                replies.len()
            ),
            Ok(_) => replies.push(serde_json::from_str(&line).expect("JSON")),
        }
    }
    replies
}

/// Sends `n` creates of jobs no machine can run in one pipelined burst,
/// reads nothing for `behind`, then checks every reply: each a new job ID
/// (each create is a change: created, then cancelled), one more than the
/// last, so any reply lost, doubled or out of order shows.
fn pipelined_creates_come_back_in_order(
    server: &spalloc_server::RunningServer,
    n: usize,
    behind: Duration,
) {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let line = b"{\"command\": \"create_job\", \"args\": [], \"kwargs\": \
                 {\"owner\": \"p\", \"machine\": \"nowhere\", \"keepalive\": null}}\n";
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&line.repeat(n)).unwrap());
    std::thread::sleep(behind);
    let mut reader = BufReader::new(stream);
    let replies = read_replies(&mut reader, n);
    sender.join().unwrap();
    let ids: Vec<u64> = replies
        .iter()
        .filter_map(|r| r["return"].as_u64())
        .collect();
    assert_eq!(ids, (1..=n as u64).collect::<Vec<_>>());
}

#[test]
fn a_client_that_pipelines_4097_lines_in_one_write_gets_every_reply() {
    // The reproduction: more lines in one write than a client's queue holds.
    let server = start(small_config("", ""));
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&b"x\n".repeat(4097)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let replies = read_replies(&mut reader, 4097);
    assert!(replies
        .iter()
        .all(|r| r["exception"].as_str().is_some_and(|e| e.contains("JSON"))));
    // The connection is still in service.
    stream.write_all(b"{\"command\": \"version\"}\n").unwrap();
    assert_eq!(read_replies(&mut reader, 1)[0], json!({"return": "6.0.0"}));
}

#[test]
fn a_client_that_sends_far_faster_than_it_reads_is_slowed_down_not_cut_off() {
    let server = start(small_config("", ""));
    let mut bystander = Client::connect(&server);
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Several times the queue's message cap, with replies of a few hundred
    // bytes, written from another thread (the server stops reading them
    // while the replies back up, so the writes block until we read).
    const N: usize = 12_000;
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let line = b"{\"command\": \"list_machines\"}\n".repeat(N / 4);
        for _ in 0..4 {
            writer.write_all(&line).unwrap();
        }
    });
    // Fall well behind before reading anything.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        bystander.ok("version", json!([]), json!({})),
        json!("6.0.0")
    );
    let mut reader = BufReader::new(stream);
    let replies = read_replies(&mut reader, N);
    sender.join().unwrap();
    assert!(replies
        .iter()
        .all(|r| r["return"][0]["name"] == json!("test-machine")));
}

#[test]
fn a_client_that_pipelines_10000_changes_without_reading_gets_every_reply_in_order() {
    let server = start(small_config("", ""));
    // Fall well behind before reading anything.
    pipelined_creates_come_back_in_order(&server, 10_000, Duration::from_millis(300));
}

#[test]
fn a_watcher_that_never_reads_its_notifications_is_disconnected_and_harms_nobody() {
    let server = start(small_config("", ""));
    // A small receive window, so that the notifications pile up in the
    // server rather than in the kernel's buffers.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.local_addr().into()).unwrap();
    let mut watcher: TcpStream = socket.into();
    watcher
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    watcher
        .write_all(b"{\"command\": \"notify_job\"}\n{\"command\": \"notify_machine\"}\n")
        .unwrap();
    // Every job created and destroyed notifies the watcher several times.
    let mut maker = Client::connect(&server);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut cycles = 0usize;
    let disconnected = loop {
        let job = maker.create(json!([1]), json!({"keepalive": null}));
        maker.ok("destroy_job", json!([job]), json!({}));
        cycles += 1;
        if cycles % 100 == 0 {
            // Once the server has hung up, writing fails (reset).
            let probe = watcher
                .write_all(b"{\"command\": \"version\"}\n")
                .and_then(|()| watcher.write_all(b"{\"command\": \"version\"}\n"));
            if let Err(e) = probe {
                // A reset, not our own write timeout: the server hung up.
                break !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
        if Instant::now() > deadline || cycles >= 50_000 {
            break false;
        }
    };
    assert!(
        disconnected,
        "the server never dropped a watcher that does not read ({cycles} jobs)"
    );
    // Everyone else is served normally.
    assert_eq!(maker.ok("version", json!([]), json!({})), json!("6.0.0"));
    let mut late = Client::connect(&server);
    assert_eq!(late.ok("version", json!([]), json!({})), json!("6.0.0"));
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_harms_nobody() {
    let server = start(small_config("", "stalled_client_timeout = 1.0"));
    let mut bystander = Client::connect(&server);
    let mut hog = TcpStream::connect(server.local_addr()).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Pipeline requests with biggish replies and never read any of them. The
    // server stops reading once the hog's replies back up, and hangs up
    // once nothing could be written to it for the stall timeout: our writes
    // then start failing.
    let request = b"{\"command\": \"list_machines\", \"args\": [], \"kwargs\": {}}\n".repeat(64);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut sent = 0usize;
    let closed = loop {
        if let Err(e) = hog.write_all(&request) {
            // A reset, not our own write timeout: the server hung up.
            let timed_out = matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            break !timed_out;
        }
        sent += 64;
        if Instant::now() > deadline {
            break false;
        }
        if sent % 4096 == 0 {
            // Meanwhile everyone else is served normally.
            assert_eq!(
                bystander.ok("version", json!([]), json!({})),
                json!("6.0.0")
            );
        }
    };
    assert!(
        closed,
        "the server never dropped a client that does not read ({sent} requests sent)"
    );
    assert_eq!(
        bystander.ok("version", json!([]), json!({})),
        json!("6.0.0")
    );
    // A new client is served too.
    let mut late = Client::connect(&server);
    assert_eq!(late.ok("version", json!([]), json!({})), json!("6.0.0"));
}

/// Reads one line (or whatever arrives before the connection closes).
fn read_all(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until a fresh connection is accepted and served.
fn wait_for_a_slot(server: &spalloc_server::RunningServer) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = Client::connect(server);
        c.send_raw(b"{\"command\": \"version\"}\n");
        match c.read_line() {
            Some(v) if v.get("return").is_some() => return c,
            other => assert!(
                Instant::now() < deadline,
                "no connection slot came free: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_beyond_the_cap_are_refused_with_an_explanation() {
    let server = start(small_config("", "max_connections = 2"));
    let mut a = Client::connect(&server);
    let mut b = Client::connect(&server);
    // Both are fully accepted once they have been answered.
    assert_eq!(a.ok("version", json!([]), json!({})), json!("6.0.0"));
    assert_eq!(b.ok("version", json!([]), json!({})), json!("6.0.0"));
    let mut third = TcpStream::connect(server.local_addr()).unwrap();
    let text = read_all(&mut third);
    let reply: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert!(
        reply["exception"]
            .as_str()
            .unwrap()
            .contains("too many connections"),
        "{reply}"
    );
    // The connected ones are unaffected; closing one frees its place.
    assert_eq!(a.ok("version", json!([]), json!({})), json!("6.0.0"));
    drop(b);
    let mut c = wait_for_a_slot(&server);
    assert_eq!(c.ok("version", json!([]), json!({})), json!("6.0.0"));
    assert_eq!(a.ok("version", json!([]), json!({})), json!("6.0.0"));
}

#[test]
fn max_connections_must_be_positive() {
    let text = "max_connections = 0\n";
    let err = spalloc_server::ServerConfig::from_toml_str(text).unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
}

#[test]
fn a_flood_of_connections_that_come_and_go_leaks_nothing() {
    let server = start(small_config("", "max_connections = 8"));
    let addr = server.local_addr();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..150 {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    match (t + i) % 4 {
                        0 => {}
                        1 => {
                            let _ = s.write_all(b"{\"command\": \"create_job\", \"kwa");
                        }
                        2 => {
                            let _ = s
                                .write_all(b"{\"command\": \"list_jobs\"}\n".repeat(20).as_slice());
                        }
                        _ => {
                            let _ = s.write_all(b"garbage\n{\"command\": \"notify_job\"}\n");
                            let _ = s.shutdown(std::net::Shutdown::Write);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every slot is released: all 8 can be held at once again.
    let held: Vec<Client> = (0..8).map(|_| wait_for_a_slot(&server)).collect();
    assert_eq!(held.len(), 8);
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(read_all(&mut extra).contains("too many connections"));
}

/// A server with a state file in a fresh directory (returned, for the test
/// to remove) and an fsync per commit, the slowest setting: replies wait
/// longest for their commits.
fn server_flushing_each_commit(name: &str) -> (spalloc_server::RunningServer, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("spalloc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = small_config("", "[store]\nsynchronous = \"full\"");
    config.state_file = Some(dir.join("state.sqlite"));
    (start(config), dir)
}

#[test]
fn a_client_pipelining_changes_gets_every_reply_while_they_wait_for_the_state_file() {
    // Replies to changes wait for their commit before they are queued: they
    // count towards the client's backlog too, so that a burst of commits
    // cannot overflow its queue (on a fast disk they rarely pile up; this
    // checks that every reply arrives, in order, whatever the timing).
    let (server, dir) = server_flushing_each_commit("pipelined");
    pipelined_creates_come_back_in_order(&server, 20_000, Duration::ZERO);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_that_stops_sending_right_after_a_change_still_gets_its_reply() {
    // Like `printf 'create_job…' | nc -N`: the reply waits for the state
    // file's commit, the client has already shut its sending side.
    let (server, dir) = server_flushing_each_commit("half-closed");
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.local_addr();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let line = b"{\"command\": \"create_job\", \"args\": [], \"kwargs\": \
                             {\"owner\": \"p\", \"machine\": \"nowhere\", \"keepalive\": null}}\n";
                stream.write_all(&line.repeat(5)).unwrap();
                stream.shutdown(std::net::Shutdown::Write).unwrap();
                read_all(&mut stream)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for client in clients {
        let text = client.join().unwrap();
        let replies: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(replies.len(), 5, "{text}");
        ids.extend(
            replies
                .iter()
                .map(|r| r["return"].as_u64().expect("a job ID")),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=40).collect::<Vec<_>>());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jobs_with_huge_owners_are_refused_so_listings_stay_small_for_everyone() {
    // The reproduction: twenty jobs whose owner is a 1,000,000-character
    // string made every list_jobs reply outgrow the per-client cap.
    let server = start(small_config("", ""));
    let mut attacker = Client::connect(&server);
    let owner = "o".repeat(1_000_000);
    for _ in 0..20 {
        let refused = attacker
            .call("create_job", json!([1]), json!({"owner": owner}))
            .unwrap_err();
        assert!(refused.starts_with("owner is too long"), "{refused}");
    }
    let tag = "t".repeat(500_000);
    let refused = attacker
        .call(
            "create_job",
            json!([1]),
            json!({"owner": "x", "tags": [tag]}),
        )
        .unwrap_err();
    assert!(refused.starts_with("tag is too long"), "{refused}");
    let machine = "m".repeat(500_000);
    let refused = attacker
        .call(
            "create_job",
            json!([1]),
            json!({"owner": "x", "machine": machine}),
        )
        .unwrap_err();
    assert!(refused.starts_with("machine name is too long"), "{refused}");
    let padding = " ".repeat(500_000) + "0.5";
    let refused = attacker
        .call(
            "create_job",
            json!([1]),
            json!({"owner": "x", "min_ratio": padding}),
        )
        .unwrap_err();
    assert!(
        refused.starts_with("create_job's arguments are too long"),
        "{refused}"
    );
    let job = attacker.create(json!([1]), json!({}));
    let refused = attacker
        .call("destroy_job", json!([job, "r".repeat(100_000)]), json!({}))
        .unwrap_err();
    assert!(refused.starts_with("reason is too long"), "{refused}");
    // Everyone else's listing is one small line with the one real job.
    let mut user = Client::connect(&server);
    let jobs = user.ok("list_jobs", json!([]), json!({}));
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
    assert!(jobs.to_string().len() < 1024);
}

#[test]
fn watches_are_bounded_per_connection_and_unknown_names_cost_nothing() {
    let server = start(small_config("", ""));
    let mut watcher = Client::connect(&server);
    // Names no machine has, each half a megabyte: accepted as by the
    // reference, but not kept.
    let name = "n".repeat(512 * 1024);
    for i in 0..20 {
        let reply = watcher.call("notify_machine", json!([format!("{name}{i}")]), json!({}));
        assert_eq!(reply, Ok(Value::Null));
    }
    // Job IDs that are not live jobs: likewise.
    let ids: String = (1_000_000..1_020_000)
        .map(|id| format!("{{\"command\": \"notify_job\", \"args\": [{id}]}}\n"))
        .collect();
    watcher.send_raw(ids.as_bytes());
    for _ in 0..20_000 {
        assert_eq!(watcher.reply(), Ok(Value::Null));
    }
    // Live jobs: up to the limit, then a clear refusal.
    let limit = spalloc_server::core::watch::MAX_WATCHES_PER_CLIENT;
    let mut owner = Client::connect(&server);
    let jobs: Vec<u64> = (0..=limit)
        .map(|_| owner.create(json!([1]), json!({"keepalive": null})))
        .collect();
    for job in &jobs[..limit] {
        assert_eq!(
            watcher.call("notify_job", json!([job]), json!({})),
            Ok(Value::Null)
        );
    }
    let refused = watcher
        .call("notify_job", json!([jobs[limit]]), json!({}))
        .unwrap_err();
    assert!(refused.contains("too many jobs watched"), "{refused}");
    // A job that ended makes room; watching everything is always possible.
    owner.ok("destroy_job", json!([jobs[0]]), json!({}));
    assert_eq!(
        watcher.call("notify_job", json!([jobs[limit]]), json!({})),
        Ok(Value::Null)
    );
    assert_eq!(
        watcher.call("notify_job", json!([]), json!({})),
        Ok(Value::Null)
    );
    // The connection still gets the notifications it asked for.
    owner.ok("destroy_job", json!([jobs[1]]), json!({}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !watcher.notifications.iter().any(|n| {
        n["jobs_changed"]
            .as_array()
            .is_some_and(|j| j.contains(&json!(jobs[1])))
    }) {
        assert!(
            Instant::now() < deadline,
            "no notification for job {}",
            jobs[1]
        );
        watcher.ok("version", json!([]), json!({}));
    }
}

/// The real binary, started by `sh` after `ulimit_args` (such as `-n 160`)
/// on a small simulated machine; killed on drop.
#[cfg(target_os = "linux")]
struct LimitedServer {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

#[cfg(target_os = "linux")]
impl LimitedServer {
    fn start(test: &str, ulimit_args: &str) -> LimitedServer {
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join(format!("spalloc-fds-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "ip = \"127.0.0.1\"\nport = {port}\n[[machine]]\nname = \"m\"\nwidth = 1\n\
                 height = 1\nbase_ip = \"127.0.1.0\"\npower_delay = 0.01\n"
            ),
        )
        .unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit {ulimit_args} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_spalloc-server"))
            .arg(&config)
            .arg("--no-state")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server = LimitedServer { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The soft and hard limits on open files from /proc.
    fn open_file_limits(&self) -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields[3].to_owned(), fields[4].to_owned())
    }

    /// Stops the server and returns its log.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        log
    }
}

#[cfg(target_os = "linux")]
impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let server = LimitedServer::start("raise", "-Sn 100");
    let (soft, hard) = server.open_file_limits();
    assert_ne!(soft, "100");
    assert_eq!(soft, hard);
}

#[cfg(target_os = "linux")]
#[test]
fn with_few_file_descriptors_every_client_is_answered_or_turned_away() {
    // The reproduction: more clients than the open-file limit allows used
    // to connect and never be answered.
    let server = LimitedServer::start("few", "-n 160");
    assert_eq!(server.open_file_limits().0, "160");
    let clients: Vec<TcpStream> = (0..220)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let _ = s.write_all(b"{\"command\": \"version\"}\n");
            s
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for (i, s) in clients.iter().enumerate() {
        let mut line = String::new();
        match BufReader::new(s).read_line(&mut line) {
            Ok(n) if n > 0 => {}
            other => panic!("client {i} was never answered: {other:?}"),
        }
        let reply: Value = serde_json::from_str(&line).unwrap();
        if reply["return"] == json!("6.0.0") {
            served += 1;
        } else {
            let why = reply["exception"].as_str().unwrap_or_default();
            assert!(why.contains("too many connections"), "{reply}");
            refused += 1;
        }
    }
    assert!(
        served > 0 && refused > 0,
        "{served} served, {refused} refused"
    );
    assert!(served < 160, "{served} served");
    drop(clients);
    let log = server.stop();
    assert!(
        log.contains("open-file limit leaves room for fewer connections"),
        "{log}"
    );
}
