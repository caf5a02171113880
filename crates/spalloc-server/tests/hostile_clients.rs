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

#[test]
fn a_client_queue_is_bounded_in_bytes_as_well_as_messages() {
    use spalloc_server::server::backlog::Backlog;
    use spalloc_server::server::shared::{Outbox, CLIENT_QUEUE_BYTES};
    use std::sync::Arc;
    let (queue, mut inbox) = tokio::sync::mpsc::channel(4096);
    let (hangup, _hungup) = tokio::sync::oneshot::channel();
    let backlog = Arc::new(Backlog::default());
    let outbox = Outbox::new(queue, Arc::clone(&backlog), hangup);
    let big = vec![b'x'; 1 << 20];
    let mut accepted = 0;
    while outbox.try_send(big.clone()).is_ok() {
        accepted += 1;
        assert!(accepted <= 64, "the byte limit is not enforced");
    }
    assert_eq!(accepted, CLIENT_QUEUE_BYTES >> 20);
    assert_eq!(backlog.bytes(), CLIENT_QUEUE_BYTES);
    // Small messages still fit only once the writer has drained some.
    assert!(outbox.try_send(vec![b'y'; 10]).is_err());
    let line = inbox.try_recv().unwrap();
    backlog.written(1, line.len());
    assert!(outbox.try_send(vec![b'y'; 10]).is_ok());
    // Below the cap, one message of any size is taken: a listing bigger
    // than what is left of the cap is still delivered.
    let huge = vec![b'z'; 2 << 20];
    assert!(outbox.try_send(huge).is_ok());
    assert!(backlog.bytes() > CLIENT_QUEUE_BYTES);
}
