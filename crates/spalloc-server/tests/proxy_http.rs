//! The job proxy on the real server's HTTP listener: a job created through
//! the v2 REST API shows a `proxy-ref` once it has boards; its owner opens
//! that websocket with the REST API's credentials and reads a simulated
//! board's version through it; another user is refused; deleting the job
//! closes the websocket.

mod http_support;

use http_support::Api;
use serde_json::json;
use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use spalloc_server::proxy::frame::{ClientFrame, ServerFrame};
use spalloc_server::{RunningServer, ServerConfig};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

fn server() -> RunningServer {
    let config = ServerConfig::from_toml_str(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [http]
        port = 0

        [[machine]]
        name = "answering"
        width = 1
        height = 1
        base_ip = "127.76.0.0"
        power_delay = 0.02
        answer_scp = true
        "#,
    )
    .expect("config");
    http_support::start(config)
}

fn token(server: &RunningServer, user: &str) -> String {
    let now = spalloc_server::clock::now() as i64;
    server
        .accounts()
        .create_token(user, "proxy test", None, now)
        .expect("token")
        .secret
}

fn connect(url: &str, token: &str) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let mut request = url.into_client_request().expect("request");
    let value = format!("Bearer {token}").parse().expect("header");
    request.headers_mut().insert("authorization", value);
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host")
        .to_owned();
    let stream = TcpStream::connect(host).expect("tcp");
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

fn receive(ws: &mut WebSocket<TcpStream>) -> ServerFrame {
    loop {
        match ws.read().expect("read") {
            Message::Binary(b) => return ServerFrame::decode(&b).expect("a server frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn the_owner_reaches_the_jobs_board_through_its_proxy_ref_and_loses_it_with_the_job() {
    let server = server();
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "answering", "keepalive-interval": "PT60S"}),
    );
    let state = alice.wait_for(&job, "READY");
    let proxy_ref = state["proxy-ref"].as_str().expect("proxy-ref").to_owned();
    assert!(proxy_ref.starts_with("ws://"), "{proxy_ref}");

    match connect(&proxy_ref, &token(&server, "bob")) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 404),
        other => panic!("bob was not refused: {:?}", other.map(|_| ())),
    }

    let mut ws = connect(&proxy_ref, &token(&server, "alice")).expect("upgrade");
    let open = ClientFrame::Open {
        corr: 0,
        x: 0,
        y: 0,
        port: 17893,
    };
    ws.send(Message::Binary(open.encode().into()))
        .expect("send");
    let ServerFrame::Opened { corr: 0, channel } = receive(&mut ws) else {
        panic!("not opened");
    };
    let mut scp = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 5, 0];
    scp.extend_from_slice(&[0; 12]);
    let message = ClientFrame::Message {
        channel,
        payload: &scp,
    };
    ws.send(Message::Binary(message.encode().into()))
        .expect("send");
    let ServerFrame::Message { payload, .. } = receive(&mut ws) else {
        panic!("no reply");
    };
    let reply = Reply::decode(&payload).expect("SCP reply");
    assert_eq!(reply.seq, 5);
    let info = VersionInfo::decode(&reply.payload).expect("version");
    assert_eq!(info.name, "SC&MP");
    assert!(info.hardware.contains("127.76.0."), "{}", info.hardware);

    assert_eq!(alice.delete(&format!("{job}?reason=done")).status, 204);
    let code = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| f.code),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
}
