//! The job proxy through the library ([`spalloc::v2::proxy`]) against our
//! server over real sockets: a board connection reads a simulated board's
//! version, an unconnected channel is bound on the configured address and
//! hears a board's reply, a refused open leaves the websocket usable, and
//! destroying the job closes everything with the server's reason.

use spalloc::v2::{Client, CreateJob, Credentials, Job};
use spalloc::Error;
use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use spalloc_server::{RunningServer, ServerConfig};
use std::net::Ipv4Addr;
use std::time::Duration;

/// A server whose simulated boards answer on `base_ip`, with extra TOML.
fn server(base_ip: &str, extra: &str) -> RunningServer {
    let config = ServerConfig::from_toml_str(&format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.0
        {extra}
        [http]
        port = 0

        [[machine]]
        name = "answering"
        width = 1
        height = 1
        base_ip = "{base_ip}"
        power_delay = 0.0
        answer_scp = true
        "#
    ))
    .expect("valid config");
    let server = RunningServer::start(config).expect("server starts");
    server
        .accounts()
        .add_user(
            &NewUser {
                name: "ann".into(),
                role: Role::User,
                password: Some("secret".into()),
                groups: vec![],
            },
            spalloc_server::clock::now() as i64,
        )
        .expect("user");
    server
}

fn ready_job(server: &RunningServer) -> (Client, Job) {
    let url = format!("http://{}/spalloc/", server.http_addr().expect("HTTP"));
    let client = Client::builder(url)
        .credentials(Credentials::password("ann", "secret"))
        .build()
        .expect("client");
    let job = client.create_job(&CreateJob::boards(1)).expect("job");
    job.wait_until_ready(Some(Duration::from_secs(60)))
        .expect("ready");
    (client, job)
}

fn scp_version(seq: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0, 0, 0];
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

/// Sends with `send` until a reply with `seq` comes from `recv` (at most
/// 50 tries): the board's version.
fn version(
    seq: u16,
    send: impl Fn(&[u8]) -> spalloc::Result<()>,
    recv: impl Fn(Duration) -> spalloc::Result<Option<Vec<u8>>>,
) -> VersionInfo {
    for _ in 0..50 {
        send(&scp_version(seq)).expect("send");
        while let Some(datagram) = recv(Duration::from_millis(500)).expect("recv") {
            let reply = Reply::decode(&datagram).expect("an SCP reply");
            if reply.seq == seq {
                return VersionInfo::decode(&reply.payload).expect("a version");
            }
        }
    }
    panic!("the board never answered");
}

#[test]
fn a_board_connection_reads_the_version_of_the_jobs_board() {
    let server = server("127.86.0.0", "");
    let (_client, job) = ready_job(&server);
    let board = job.connect_to_board(0, 0, 17893).expect("connection");
    assert_eq!(board.chip(), (0, 0));
    let info = version(7, |d| board.send(d), |t| board.recv(t));
    assert_eq!(info.name, "SC&MP");
    assert!(info.hardware.contains("127.86.0."), "{}", info.hardware);
    // Sending and receiving from two threads at once.
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            for seq in 100..110 {
                board.send(&scp_version(seq)).expect("send");
            }
        });
        let mut replies = 0;
        while replies < 10 {
            match board.recv(Duration::from_secs(5)).expect("recv") {
                Some(_) => replies += 1,
                None => break,
            }
        }
        sender.join().expect("sender");
        assert_eq!(replies, 10);
    });
    job.destroy(None).expect("destroy");
}

#[test]
fn an_unconnected_channel_binds_the_configured_address_and_hears_a_board() {
    let server = server(
        "127.87.0.0",
        "[proxy]\nunconnected_address = \"127.87.9.9\"\n",
    );
    let (_client, job) = ready_job(&server);
    let proxy = job.proxy().expect("proxy");
    let channel = proxy.open_unconnected().expect("unconnected channel");
    assert_eq!(*channel.server_address().ip(), Ipv4Addr::new(127, 87, 9, 9));
    assert_ne!(channel.server_address().port(), 0);
    let info = version(3, |d| channel.send_to(0, 0, 17893, d), |t| channel.recv(t));
    assert!(info.hardware.contains("127.87.0."), "{}", info.hardware);
    job.destroy(None).expect("destroy");
}

#[test]
fn a_chip_outside_the_job_is_refused_and_the_proxy_stays_usable() {
    let server = server("127.88.0.0", "");
    let (_client, job) = ready_job(&server);
    let proxy = job.proxy().expect("proxy");
    match proxy.open(200, 200, 17893) {
        Err(Error::ProxyRefused(message)) => assert!(!message.is_empty()),
        other => panic!("not refused: {other:?}"),
    }
    let board = proxy.open(0, 0, 17893).expect("connection");
    version(1, |d| board.send(d), |t| board.recv(t));
    assert!(proxy.closed().is_none());
    job.destroy(None).expect("destroy");
}

#[test]
fn destroying_the_job_closes_its_connections_with_the_servers_reason() {
    let server = server("127.89.0.0", "");
    let (client, job) = ready_job(&server);
    let board = job.connect_to_board(0, 0, 17893).expect("connection");
    version(1, |d| board.send(d), |t| board.recv(t));
    let id = job.id();
    job.destroy(Some("done")).expect("destroy");
    // Bounded: the close comes from the server's change signal.
    let closed = (0..100).find_map(|_| board.recv(Duration::from_millis(100)).err());
    let closed = closed.expect("the connection closed");
    assert!(
        matches!(
            closed,
            Error::ProxyClosed {
                code: Some(1001),
                ..
            }
        ),
        "{closed:?}"
    );
    assert!(closed.is_final_proxy_close());
    assert!(matches!(
        board.send(&[1, 2, 3]),
        Err(Error::ProxyClosed { .. })
    ));
    // The job has no proxy any more.
    let again = client.job(id).expect("handle");
    assert!(again.proxy().is_err());
}
