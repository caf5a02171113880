//! Hostile and broken clients: one that never reads its replies, too many
//! connections, and a flood of connections that come and go. None of them
//! may block the server, grow its memory without bound, or leak a slot.

mod common;

use common::{small_config, start, Client};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn a_client_that_never_reads_is_disconnected_and_harms_nobody() {
    let server = start(small_config("", ""));
    let mut bystander = Client::connect(&server);
    let mut hog = TcpStream::connect(server.local_addr()).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Pipeline requests with biggish replies and never read any of them. The
    // server's queue for the hog is bounded, so once it and the socket
    // buffers are full the server hangs up and our writes start failing.
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
    use spalloc_server::server::shared::{Outbox, CLIENT_QUEUE_BYTES};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (queue, mut inbox) = tokio::sync::mpsc::channel(4096);
    let (hangup, _hungup) = tokio::sync::oneshot::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox::new(queue, Arc::clone(&queued), hangup);
    let big = vec![b'x'; 1 << 20];
    let mut accepted = 0;
    while outbox.try_send(big.clone()).is_ok() {
        accepted += 1;
        assert!(accepted <= 64, "the byte limit is not enforced");
    }
    assert_eq!(accepted, CLIENT_QUEUE_BYTES >> 20);
    assert_eq!(queued.load(Ordering::Acquire), CLIENT_QUEUE_BYTES);
    // Small messages still fit only once the writer has drained some.
    assert!(outbox.try_send(vec![b'y'; 10]).is_err());
    let line = inbox.try_recv().unwrap();
    queued.fetch_sub(line.len(), Ordering::AcqRel);
    assert!(outbox.try_send(vec![b'y'; 10]).is_ok());
}
