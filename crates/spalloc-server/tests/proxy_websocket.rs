//! The job proxy over real sockets: a websocket client reaches a simulated
//! board of its job through `/spalloc/proxy/{job}` and gets its SCP reply;
//! strangers, unknown jobs and protocol abuse are refused; destroying the
//! job closes the websocket.
//!
//! The job table is the real core's; authentication is the route's
//! `Authorise` hook, here reading the user from a bearer header as the
//! REST API's authentication would hand it over.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Map};
use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use spalloc_server::board_sim;
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::proxy::access::{self, Lookup};
use spalloc_server::proxy::frame::{ClientFrame, ServerFrame};
use spalloc_server::proxy::route::{self, Authorise, Caller, ProxyJobs, ProxyState};
use spalloc_server::proxy::socket::ProxySettings;
use spalloc_server::ServerConfig;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

struct Jobs(Mutex<Controller>);

impl ProxyJobs for Jobs {
    fn lookup(&self, job: u64) -> Lookup {
        match self.0.lock() {
            Ok(c) => access::lookup(&c, job),
            Err(_) => Lookup::Unknown,
        }
    }
}

struct Fixture {
    address: SocketAddr,
    jobs: Arc<Jobs>,
    job: u64,
    _runtime: tokio::runtime::Runtime,
}

/// A 1x1-triad machine whose boards answer on 127.73.`net`.x (one `net`
/// per test, as tests run in parallel), one job of alice's on one board,
/// the proxy route served on a free port.
fn fixture(net: u8) -> Fixture {
    let config = ServerConfig::from_toml_str(&format!(
        "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"127.73.{net}.0\"\nanswer_scp = true\n",
    ))
    .expect("config");
    let mut controller = Controller::new(
        ControllerSettings {
            max_retired_jobs: 10,
            seconds_before_free: 0.0,
        },
        config.machines.iter().map(|m| m.machine.clone()).collect(),
    );
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("alice"));
    let spec = create_job::parse(vec![], kwargs).expect("spec");
    let job = controller.create_job(spec, None, 0.0);
    let jobs = Arc::new(Jobs(Mutex::new(controller)));
    let authorise: Authorise = Arc::new(|parts| {
        Box::pin(async move {
            let user = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            match user {
                Some(user) => Ok(Caller { user, admin: false }),
                None => Err((StatusCode::UNAUTHORIZED, "log in").into_response()),
            }
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let state = ProxyState {
        jobs: Arc::clone(&jobs) as Arc<dyn ProxyJobs>,
        authorise,
        settings: ProxySettings::default(),
    };
    let address = runtime.block_on(async {
        let boards = board_sim::start(&config);
        assert_eq!(boards.addresses().len(), 3, "simulated boards bound");
        std::mem::forget(boards); // they live as long as the runtime
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, route::routes(state)).await;
        });
        address
    });
    Fixture {
        address,
        jobs,
        job,
        _runtime: runtime,
    }
}

fn connect(
    f: &Fixture,
    job: u64,
    user: Option<&str>,
) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let mut request = format!("ws://{}/spalloc/proxy/{job}", f.address)
        .into_client_request()
        .expect("request");
    if let Some(user) = user {
        let value = format!("Bearer {user}").parse().expect("header");
        request.headers_mut().insert("authorization", value);
    }
    let stream = TcpStream::connect(f.address).expect("tcp");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    tungstenite::client(request, stream)
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
        })
}

fn send(ws: &mut WebSocket<TcpStream>, frame: ClientFrame<'_>) {
    ws.send(Message::Binary(frame.encode().into()))
        .expect("send");
}

fn receive(ws: &mut WebSocket<TcpStream>) -> ServerFrame {
    loop {
        match ws.read().expect("read") {
            Message::Binary(b) => return ServerFrame::decode(&b).expect("a server frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The close code the server ends with.
fn close_code(ws: &mut WebSocket<TcpStream>) -> Option<CloseCode> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn scp_version(seq: u16) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0];
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out
}

#[test]
fn the_owner_reads_a_boards_version_through_the_proxy() {
    let f = fixture(1);
    let mut ws = connect(&f, f.job, Some("alice")).expect("upgrade");
    send(
        &mut ws,
        ClientFrame::Open {
            corr: 0,
            x: 0,
            y: 0,
            port: 17893,
        },
    );
    let ServerFrame::Opened { corr: 0, channel } = receive(&mut ws) else {
        panic!("not opened");
    };
    assert_ne!(channel, 0);
    let request = scp_version(77);
    // Sent once: the board is bound before the route serves, and loopback
    // does not lose datagrams (the read timeout bounds the wait).
    send(
        &mut ws,
        ClientFrame::Message {
            channel,
            payload: &request,
        },
    );
    let ServerFrame::Message {
        channel: from,
        payload,
    } = receive(&mut ws)
    else {
        panic!("no datagram");
    };
    assert_eq!(from, channel);
    let reply = Reply::decode(&payload).expect("SCP reply");
    assert_eq!((reply.rc, reply.seq), (0x80, 77));
    let info = VersionInfo::decode(&reply.payload).expect("version");
    assert_eq!(info.name, "SC&MP");
    assert!(info.hardware.contains("127.73.1."), "{}", info.hardware);

    send(&mut ws, ClientFrame::Close { corr: 1, channel });
    assert_eq!(receive(&mut ws), ServerFrame::Closed { corr: 1, channel });
    send(&mut ws, ClientFrame::Close { corr: 2, channel });
    assert_eq!(
        receive(&mut ws),
        ServerFrame::Closed {
            corr: 2,
            channel: 0
        }
    );
}

#[test]
fn an_open_to_a_chip_outside_the_job_is_an_error_reply_and_the_socket_stays_open() {
    let f = fixture(2);
    let mut ws = connect(&f, f.job, Some("alice")).expect("upgrade");
    send(
        &mut ws,
        ClientFrame::Open {
            corr: 4,
            x: 8,
            y: 4,
            port: 17893,
        },
    );
    assert_eq!(
        receive(&mut ws),
        ServerFrame::Error {
            corr: 4,
            message: "unrecognised ethernet chip".into()
        }
    );
    send(&mut ws, ClientFrame::OpenUnconnected { corr: 5 });
    let ServerFrame::OpenedUnconnected {
        corr: 5, ip, port, ..
    } = receive(&mut ws)
    else {
        panic!("not opened");
    };
    assert_eq!(ip, std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(port, 0);
}

#[test]
fn strangers_and_unknown_jobs_are_refused_before_the_upgrade() {
    let f = fixture(3);
    for (job, user, status) in [
        (f.job, Some("bob"), 404),
        (999, Some("alice"), 404),
        (f.job, None, 401),
    ] {
        match connect(&f, job, user) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), status, "{job} {user:?}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("upgraded for {user:?} to job {job}"),
        }
    }
}

#[test]
fn a_frame_that_breaks_the_protocol_closes_only_that_websocket_with_bad_data() {
    let f = fixture(4);
    let mut bad = connect(&f, f.job, Some("alice")).expect("upgrade");
    let mut good = connect(&f, f.job, Some("alice")).expect("upgrade");
    bad.send(Message::Binary(vec![9, 0, 0, 0, 1, 0, 0, 0].into()))
        .expect("send");
    assert_eq!(close_code(&mut bad), Some(CloseCode::Invalid));
    send(&mut good, ClientFrame::OpenUnconnected { corr: 1 });
    assert!(matches!(
        receive(&mut good),
        ServerFrame::OpenedUnconnected { corr: 1, .. }
    ));
}

#[test]
fn destroying_the_job_closes_its_proxies() {
    let f = fixture(5);
    let mut ws = connect(&f, f.job, Some("alice")).expect("upgrade");
    if let Ok(mut c) = f.jobs.0.lock() {
        c.destroy_job(f.job, Some("done".into()), 1.0);
    }
    assert_eq!(close_code(&mut ws), Some(CloseCode::Away));
}

#[test]
fn a_queued_job_is_upgraded_then_closed_as_not_proxyable() {
    let f = fixture(6);
    let queued = match f.jobs.0.lock() {
        Ok(mut c) => {
            let mut kwargs = Map::new();
            kwargs.insert("owner".into(), json!("alice"));
            let spec = create_job::parse(vec![json!(1), json!(1)], kwargs).expect("spec");
            c.create_job(spec, None, 0.0)
        }
        Err(_) => panic!("poisoned"),
    };
    let mut ws = connect(&f, queued, Some("alice")).expect("upgrade");
    assert_eq!(close_code(&mut ws), Some(CloseCode::Error));
}
