//! Bad input never hurts anyone else: every malformed request gets a clear
//! exception where the stream is still usable, and other clients keep being
//! served whatever one client does.

mod common;

use common::{small_config, start, Client};
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;

#[test]
fn malformed_lines_get_exceptions_and_the_connection_stays_usable() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    for (line, needle) in [
        (&b"not json\n"[..], "not valid JSON"),
        (b"[1,2]\n", "must be a JSON object"),
        (b"\"command\"\n", "must be a JSON object"),
        (b"{}\n", "no \"command\""),
        (b"{\"command\": 7}\n", "\"command\" must be a string"),
        (
            b"{\"command\": \"version\", \"args\": {\"a\": 1}}\n",
            "\"args\" must be a list",
        ),
        (
            b"{\"command\": \"version\", \"kwargs\": [1]}\n",
            "\"kwargs\" must be an object",
        ),
        (b"{\"command\": \"frobnicate\"}\n", "unknown command"),
        (b"\xff\xfe\n", "not valid UTF-8"),
        (
            b"{\"command\": \"get_job_state\"}\n",
            "missing 1 required positional argument: 'job_id'",
        ),
        (
            b"{\"command\": \"get_job_state\", \"args\": [1, 2]}\n",
            "takes 3 positional arguments but 4 were given",
        ),
    ] {
        c.send_raw(line);
        let err = c.reply().unwrap_err();
        assert!(
            err.contains(needle),
            "{:?} gave {err:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(c.ok("version", json!([]), json!({})), json!("6.0.0"));
    }
    // A "client" kwarg is reserved and silently dropped, as by the reference.
    assert_eq!(
        c.ok("version", json!([]), json!({"client": 1})),
        json!("6.0.0")
    );
}

#[test]
fn an_overlong_line_closes_only_that_connection() {
    let server = start(small_config("", ""));
    let mut bystander = Client::connect(&server);
    let mut hog = Client::connect(&server);
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent <= (1 << 20) {
        if hog.send_raw_checked(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let reply = hog.read_line().expect("an explanation before closing");
    assert!(reply["exception"].as_str().unwrap().contains("longer than"));
    assert!(hog.read_line().is_none(), "then the connection is closed");
    assert_eq!(
        bystander.ok("version", json!([]), json!({})),
        json!("6.0.0")
    );
}

#[test]
fn a_client_that_vanishes_mid_request_harms_nobody() {
    let server = start(small_config("", ""));
    {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(b"{\"command\": \"create_job\", \"args\": [], \"kw")
            .unwrap();
    }
    {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        // A whole request whose reply will never be read.
        s.write_all(b"{\"command\": \"notify_job\", \"args\": [null]}\n{\"command\": \"create_job\", \"kwargs\": {\"owner\": \"gone\"}}\n").unwrap();
    }
    let mut c = Client::connect(&server);
    let id = c.create(json!([]), json!({}));
    c.wait_state(id, 3);
    // The vanished client's job lives on (jobs are not tied to connections).
    let jobs = c.ok("list_jobs", json!([]), json!({}));
    assert_eq!(jobs.as_array().unwrap().len(), 2);
}

#[test]
fn many_clients_are_served_concurrently() {
    let server = start(small_config("", ""));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.local_addr();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                let mut c = Client::from_stream(stream);
                for _ in 0..100 {
                    assert_eq!(c.ok("version", json!([]), json!({})), json!("6.0.0"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
