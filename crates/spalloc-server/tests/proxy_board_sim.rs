//! Simulated boards answer over real UDP sockets: a server whose machine
//! has `answer_scp = true` replies to SCP sent to its boards' IPs.

use spalloc_server::bmp::scp::packet::{Reply, VersionInfo};
use spalloc_server::board_sim::scamp::{CMD_READ, CMD_VER, CMD_WRITE, MEMORY_BASE, RC_OK};
use spalloc_server::board_sim::SCAMP_PORT;
use spalloc_server::{RunningServer, ServerConfig};
use std::net::UdpSocket;
use std::time::Duration;

fn scp(command: u16, seq: u16, args: [u32; 3], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x87, 0xff, 0x00, 0xff, 0, 0, 0, 0];
    out.extend_from_slice(&command.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    for a in args {
        out.extend_from_slice(&a.to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Sends `request` to `board` until a reply comes (the boards are bound
/// just after the server starts), at most 100 times.
fn call(socket: &UdpSocket, board: &str, request: &[u8]) -> Reply {
    let mut buffer = [0u8; 2048];
    for _ in 0..100 {
        socket
            .send_to(request, (board, SCAMP_PORT))
            .expect("send to the board");
        if let Ok(n) = socket.recv(&mut buffer) {
            let reply = Reply::decode(&buffer[..n]).expect("an SCP reply");
            // A late reply to an earlier resend of another request is skipped.
            if reply.seq.to_le_bytes() == request[12..14] {
                return reply;
            }
        }
    }
    panic!("board {board} never answered");
}

#[test]
fn each_board_of_a_simulated_machine_answers_its_version_and_keeps_its_memory() {
    // Addresses of their own, so that no other test's server answers.
    let config = ServerConfig::from_toml_str(
        r#"
        ip = "127.0.0.1"
        port = 0
        [[machine]]
        name = "answering"
        width = 1
        height = 1
        base_ip = "127.71.0.0"
        answer_scp = true
        "#,
    )
    .expect("valid config");
    let boards: Vec<String> = config.machines[0]
        .machine
        .spinnaker_ips
        .values()
        .cloned()
        .collect();
    assert_eq!(boards.len(), 3);
    let server = RunningServer::start(config).expect("server starts");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    for (i, board) in boards.iter().enumerate() {
        let reply = call(&socket, board, &scp(CMD_VER, i as u16, [0, 0, 0], &[]));
        assert_eq!((reply.rc, reply.seq), (RC_OK, i as u16));
        let info = VersionInfo::decode(&reply.payload).expect("a version");
        assert_eq!(info.name, "SC&MP");
        assert!(info.hardware.contains(board.as_str()), "{}", info.hardware);
        assert!(info.hardware.contains("answering"), "{}", info.hardware);
    }

    let written = call(
        &socket,
        &boards[1],
        &scp(CMD_WRITE, 10, [MEMORY_BASE, 4, 2], &[1, 2, 3, 4]),
    );
    assert_eq!(written.rc, RC_OK);
    let read = call(
        &socket,
        &boards[1],
        &scp(CMD_READ, 11, [MEMORY_BASE, 4, 2], &[]),
    );
    assert_eq!((read.rc, read.payload), (RC_OK, vec![1, 2, 3, 4]));
    // Each board has its own memory.
    let other = call(
        &socket,
        &boards[0],
        &scp(CMD_READ, 12, [MEMORY_BASE, 4, 2], &[]),
    );
    assert_eq!(other.payload, vec![0, 0, 0, 0]);
    server.shutdown();
}

/// Whether `board` has stopped answering: no reply to three requests in a
/// row, tried at most 50 times (a board being unbound may still answer for
/// a moment).
fn stops_answering(socket: &UdpSocket, board: &str) -> bool {
    let mut buffer = [0u8; 2048];
    let mut silent = 0;
    for seq in 0..50u16 {
        socket
            .send_to(
                &scp(CMD_VER, 1000 + seq, [0, 0, 0], &[]),
                (board, SCAMP_PORT),
            )
            .expect("send");
        // Replies to earlier requests are drained first.
        let mut answered = false;
        while socket.recv(&mut buffer).is_ok() {
            answered = true;
        }
        silent = if answered { 0 } else { silent + 1 };
        if silent == 3 {
            return true;
        }
    }
    false
}

fn machines(names_and_ips: &[(&str, &str)]) -> ServerConfig {
    let mut text = String::from("ip = \"127.0.0.1\"\nport = 0\n");
    for (name, ip) in names_and_ips {
        text.push_str(&format!(
            "[[machine]]\nname = \"{name}\"\nwidth = 1\nheight = 1\nbase_ip = \"{ip}\"\nanswer_scp = true\n"
        ));
    }
    ServerConfig::from_toml_str(&text).expect("valid config")
}

#[test]
fn a_reload_rebinds_the_simulated_boards_to_the_new_machines() {
    let first = machines(&[("kept", "127.72.0.0"), ("gone", "127.72.1.0")]);
    let second = machines(&[("kept", "127.72.0.0"), ("new", "127.72.2.0")]);
    let ip_of = |config: &ServerConfig, i: usize| -> String {
        let ips = &config.machines[i].machine.spinnaker_ips;
        ips.values().next().cloned().expect("a board")
    };
    let (kept, gone, new) = (ip_of(&first, 0), ip_of(&first, 1), ip_of(&second, 1));
    let server = RunningServer::start(first).expect("server starts");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    call(&socket, &kept, &scp(CMD_VER, 1, [0, 0, 0], &[]));
    call(&socket, &gone, &scp(CMD_VER, 2, [0, 0, 0], &[]));
    // What is written to a kept board stays through the reload.
    let written = call(
        &socket,
        &kept,
        &scp(CMD_WRITE, 3, [MEMORY_BASE, 4, 2], &[9, 8, 7, 6]),
    );
    assert_eq!(written.rc, RC_OK);

    // The same path as SIGHUP (the reloader), with "gone" replaced by "new".
    server.reload(second).expect("reload");

    let reply = call(&socket, &new, &scp(CMD_VER, 4, [0, 0, 0], &[]));
    let info = VersionInfo::decode(&reply.payload).expect("a version");
    assert!(
        info.hardware.contains(&format!("of new at {new}")),
        "{}",
        info.hardware
    );
    assert!(
        stops_answering(&socket, &gone),
        "the removed board still answers"
    );
    let read = call(&socket, &kept, &scp(CMD_READ, 5, [MEMORY_BASE, 4, 2], &[]));
    assert_eq!(read.payload, vec![9, 8, 7, 6]);
    server.shutdown();
}
