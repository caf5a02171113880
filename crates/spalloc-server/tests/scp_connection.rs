//! One SCP exchange at a time against the fake BMP: sequence numbers,
//! resends, stale and malformed replies, errors.

mod fake_bmp;

use fake_bmp::{Action, FakeBmp, CMD_BMP_POWER, CMD_VER};
use spalloc_server::bmp::scp::connection::{Attempts, ScpConnection, ScpError};
use spalloc_server::bmp::scp::packet::Request;
use spalloc_server::bmp::scp::{check_bmp, packet::VersionInfo};
use spalloc_server::config::ScpSettings;
use std::time::Duration;

fn quick(retries: u32) -> Attempts {
    Attempts {
        timeout: Duration::from_millis(50),
        retries,
    }
}

#[tokio::test]
async fn sequence_numbers_count_up_and_replies_are_matched() {
    let bmp = FakeBmp::start("127.0.41.0");
    let mut c = ScpConnection::connect(&bmp.ip(), bmp.port()).await.unwrap();
    for board in 0..3 {
        let reply = c.call(&Request::Version { board }, quick(0)).await.unwrap();
        let info = VersionInfo::decode(&reply.payload).unwrap();
        assert_eq!((info.name.as_str(), info.version), ("BC&MP", (2, 0, 0)));
    }
    let seqs: Vec<u16> = bmp.received().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(
        bmp.received()[2].bytes,
        Request::Version { board: 2 }.encode(2)
    );
}

#[tokio::test]
async fn a_late_reply_to_an_abandoned_request_is_not_taken_for_the_next() {
    let bmp = FakeBmp::start("127.0.42.0");
    bmp.next(CMD_BMP_POWER, 1, Action::Late(Duration::from_millis(80)));
    let mut c = ScpConnection::connect(&bmp.ip(), bmp.port()).await.unwrap();
    let on = Request::Power {
        on: true,
        boards: vec![0],
    };
    let e = c.call(&on, quick(0)).await.unwrap_err();
    assert!(matches!(e, ScpError::Timeout { attempts: 1, .. }), "{e}");
    // The fake answers the first request (seq 0) before this one (seq 1).
    bmp.next(CMD_VER, 1, Action::Error(0x84));
    let e = c
        .call(&Request::Version { board: 0 }, quick(0))
        .await
        .unwrap_err();
    assert!(matches!(e, ScpError::ResultCode { rc: 0x84, .. }), "{e}");
}

#[tokio::test]
async fn retries_resend_the_same_datagram_then_give_up() {
    let bmp = FakeBmp::start("127.0.43.0");
    bmp.always(CMD_VER, Action::Silent);
    let mut c = ScpConnection::connect(&bmp.ip(), bmp.port()).await.unwrap();
    let e = c
        .call(&Request::Version { board: 1 }, quick(2))
        .await
        .unwrap_err();
    assert!(matches!(e, ScpError::Timeout { attempts: 3, .. }), "{e}");
    let received = bmp.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.bytes == received[0].bytes));
}

#[tokio::test]
async fn busy_codes_use_up_retries_too() {
    let bmp = FakeBmp::start("127.0.44.0");
    bmp.always(CMD_VER, Action::Error(0x8e));
    let mut c = ScpConnection::connect(&bmp.ip(), bmp.port()).await.unwrap();
    let e = c
        .call(&Request::Version { board: 0 }, quick(1))
        .await
        .unwrap_err();
    assert!(matches!(e, ScpError::ResultCode { rc: 0x8e, .. }), "{e}");
    assert_eq!(bmp.received().len(), 2);
}

#[tokio::test]
async fn malformed_datagrams_are_dropped_not_fatal() {
    // A hand-made responder: garbage, a short datagram, then the reply.
    let socket = std::net::UdpSocket::bind("127.0.45.0:0").unwrap();
    let address = socket.local_addr().unwrap();
    let responder = std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        let (n, peer) = socket.recv_from(&mut buffer).unwrap();
        assert_eq!(n, 26);
        socket.send_to(&[0xff; 5], peer).unwrap();
        socket.send_to(&[], peer).unwrap();
        let mut reply = vec![0u8; 10];
        reply.extend_from_slice(&0x80u16.to_le_bytes());
        reply.extend_from_slice(&buffer[12..14]);
        reply.extend_from_slice(&7u32.to_le_bytes());
        socket.send_to(&reply, peer).unwrap();
    });
    let mut c = ScpConnection::connect("127.0.45.0", address.port())
        .await
        .unwrap();
    let read = Request::ReadFpga {
        board: 0,
        fpga: 1,
        register: 0x40004,
    };
    let reply = c.call(&read, quick(0)).await.unwrap();
    assert_eq!(reply.register_value(), Ok(7));
    responder.join().unwrap();
}

#[tokio::test]
async fn nothing_listening_is_an_io_error_at_once() {
    let bmp = FakeBmp::start("127.0.46.0");
    let port = bmp.port();
    drop(bmp);
    let settings = ScpSettings {
        port,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let e = check_bmp("127.0.46.0", &settings).await.unwrap_err();
    assert!(matches!(e, ScpError::Io { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(e.to_string().contains("127.0.46.0"), "{e}");
}

#[tokio::test]
async fn the_version_check_accepts_1_x_and_2_x_only() {
    let bmp = FakeBmp::start("127.0.47.0");
    let settings = ScpSettings {
        port: bmp.port(),
        timeout: Duration::from_millis(50),
        ..Default::default()
    };
    for (version, ok) in [
        ("1.0.0", true),
        ("2.5.1", true),
        ("0.9.0", false),
        ("3.0.0", false),
    ] {
        bmp.set_version(version);
        assert_eq!(
            check_bmp(&bmp.ip(), &settings).await.is_ok(),
            ok,
            "{version}"
        );
    }
}
