//! End to end over real sockets: a plain UDP SCP version request sent to
//! `spalloc-proxy`'s local port goes through the websocket to the server's
//! proxy route, on to the job's simulated board, and its reply comes back.
//!
//! The first test serves the proxy route on its own, reading the job from a
//! real server over the spalloc protocol and authenticating with the
//! route's `Authorise` hook; the second goes through the real server's
//! HTTP listener with a real API token.

mod support;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use spalloc::{Allocation, ProtocolClient};
use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use spalloc_server::proxy::access::{Lookup, ProxyTarget};
use spalloc_server::proxy::route::{self, Authorise, Caller, ProxyJobs, ProxyState};
use spalloc_server::proxy::socket::ProxySettings;
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::process::Running;
use support::Fixture;

/// The job table as the real server reports it over the spalloc protocol.
struct ServerJobs {
    client: Mutex<ProtocolClient>,
}

impl ProxyJobs for ServerJobs {
    fn lookup(&self, job: u64) -> Lookup {
        let Ok(client) = self.client.lock() else {
            return Lookup::Unknown;
        };
        let Ok(jobs) = client.list_jobs() else {
            return Lookup::Unknown;
        };
        let Some(listing) = jobs.iter().find(|j| j.job_id == job) else {
            return Lookup::Unknown;
        };
        let owner = listing.owner.clone();
        let Ok(info) = client.get_job_machine_info(job) else {
            return Lookup::Unknown;
        };
        let (Some(machine), Some(connections)) = (info.machine_name, info.connections) else {
            return Lookup::Unallocated { owner };
        };
        let boards: BTreeMap<_, _> = connections
            .iter()
            .filter_map(|c| Some(((c.0[0], c.0[1]), c.1.parse().ok()?)))
            .collect();
        Lookup::Allocated(ProxyTarget {
            owner,
            allocation: (machine, 0),
            boards,
        })
    }
}

const MACHINE: &str = r#"
port = 0
ip = "127.0.0.1"
timeout_check_interval = 0.5
seconds_before_free = 0.0

[[machine]]
name = "answering"
width = 1
height = 1
base_ip = "127.74.0.0"
power_delay = 0.0
answer_scp = true
"#;

fn scp_version(seq: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0];
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

#[test]
fn an_scp_version_request_to_the_local_port_gets_the_boards_reply_through_the_proxy() {
    let fixture = Fixture::start(MACHINE);
    let client = fixture.client();
    let job = fixture.create_job(&client, Allocation::Boards(1), "alice");
    let jobs = Arc::new(ServerJobs {
        client: Mutex::new(fixture.client()),
    });
    let authorise: Authorise = Arc::new(|parts| {
        Box::pin(async move {
            let user = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            user.map(|user| Caller { user, admin: false })
                .ok_or_else(|| (StatusCode::UNAUTHORIZED, "log in").into_response())
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let state = ProxyState {
        jobs,
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

    let home = fixture.home.path();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spalloc-proxy"));
    command
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CONFIG_DIRS", home.join("system"))
        .args([
            &job.to_string(),
            "--url",
            &format!("http://{http}/"),
            "--token",
            "alice",
            "--json",
            "--hostname",
            "127.0.0.1",
            "--port",
            &fixture.port(),
        ]);
    let mut forwarder = Running::piped(&mut command);

    // The first line of stdout is the port table.
    let deadline = Instant::now() + Duration::from_secs(60);
    let table: Value = loop {
        let text = forwarder.stdout().text();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str(line).expect("a JSON table");
        }
        assert!(
            Instant::now() < deadline,
            "no table; stderr: {}",
            forwarder.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(table["job"], job);
    let board = &table["boards"][0];
    assert_eq!(
        (board["x"].as_u64(), board["y"].as_u64()),
        (Some(0), Some(0))
    );
    let board_ip = board["board"].as_str().expect("board ip").to_owned();
    let local = board["local"].as_str().expect("local port").to_owned();

    // Plain UDP, resent (bounded) until the websocket is up and the board
    // answers, as any SCP client does.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buffer = [0u8; 2048];
    let mut reply = None;
    for _ in 0..150 {
        socket.send_to(&scp_version(9), &local).expect("send");
        if let Ok(n) = socket.recv(&mut buffer) {
            reply = Some(Reply::decode(&buffer[..n]).expect("an SCP reply"));
            break;
        }
    }
    let reply = reply.unwrap_or_else(|| panic!("no reply; stderr: {}", forwarder.stderr_text()));
    assert_eq!((reply.rc, reply.seq), (0x80, 9));
    let info = VersionInfo::decode(&reply.payload).expect("a version");
    assert_eq!(info.name, "SC&MP");
    assert!(info.hardware.contains(&board_ip), "{}", info.hardware);

    forwarder.interrupt();
    assert_eq!(
        forwarder.wait_exit(),
        0,
        "stderr: {}",
        forwarder.stderr_text()
    );
    drop(runtime);
}

#[test]
fn the_forwarder_reaches_a_board_through_the_real_servers_http_listener() {
    use spalloc_server::accounts::{NewUser, Role};
    let fixture = Fixture::start(
        &format!("{MACHINE}\n[http]\nport = 0\n")
            .replace("base_ip = \"127.74.0.0\"", "base_ip = \"127.77.0.0\""),
    );
    let now = spalloc_server::clock::now() as i64;
    let accounts = fixture.server.accounts();
    accounts
        .add_user(
            &NewUser {
                name: "carol".into(),
                role: Role::User,
                password: None,
                groups: vec![],
            },
            now,
        )
        .expect("user");
    let token = accounts
        .create_token("carol", "forwarder", None, now)
        .expect("token")
        .secret;
    let client = fixture.client();
    let job = fixture.create_job(&client, Allocation::Boards(1), "carol");
    let http = fixture.server.http_addr().expect("an HTTP listener");

    let home = fixture.home.path();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spalloc-proxy"));
    command
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CONFIG_DIRS", home.join("system"))
        .args([
            &job.to_string(),
            "--url",
            &format!("http://{http}/"),
            "--token",
            &token,
            "--json",
            "--hostname",
            "127.0.0.1",
            "--port",
            &fixture.port(),
        ]);
    let mut forwarder = Running::piped(&mut command);
    let deadline = Instant::now() + Duration::from_secs(60);
    let table: Value = loop {
        if let Some(line) = forwarder.stdout().text().lines().next() {
            break serde_json::from_str(line).expect("a JSON table");
        }
        assert!(
            Instant::now() < deadline,
            "no table: {}",
            forwarder.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let local = table["boards"][0]["local"]
        .as_str()
        .expect("local")
        .to_owned();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buffer = [0u8; 2048];
    let mut reply = None;
    for _ in 0..150 {
        socket.send_to(&scp_version(3), &local).expect("send");
        if let Ok(n) = socket.recv(&mut buffer) {
            reply = Some(Reply::decode(&buffer[..n]).expect("an SCP reply"));
            break;
        }
    }
    let reply = reply.unwrap_or_else(|| panic!("no reply; stderr: {}", forwarder.stderr_text()));
    let info = VersionInfo::decode(&reply.payload).expect("a version");
    assert!(info.hardware.contains("127.77.0."), "{}", info.hardware);
    forwarder.interrupt();
    assert_eq!(
        forwarder.wait_exit(),
        0,
        "stderr: {}",
        forwarder.stderr_text()
    );
}
