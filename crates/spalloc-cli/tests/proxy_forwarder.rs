//! `spalloc-proxy` end to end over real sockets: a plain UDP SCP version
//! request sent to the forwarder's local port goes through the websocket to
//! the real server's proxy route (its HTTP listener, plain or TLS), on to
//! the job's simulated board, and its reply comes back; the forwarder
//! reconnects when the websocket drops, stops when the job is destroyed,
//! and exits 0 on Ctrl-C.

mod support;

use serde_json::Value;
use spalloc::Allocation;
use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::process::Running;
use support::Fixture;

const USER: &str = "carol";
const PASSWORD: &str = "carol's password";

/// A server with an HTTP listener (`http_extra` added to `[http]`) and one
/// simulated, answering board per job on `base_ip`.
fn server(base_ip: &str, http_extra: &str) -> Fixture {
    Fixture::start(&format!(
        r#"
port = 0
ip = "127.0.0.1"
timeout_check_interval = 0.5
seconds_before_free = 0.0

[[machine]]
name = "answering"
width = 1
height = 1
base_ip = "{base_ip}"
power_delay = 0.0
answer_scp = true

[http]
port = 0
{http_extra}
"#
    ))
}

/// Adds the user; its API token.
fn add_user(fixture: &Fixture) -> String {
    let now = spalloc_server::clock::now() as i64;
    let accounts = fixture.server.accounts();
    accounts
        .add_user(
            &NewUser {
                name: USER.into(),
                role: Role::User,
                password: Some(PASSWORD.into()),
                groups: vec![],
            },
            now,
        )
        .expect("user");
    accounts
        .create_token(USER, "forwarder", None, now)
        .expect("token")
        .secret
}

/// The HTTP(S) service URL of the fixture's server.
fn service_url(fixture: &Fixture, tls: bool) -> String {
    let port = fixture.server.http_addr().expect("an HTTP listener").port();
    if tls {
        format!("https://localhost:{port}/spalloc/")
    } else {
        format!("http://127.0.0.1:{port}/spalloc/")
    }
}

/// A one-board job of the user's, created through the v2 API (legacy jobs
/// are not the user's to proxy) and ready; its ID.
fn create_job(fixture: &Fixture, ca_cert: Option<&std::path::Path>) -> u64 {
    let client = spalloc::v2::Client::builder(service_url(fixture, ca_cert.is_some()))
        .credentials(spalloc::v2::Credentials::password(USER, PASSWORD))
        .ca_cert_opt(ca_cert.map(std::path::Path::to_path_buf))
        .build()
        .expect("v2 client");
    let job = client
        .create_job(&spalloc::v2::CreateJob::boards(1))
        .expect("job");
    job.wait_until_ready(Some(Duration::from_secs(60)))
        .expect("ready");
    let id = job.id();
    // The forwarder keeps it alive from here.
    job.close();
    id
}

/// Starts `spalloc-proxy JOB ARGS --json` in the fixture's home.
fn forwarder(fixture: &Fixture, job: u64, args: &[&str]) -> Running {
    let home = fixture.home.path();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spalloc-proxy"));
    command
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CONFIG_DIRS", home.join("system"))
        .env_remove("SPALLOC_TOKEN")
        .env_remove("SPALLOC_PASSWORD")
        .arg(job.to_string())
        .args(args)
        .arg("--json");
    Running::piped(&mut command)
}

/// The forwarder's port table (its first line of output).
fn table(forwarder: &Running) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(line) = forwarder.stdout().text().lines().next() {
            return serde_json::from_str(line).expect("a JSON table");
        }
        assert!(
            Instant::now() < deadline,
            "no table; stderr: {}",
            forwarder.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scp_version(seq: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0];
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

/// Plain UDP to `local`, resent (at most 150 times) until the board
/// answers, as any SCP client does: the board's version.
fn version_through(local: &str, seq: u16, forwarder: &Running) -> VersionInfo {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buffer = [0u8; 2048];
    for _ in 0..150 {
        socket.send_to(&scp_version(seq), local).expect("send");
        while let Ok(n) = socket.recv(&mut buffer) {
            let reply = Reply::decode(&buffer[..n]).expect("an SCP reply");
            if reply.seq == seq {
                assert_eq!(reply.rc, 0x80);
                return VersionInfo::decode(&reply.payload).expect("a version");
            }
        }
    }
    panic!("no reply; stderr: {}", forwarder.stderr_text());
}

#[test]
fn an_scp_version_request_to_the_local_port_gets_the_boards_reply_and_ctrl_c_stops_it() {
    let fixture = server("127.77.0.0", "");
    let token = add_user(&fixture);
    let job = create_job(&fixture, None);
    let mut forwarder = forwarder(
        &fixture,
        job,
        &["--url", &service_url(&fixture, false), "--token", &token],
    );
    let table = table(&forwarder);
    assert_eq!(table["job"], job);
    let board = &table["boards"][0];
    assert_eq!(
        (board["x"].as_u64(), board["y"].as_u64()),
        (Some(0), Some(0))
    );
    let board_ip = board["board"].as_str().expect("board ip").to_owned();
    let local = board["local"].as_str().expect("local port").to_owned();

    let info = version_through(&local, 9, &forwarder);
    assert_eq!(info.name, "SC&MP");
    assert!(info.hardware.contains(&board_ip), "{}", info.hardware);

    forwarder.interrupt();
    assert_eq!(
        forwarder.wait_exit(),
        0,
        "stderr: {}",
        forwarder.stderr_text()
    );
    // Ctrl-C leaves the job alone.
    let state = fixture.client().get_job_state(job).expect("job state");
    assert_eq!(state.state, spalloc::JobState::Ready);
    assert!(state.keepalive.is_some());
}

#[test]
fn the_forwarder_reaches_a_board_over_wss_trusting_the_ca_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let fixture = server(
        "127.78.0.0",
        &format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    add_user(&fixture);
    let job = create_job(&fixture, Some(&cert));
    let url = service_url(&fixture, true);
    let cert_path = cert.display().to_string();
    let mut forwarder = forwarder(
        &fixture,
        job,
        &[
            "--url",
            &url,
            "--ca-cert",
            &cert_path,
            "--user",
            USER,
            "--password",
            PASSWORD,
        ],
    );
    let local = table(&forwarder)["boards"][0]["local"]
        .as_str()
        .expect("local")
        .to_owned();
    let info = version_through(&local, 4, &forwarder);
    assert!(info.hardware.contains("127.78.0."), "{}", info.hardware);
    forwarder.interrupt();
    assert_eq!(forwarder.wait_exit(), 0, "{}", forwarder.stderr_text());

    // Without the certificate the server is not trusted, and it says so.
    let mut untrusting = self::forwarder(
        &fixture,
        job,
        &["--url", &url, "--user", USER, "--password", PASSWORD],
    );
    assert_ne!(untrusting.wait_exit(), 0);
    let said = untrusting.stderr_text();
    assert!(
        said.contains("certificate") || said.contains("Certificate"),
        "{said}"
    );
}

/// A TCP relay in front of the server whose connections the test can cut,
/// as a network drop would.
struct Relay {
    address: SocketAddr,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let address = listener.local_addr().expect("address");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&connections);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut list) = kept.lock() {
                    list.push(c3);
                    list.push(s3);
                }
                std::thread::spawn(move || pipe(client, server));
                std::thread::spawn(move || pipe(s2, c2));
            }
        });
        Relay {
            address,
            connections,
        }
    }

    /// Cuts every connection made so far.
    fn cut(&self) -> usize {
        let mut list = self.connections.lock().expect("relay list");
        let n = list.len();
        for c in list.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        n
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16384];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if std::io::Write::write_all(&mut to, &buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn the_forwarder_reconnects_when_the_websocket_drops() {
    let fixture = server("127.79.0.0", "");
    let token = add_user(&fixture);
    let job = create_job(&fixture, None);
    let relay = Relay::to(fixture.server.http_addr().expect("HTTP"));
    let mut forwarder = forwarder(
        &fixture,
        job,
        &[
            "--url",
            &format!("http://{}/spalloc/", relay.address),
            "--token",
            &token,
        ],
    );
    let local = table(&forwarder)["boards"][0]["local"]
        .as_str()
        .expect("local")
        .to_owned();
    version_through(&local, 1, &forwarder);
    assert!(relay.cut() > 0, "the websocket went through the relay");
    forwarder
        .stderr()
        .wait_until("the forwarder notices the drop", |t| {
            t.contains("reconnecting")
        });
    let info = version_through(&local, 2, &forwarder);
    assert!(info.hardware.contains("127.79.0."), "{}", info.hardware);
    forwarder.interrupt();
    assert_eq!(forwarder.wait_exit(), 0, "{}", forwarder.stderr_text());
}

#[test]
fn destroying_the_job_stops_the_forwarder_with_the_servers_reason() {
    let fixture = server("127.80.0.0", "");
    let token = add_user(&fixture);
    let job = create_job(&fixture, None);
    let mut forwarder = forwarder(
        &fixture,
        job,
        &["--url", &service_url(&fixture, false), "--token", &token],
    );
    let local = table(&forwarder)["boards"][0]["local"]
        .as_str()
        .expect("local")
        .to_owned();
    version_through(&local, 1, &forwarder);
    fixture
        .client()
        .destroy_job(job, Some("done"))
        .expect("destroy");
    assert_eq!(forwarder.wait_exit(), 1);
    let said = forwarder.stderr_text();
    assert!(said.contains("proxy closed"), "{said}");
    assert!(said.contains("1001"), "{said}");
}

#[test]
fn a_job_of_someone_else_is_refused_without_retrying() {
    let fixture = server("127.81.0.0", "");
    let token = add_user(&fixture);
    let job = fixture.create_job(&fixture.client(), Allocation::Boards(1), "somebody-else");
    let mut forwarder = forwarder(
        &fixture,
        job,
        &["--url", &service_url(&fixture, false), "--token", &token],
    );
    assert_eq!(forwarder.wait_exit(), 1);
    let said = forwarder.stderr_text();
    assert!(said.contains(&job.to_string()), "{said}");
}
