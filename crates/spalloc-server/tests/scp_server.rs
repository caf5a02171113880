//! A whole server driving a fake BMP over SCP/UDP (`bmp = "scp"`), with
//! tiny timings: what is sent for each allocation and power change, and
//! what becomes of the job on every failure path.

mod common;
mod fake_bmp;

use common::Client;
use fake_bmp::{Action, FakeBmp, CMD_BMP_POWER, CMD_LINK_READ, CMD_LINK_WRITE, CMD_VER};
use serde_json::json;
use spalloc_server::{RunningServer, ServerConfig};
use std::time::{Duration, Instant};

const QUEUED: u64 = 1;
const READY: u64 = 3;
const DESTROYED: u64 = 4;

/// Reference-shaped timings, a hundred times shorter.
const FAST: &str = "scp_timeout = 0.05\nscp_retries = 1\nversion_check_retries = 1\n\
                    power_on_timeout = 0.2\npower_off_timeout = 0.1\npost_power_on_delay = 0.01\n\
                    retry_delay = 0.05\n";

/// The kit's `small.cfg` machine (2x1 triads, 6 boards in one frame) with
/// its BMP at the fake's address and port.
fn config(bmp: &FakeBmp, timings: &str) -> ServerConfig {
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [[machine]]
        name = "test-machine"
        width = 2
        height = 1
        base_ip = "{ip}"
        bmp = "scp"
        bmp_port = {port}
        {timings}
        "#,
        ip = bmp.ip(),
        port = bmp.port(),
    );
    ServerConfig::from_toml_str(&text).expect("valid config")
}

fn start(bmp: &FakeBmp) -> (RunningServer, Client) {
    let server = RunningServer::start(config(bmp, FAST)).expect("server starts");
    let client = Client::connect(&server);
    (server, client)
}

const VER0: &str = "CMD_VER board=0 args=[0x0, 0x0, 0x0] data=";

fn power(on: bool, mask: u32) -> String {
    format!(
        "CMD_BMP_POWER board=0 args=[{:#x}, {mask:#x}, 0x0] data=",
        u32::from(on)
    )
}

fn version(board: u32) -> String {
    format!("CMD_VER board={board} args=[0x0, 0x0, 0x0] data=")
}

fn fpga_reads(board: u32) -> Vec<String> {
    (0..3)
        .map(|f| format!("CMD_LINK_READ board={board} args=[0x40004, 0x4, {f:#x}] data="))
        .collect()
}

fn link_off(board: u32, fpga: u32, register: u32) -> String {
    format!("CMD_LINK_WRITE board={board} args=[{register:#x}, 0x4, {fpga:#x}] data=01000000")
}

/// Power on, CMD_VER and three FPGA reads per board.
fn power_on_checked(boards: &[u32]) -> Vec<String> {
    let mask = boards.iter().fold(0, |m, b| m | (1 << b));
    let mut out = vec![power(true, mask)];
    for b in boards {
        out.push(version(*b));
        out.extend(fpga_reads(*b));
    }
    out
}

#[test]
fn one_board_power_on_fpga_check_and_link_isolation_then_ready() {
    let bmp = FakeBmp::start("127.0.21.0");
    let (_server, mut c) = start(&bmp);
    assert_eq!(bmp.lines(), [VER0], "the start-up version check");
    bmp.clear();
    let id = c.create(json!([1]), json!({}));
    c.wait_state(id, READY);
    let mut expected = power_on_checked(&[0]);
    // Every link of board (0,0,0) leaves the job: its STOP register is set,
    // in the reference's order (north-east, south-west, west, east, north,
    // south: Python's set order of the (x, y, z, link) tuples).
    for (fpga, register) in [
        (2, 0x1005c),
        (1, 0x5c),
        (1, 0x1005c),
        (0, 0x5c),
        (2, 0x5c),
        (0, 0x1005c),
    ] {
        expected.push(version(0));
        expected.push(link_off(0, fpga, register));
    }
    assert_eq!(bmp.lines(), expected);
    // The exact bytes of the power-on (sequence numbers aside).
    let on = &bmp.received()[0];
    let mut bytes = on.bytes.clone();
    bytes[12..14].copy_from_slice(&[0, 0]);
    assert_eq!(
        bytes,
        [0, 0, 0x87, 0xff, 0, 0xff, 0, 0, 0, 0, 57, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    // Every packet of the server has its own sequence number.
    let mut seqs: Vec<u16> = bmp.received().iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), expected.len());

    bmp.clear();
    c.ok("destroy_job", json!([id, "done"]), json!({}));
    bmp.wait_for_packets(1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(bmp.lines(), [power(false, 0x1)]);
}

/// The order the reference visits the six boards of a 2x1-triad machine in
/// (Python's set order of their (x, y, z) tuples; slots are x * 3 + z).
const REFERENCE_BOARD_ORDER: [u32; 6] = [4, 0, 3, 2, 5, 1];

#[test]
fn whole_machine_checks_six_boards_and_writes_no_links() {
    let bmp = FakeBmp::start("127.0.22.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    let id = c.create(json!([2, 1]), json!({}));
    c.wait_state(id, READY);
    assert_eq!(bmp.lines(), power_on_checked(&REFERENCE_BOARD_ORDER));

    bmp.clear();
    c.ok("power_off_job_boards", json!([id]), json!({}));
    c.wait_state(id, READY);
    assert_eq!(bmp.lines(), [power(false, 0x3f)]);
    assert_eq!(c.state(id)["power"], json!(false));

    bmp.clear();
    c.ok("power_on_job_boards", json!([id]), json!({}));
    c.wait_state(id, READY);
    assert_eq!(bmp.lines(), power_on_checked(&REFERENCE_BOARD_ORDER));
}

#[test]
fn a_wrong_fpga_id_re_powers_only_that_board() {
    let bmp = FakeBmp::start("127.0.23.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.wrong_fpga_id(4, 1, 1);
    let id = c.create(json!([2, 1]), json!({}));
    c.wait_state(id, READY);
    // Board 4 comes first: FPGA 0 fine, FPGA 1 wrong, so FPGA 2 is not read.
    let mut expected = vec![power(true, 0x3f), version(4)];
    expected.extend(fpga_reads(4).into_iter().take(2));
    expected.extend(power_on_checked(&[0, 3, 2, 5, 1]).into_iter().skip(1));
    expected.extend(power_on_checked(&[4]));
    assert_eq!(bmp.lines(), expected);
}

#[test]
fn fpgas_wrong_after_every_round_take_the_board_out_of_service_and_the_job_runs_on_another() {
    let bmp = FakeBmp::start("127.0.24.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.wrong_fpga_id(0, 0, usize::MAX);
    let id = c.create(json!([1]), json!({}));
    // Not destroyed (the reference would): its board failed its checks, so
    // it went out of service and the job got another one.
    c.wait_state(id, READY);
    let slot0 = c.ok(
        "get_board_at_position",
        json!([]),
        json!({"machine_name": "test-machine", "x": 0, "y": 0, "z": 0}),
    );
    let info = c.ok("get_job_machine_info", json!([id]), json!({}));
    assert_eq!(info["boards"].as_array().map(Vec::len), Some(1), "{info}");
    assert_ne!(info["boards"][0], slot0);
    let slot0_power_ons = bmp
        .received()
        .iter()
        .filter(|r| r.cmd == CMD_BMP_POWER && r.args[0] == 1 && r.args[1] == 1)
        .count();
    assert_eq!(slot0_power_ons, 2 * 3, "3 rounds in each of 2 tries");
    // A job asking for that board now waits.
    let waiting = c.create(slot0, json!({}));
    assert_eq!(c.state(waiting)["state"], json!(QUEUED));
}

#[test]
fn a_bmp_rejecting_power_destroys_the_job_after_one_retry() {
    let bmp = FakeBmp::start("127.0.25.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.always(CMD_BMP_POWER, Action::Error(0x81));
    let started = Instant::now();
    let id = c.create(json!([1]), json!({}));
    let s = c.wait_state(id, DESTROYED);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "retry_delay"
    );
    assert_eq!(
        s["reason"],
        json!(format!(
            "Machine configuration failed. Error: Requests failed on BMP {}",
            bmp.ip()
        ))
    );
    // Power commands are never resent, even after a "retry" code: one per try.
    std::thread::sleep(Duration::from_millis(20));
    let lines = bmp.lines();
    assert_eq!(lines[..2], [power(true, 1), power(true, 1)]);
    // The destroy queues a power-off, which fails too and is ignored.
    let offs = lines.iter().filter(|l| **l == power(false, 1)).count();
    assert!(offs <= 2, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("CMD_BMP_POWER")));
}

#[test]
fn a_failed_batch_is_retried_once_and_can_succeed() {
    let bmp = FakeBmp::start("127.0.26.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.next(CMD_LINK_WRITE, 1, Action::Error(0x83));
    let id = c.create(json!([1]), json!({}));
    c.wait_state(id, READY);
    let lines = bmp.lines();
    // First try: power on, checks, one version + failed write; then all again.
    assert_eq!(lines[..5], power_on_checked(&[0])[..]);
    assert!(lines[6].starts_with("CMD_LINK_WRITE"));
    assert_eq!(lines[7..12], power_on_checked(&[0])[..]);
    assert_eq!(lines.len(), 7 + 5 + 12);
}

#[test]
fn a_silent_bmp_times_out_and_the_job_is_destroyed() {
    let bmp = FakeBmp::start("127.0.27.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.always(CMD_BMP_POWER, Action::Silent);
    let started = Instant::now();
    let id = c.create(json!([1]), json!({}));
    // The server still answers while its BMP is silent.
    let before = Instant::now();
    c.ok("list_jobs", json!([]), json!({}));
    assert!(before.elapsed() < Duration::from_millis(100));
    let s = c.wait_state(id, DESTROYED);
    // power-on timeout, retry delay, power-on timeout.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert!(s["reason"]
        .as_str()
        .unwrap()
        .ends_with(&format!("Requests failed on BMP {}", bmp.ip())));
    let received = bmp.received();
    let ons: Vec<_> = received
        .iter()
        .filter(|r| r.cmd == CMD_BMP_POWER && r.args[0] == 1)
        .collect();
    assert_eq!(ons.len(), 2, "no resends of a power-on");
    let gap = ons[1].at - ons[0].at;
    assert!(gap >= Duration::from_millis(250), "{gap:?}");
}

#[test]
fn a_late_reply_within_the_retries_is_accepted() {
    let bmp = FakeBmp::start("127.0.28.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    // Later than scp_timeout: the read is resent (same sequence number) and
    // the late reply to the first send completes it.
    bmp.next(CMD_LINK_READ, 1, Action::Late(Duration::from_millis(70)));
    let id = c.create(json!([2, 1]), json!({}));
    c.wait_state(id, READY);
    let received = bmp.received();
    let reads: Vec<_> = received.iter().filter(|r| r.cmd == CMD_LINK_READ).collect();
    assert_eq!(reads.len(), 6 * 3 + 1);
    assert_eq!(
        reads[0].bytes, reads[1].bytes,
        "a resend is the same datagram"
    );
}

#[test]
fn a_busy_code_is_resent_but_other_error_codes_are_not() {
    let bmp = FakeBmp::start("127.0.29.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    bmp.next(CMD_VER, 1, Action::Error(0x86)); // RC_TIMEOUT: resent
    let id = c.create(json!([1]), json!({}));
    c.wait_state(id, READY);
    let lines = bmp.lines();
    assert_eq!(lines[1..3], [version(0), version(0)]);
    assert_eq!(lines.len(), 5 + 1 + 12);
}

#[test]
fn bmp_software_1_x_gets_no_fpga_checks_and_no_link_writes() {
    let bmp = FakeBmp::start("127.0.30.0");
    bmp.set_version("1.3.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    let id = c.create(json!([1]), json!({}));
    c.wait_state(id, READY);
    let mut expected = vec![power(true, 1), version(0)];
    expected.extend(std::iter::repeat(version(0)).take(6));
    assert_eq!(bmp.lines(), expected);
}

#[test]
fn requests_for_different_bmps_run_concurrently() {
    let slow = FakeBmp::start("127.0.31.1");
    let fast = FakeBmp::start("127.0.31.2");
    // One machine per BMP, as every BMP of a machine shares one port and
    // each fake has its own.
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05
        [[machine]]
        name = "slow"
        single_board = true
        bmp_ip = "{}"
        spinnaker_ip = "127.0.31.9"
        bmp = "scp"
        bmp_port = {}
        {FAST}
        [[machine]]
        name = "fast"
        tags = ["fast"]
        single_board = true
        bmp_ip = "{}"
        spinnaker_ip = "127.0.31.10"
        bmp = "scp"
        bmp_port = {}
        {FAST}
        "#,
        slow.ip(),
        slow.port(),
        fast.ip(),
        fast.port()
    );
    let config = ServerConfig::from_toml_str(&text).unwrap();
    let server = RunningServer::start(config).unwrap();
    let mut c = Client::connect(&server);
    slow.always(CMD_BMP_POWER, Action::Late(Duration::from_millis(150)));
    let a = c.create(json!([]), json!({"machine": "slow"}));
    slow.wait_for_packets(2);
    let b = c.create(json!([]), json!({"machine": "fast"}));
    c.wait_state(b, READY);
    assert_ne!(
        c.state(a)["state"],
        json!(READY),
        "the fast BMP did not wait"
    );
    c.wait_state(a, READY);
}

#[test]
fn jobs_on_one_bmp_are_carried_out_in_order() {
    let bmp = FakeBmp::start("127.0.32.0");
    let (_server, mut c) = start(&bmp);
    bmp.clear();
    let a = c.create(json!([0, 0, 0]), json!({}));
    let b = c.create(json!([0, 0, 1]), json!({}));
    c.wait_state(a, READY);
    c.wait_state(b, READY);
    let lines = bmp.lines();
    let second = lines
        .iter()
        .position(|l| *l == power(true, 1 << 1))
        .unwrap();
    assert_eq!(lines.iter().position(|l| *l == power(true, 1)), Some(0));
    assert_eq!(second, 1 + 4 + 12, "b starts after all of a: {lines:#?}");
    assert_ne!(c.state(a)["state"], json!(QUEUED));
}

#[test]
fn an_unreachable_bmp_at_start_is_an_error_naming_it() {
    // Nothing listens on this address and port: ICMP refusal, at once.
    let bmp = FakeBmp::start("127.0.33.0");
    let mut config = config(&bmp, FAST);
    drop(bmp);
    if let spalloc_server::config::BmpBackend::Scp(s) = &mut config.machines[0].bmp {
        s.version_check_retries = 10;
        s.timeout = Duration::from_secs(1);
    }
    let started = Instant::now();
    let e = RunningServer::start(config)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no 10 s of retries"
    );
    assert!(
        e.contains("BMP 127.0.33.0 of machine 'test-machine' (cabinet 0, frame 0)"),
        "{e}"
    );
}

#[test]
fn a_silent_bmp_at_start_fails_after_the_retries() {
    let bmp = FakeBmp::start("127.0.34.0");
    bmp.always(CMD_VER, Action::Silent);
    let started = Instant::now();
    let e = RunningServer::start(config(&bmp, FAST))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "2 tries of 50 ms"
    );
    assert_eq!(bmp.received().len(), 2);
    assert!(e.contains("127.0.34.0") && e.contains("no reply"), "{e}");
}

#[test]
fn a_bmp_with_other_software_is_refused_at_start() {
    let bmp = FakeBmp::start("127.0.35.0");
    bmp.set_version("3.0.0");
    let e = RunningServer::start(config(&bmp, FAST))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("incompatible") && e.contains("3.0.0"), "{e}");
}

#[test]
fn every_bmp_is_checked_at_start_concurrently() {
    let a = FakeBmp::start("127.0.36.1");
    let b = FakeBmp::start("127.0.36.2");
    a.always(CMD_VER, Action::Late(Duration::from_millis(300)));
    b.always(CMD_VER, Action::Late(Duration::from_millis(300)));
    let text = |m: &str, bmp: &FakeBmp, sp: &str| {
        format!(
            "[[machine]]\nname = \"{m}\"\ntags = [\"{m}\"]\nsingle_board = true\nbmp_ip = \"{}\"\n\
             spinnaker_ip = \"{sp}\"\nbmp = \"scp\"\nbmp_port = {}\nscp_timeout = 1.0\n",
            bmp.ip(),
            bmp.port()
        )
    };
    let config = ServerConfig::from_toml_str(&format!(
        "ip = \"127.0.0.1\"\nport = 0\n{}{}",
        text("a", &a, "127.0.36.9"),
        text("b", &b, "127.0.36.10")
    ))
    .unwrap();
    let started = Instant::now();
    let server = RunningServer::start(config).expect("both answer");
    assert!(
        started.elapsed() < Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    server.shutdown();
}
