//! Round-trip time of an SCP version request to a simulated board, sent
//! directly and through `spalloc-proxy` and the server's websocket proxy,
//! and sustained datagrams per second through one proxied channel.
//!
//! The same through the library's `BoardConnection`, for comparison.
//!
//! `cargo bench -p spalloc-cli --bench proxy_round_trip [-- ROUND_TRIPS]`
//! (default 2000). Loopback only; the board answers on 127.75.0.x.

use serde_json::Value;
use spalloc::v2::proxy::BoardConnection;
use spalloc::v2::{Client, CreateJob, Credentials};
use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::{RunningServer, ServerConfig};
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scp_version(seq: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0, 0, 0];
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

/// Sequential round trips to `to` (at most `10 n` attempts): sorted
/// latencies in µs.
fn round_trips(socket: &UdpSocket, to: &str, n: usize) -> Vec<f64> {
    let mut buffer = [0u8; 2048];
    let mut times = Vec::with_capacity(n);
    let mut seq: u16 = 0;
    for _ in 0..n * 10 {
        if times.len() == n {
            break;
        }
        seq = seq.wrapping_add(1);
        let start = Instant::now();
        if socket.send_to(&scp_version(seq), to).is_err() {
            continue;
        }
        // A lost reply times out and the round trip is not counted.
        while let Ok(len) = socket.recv(&mut buffer) {
            if len >= 14 && buffer[12..14] == seq.to_le_bytes() {
                times.push(start.elapsed().as_secs_f64() * 1e6);
                break;
            }
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

/// Replies per second with `window` requests in flight, for `seconds`.
fn throughput(socket: &UdpSocket, to: &str, window: usize, seconds: f64) -> f64 {
    let mut buffer = [0u8; 2048];
    let start = Instant::now();
    let mut replies = 0usize;
    let mut seq: u16 = 0;
    for _ in 0..window {
        seq = seq.wrapping_add(1);
        let _ = socket.send_to(&scp_version(seq), to);
    }
    while start.elapsed().as_secs_f64() < seconds {
        match socket.recv(&mut buffer) {
            Ok(_) => {
                replies += 1;
                seq = seq.wrapping_add(1);
                let _ = socket.send_to(&scp_version(seq), to);
            }
            // A lost datagram: refill the window.
            Err(_) => {
                seq = seq.wrapping_add(1);
                let _ = socket.send_to(&scp_version(seq), to);
            }
        }
    }
    replies as f64 / start.elapsed().as_secs_f64()
}

/// [`round_trips`] through the library's board connection.
fn library_round_trips(board: &BoardConnection, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    let mut seq: u16 = 0;
    for _ in 0..n * 10 {
        if times.len() == n {
            break;
        }
        seq = seq.wrapping_add(1);
        let start = Instant::now();
        if board.send(&scp_version(seq)).is_err() {
            break;
        }
        while let Ok(Some(reply)) = board.recv(Duration::from_millis(500)) {
            if reply.len() >= 14 && reply[12..14] == seq.to_le_bytes() {
                times.push(start.elapsed().as_secs_f64() * 1e6);
                break;
            }
        }
    }
    times.sort_by(f64::total_cmp);
    times
}

/// [`throughput`] through the library's board connection.
fn library_throughput(board: &BoardConnection, window: usize, seconds: f64) -> f64 {
    let start = Instant::now();
    let mut replies = 0usize;
    let mut seq: u16 = 0;
    for _ in 0..window {
        seq = seq.wrapping_add(1);
        let _ = board.send(&scp_version(seq));
    }
    while start.elapsed().as_secs_f64() < seconds {
        if let Ok(Some(_)) = board.recv(Duration::from_millis(500)) {
            replies += 1;
        }
        seq = seq.wrapping_add(1);
        let _ = board.send(&scp_version(seq));
    }
    replies as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let config = ServerConfig::from_toml_str(
        "ip = \"127.0.0.1\"\nport = 0\n[http]\nport = 0\n[[machine]]\nname = \"bench\"\nwidth = 1\nheight = 1\nbase_ip = \"127.75.0.0\"\npower_delay = 0.0\nanswer_scp = true\n",
    )
    .expect("config");
    let server = RunningServer::start(config).expect("server");
    let now = spalloc_server::clock::now() as i64;
    server
        .accounts()
        .add_user(
            &NewUser {
                name: "bench".into(),
                role: Role::User,
                password: Some("bench".into()),
                groups: vec![],
            },
            now,
        )
        .expect("user");
    let token = server
        .accounts()
        .create_token("bench", "bench", None, now)
        .expect("token")
        .secret;
    let url = format!("http://{}/spalloc/", server.http_addr().expect("HTTP"));
    let client = Client::builder(url.clone())
        .credentials(Credentials::Token(token.clone()))
        .build()
        .expect("client");
    let job = client.create_job(&CreateJob::boards(1)).expect("job");
    job.wait_until_ready(Some(Duration::from_secs(60)))
        .expect("ready");
    let home = tempfile::tempdir().expect("temp dir");
    let mut forwarder = Command::new(env!("CARGO_BIN_EXE_spalloc-proxy"))
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args([
            &job.id().to_string(),
            "--url",
            &url,
            "--token",
            &token,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spalloc-proxy starts");
    let mut line = String::new();
    BufReader::new(forwarder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("table");
    let table: Value = serde_json::from_str(&line).expect("JSON table");
    let board = table["boards"][0]["board"]
        .as_str()
        .expect("board")
        .to_owned();
    let local = table["boards"][0]["local"]
        .as_str()
        .expect("local")
        .to_owned();
    let direct = format!("{board}:17893");

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    // Warm up (and wait for the websocket to open), bounded.
    for _ in 0..100 {
        if !round_trips(&socket, &local, 1).is_empty() {
            break;
        }
    }
    let direct_times = round_trips(&socket, &direct, n);
    let proxied_times = round_trips(&socket, &local, n);
    let direct_rate = throughput(&socket, &direct, 16, 2.0);
    let proxied_rate = throughput(&socket, &local, 16, 2.0);
    let board = job.connect_to_board(0, 0, 17893).expect("board connection");
    let _ = library_round_trips(&board, 10);
    let library_times = library_round_trips(&board, n);
    let library_rate = library_throughput(&board, 16, 2.0);
    println!("SCP version round trip, {n} sequential requests (µs):");
    println!("{:<28} {:>8} {:>8} {:>8}", "path", "median", "p90", "p99");
    for (name, t) in [
        ("direct to the board", &direct_times),
        ("via spalloc-proxy + proxy", &proxied_times),
        ("library BoardConnection", &library_times),
    ] {
        println!(
            "{:<28} {:>8.0} {:>8.0} {:>8.0}",
            name,
            percentile(t, 0.5),
            percentile(t, 0.9),
            percentile(t, 0.99)
        );
    }
    println!(
        "added latency (median): {:.0} µs",
        percentile(&proxied_times, 0.5) - percentile(&direct_times, 0.5)
    );
    println!("sustained replies/s through one channel, 16 in flight, 2 s: direct {direct_rate:.0}, via spalloc-proxy {proxied_rate:.0}, library BoardConnection {library_rate:.0}");
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    drop(board);
    let _ = job.destroy(None);
    server.shutdown();
}
