//! Round-trip time of an SCP version request to a simulated board, sent
//! directly and through `spalloc-proxy` and the server's websocket proxy,
//! and sustained datagrams per second through one proxied channel.
//!
//! `cargo bench -p spalloc-cli --bench proxy_round_trip [-- ROUND_TRIPS]`
//! (default 2000). Loopback only; the board answers on 127.75.0.x.

use serde_json::{json, Value};
use spalloc::ProtocolClient;
use spalloc_server::proxy::access::{Lookup, ProxyTarget};
use spalloc_server::proxy::route::{self, Authorise, Caller, ProxyJobs, ProxyState};
use spalloc_server::proxy::socket::ProxySettings;
use spalloc_server::{RunningServer, ServerConfig};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The job table as the server reports it (as in the end-to-end test).
struct ServerJobs(Mutex<ProtocolClient>);

impl ProxyJobs for ServerJobs {
    fn lookup(&self, job: u64) -> Lookup {
        let Ok(client) = self.0.lock() else {
            return Lookup::Unknown;
        };
        let Ok(info) = client.get_job_machine_info(job) else {
            return Lookup::Unknown;
        };
        let (Some(machine), Some(connections)) = (info.machine_name, info.connections) else {
            return Lookup::Unknown;
        };
        Lookup::Allocated(ProxyTarget {
            owner: "bench".into(),
            allocation: (machine, 0),
            boards: connections
                .iter()
                .filter_map(|c| Some(((c.0[0], c.0[1]), c.1.parse().ok()?)))
                .collect::<BTreeMap<_, _>>(),
        })
    }
}

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
        "ip = \"127.0.0.1\"\nport = 0\n[[machine]]\nname = \"bench\"\nwidth = 1\nheight = 1\nbase_ip = \"127.75.0.0\"\npower_delay = 0.0\nanswer_scp = true\n",
    )
    .expect("config");
    let server = RunningServer::start(config).expect("server");
    let port = server.local_addr().port();
    let client = ProtocolClient::new("127.0.0.1", port).with_timeout(Some(Duration::from_secs(10)));
    let reply = client
        .call(
            "create_job",
            vec![json!(1)],
            serde_json::Map::from_iter([("owner".into(), json!("bench"))]),
        )
        .expect("create_job");
    let job = reply.as_u64().expect("job id");

    let authorise: Authorise = Arc::new(|_parts| {
        Box::pin(async move {
            Ok::<_, axum::response::Response>(Caller {
                user: "bench".into(),
                admin: false,
            })
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let state = ProxyState {
        jobs: Arc::new(ServerJobs(Mutex::new(
            ProtocolClient::new("127.0.0.1", port).with_timeout(Some(Duration::from_secs(10))),
        ))),
        authorise,
        settings: ProxySettings::default(),
    };
    let http = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, route::routes(state)).await;
        });
        address
    });
    let home = tempfile::tempdir().expect("temp dir");
    let mut forwarder = Command::new(env!("CARGO_BIN_EXE_spalloc-proxy"))
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args([
            &job.to_string(),
            "--url",
            &format!("http://{http}/"),
            "--token",
            "bench",
            "--json",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
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
    println!("SCP version round trip, {n} sequential requests (µs):");
    println!("{:<28} {:>8} {:>8} {:>8}", "path", "median", "p90", "p99");
    for (name, t) in [
        ("direct to the board", &direct_times),
        ("via spalloc-proxy + proxy", &proxied_times),
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
    println!("sustained replies/s, 16 in flight, 2 s: direct {direct_rate:.0}, proxied {proxied_rate:.0}");
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    drop(runtime);
    server.shutdown();
}
