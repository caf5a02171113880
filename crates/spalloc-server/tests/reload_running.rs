//! Config reload of a running server through `RunningServer::reload`, seen
//! by a TCP client: the same path SIGHUP takes, minus the file.

mod common;

use common::{small_config, start, Client};
use serde_json::json;
use spalloc_server::server::reload::ReloadError;
use spalloc_server::ServerConfig;
use std::time::{Duration, Instant};

const READY: u64 = 3;

fn machines(client: &mut Client) -> serde_json::Value {
    client.ok("list_machines", json!([]), json!({}))
}

/// Waits for a `machines_changed` notification naming `name`.
fn wait_machine_notification(client: &mut Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = client.notifications.iter().any(|n| {
            n.get("machines_changed")
                .and_then(|m| m.as_array())
                .is_some_and(|m| m.contains(&json!(name)))
        });
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "no machines_changed for {name}");
        // Any request lets queued notifications arrive.
        client.ok("version", json!([]), json!({}));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_reshaped_machine_destroys_its_jobs_and_requeues_the_rest() {
    let server = start(small_config("", ""));
    let mut watcher = Client::connect(&server);
    watcher.ok("notify_machine", json!([]), json!({}));
    let mut client = Client::connect(&server);
    let whole = client.create(json!([2, 1]), json!({}));
    client.wait_state(whole, READY);
    let queued = client.create(json!([1, 1]), json!({}));
    assert_eq!(client.state(queued)["state"], json!(1));

    let mut reshaped = small_config("", "");
    let text = "[[machine]]\nname = \"test-machine\"\nwidth = 3\nheight = 1\n\
                base_ip = \"127.0.1.0\"\npower_delay = 0.02\n";
    reshaped.machines = ServerConfig::from_toml_str(text)
        .expect("valid config")
        .machines;
    let outcome = server.reload(reshaped).expect("reload accepted");
    assert_eq!(outcome.report.changed, ["test-machine"]);
    assert_eq!(outcome.report.destroyed_jobs, [whole]);
    assert!(!outcome.restart_needed);

    let gone = client.state(whole);
    assert_eq!(gone["state"], json!(4));
    assert_eq!(gone["reason"], json!("Machine removed."));
    client.wait_state(queued, READY);
    assert_eq!(machines(&mut client)[0]["width"], json!(3));
    wait_machine_notification(&mut watcher, "test-machine");
}

#[test]
fn changed_tags_keep_allocated_jobs_and_added_machines_serve_the_queue() {
    let server = start(small_config("", ""));
    let mut client = Client::connect(&server);
    let held = client.create(json!([2, 1]), json!({}));
    client.wait_state(held, READY);
    let waiting = client.create(json!([1, 1]), json!({}));

    let mut config = small_config(r#"tags = ["default", "extra"]"#, "");
    let mut added = small_config("", "").machines.remove(0);
    added.machine.name = "second".into();
    config.machines.push(added);
    let outcome = server.reload(config).expect("reload accepted");
    assert_eq!(outcome.report.modified, ["test-machine"]);
    assert_eq!(outcome.report.added, ["second"]);

    assert_eq!(client.state(held)["state"], json!(READY), "job continues");
    client.wait_state(waiting, READY);
    let info = client.ok("get_job_machine_info", json!([waiting]), json!({}));
    assert_eq!(info["machine_name"], json!("second"));
    let listed = machines(&mut client);
    assert_eq!(listed[0]["tags"], json!(["default", "extra"]));
    assert_eq!(listed[1]["name"], json!("second"));

    // Removing the second machine destroys the job on it.
    let outcome = server
        .reload(small_config("", ""))
        .expect("reload accepted");
    assert_eq!(outcome.report.removed, ["second"]);
    assert_eq!(client.state(waiting)["reason"], json!("Machine removed."));
    assert_eq!(client.state(held)["state"], json!(READY));
}

#[test]
fn a_config_whose_bmp_does_not_answer_changes_nothing() {
    let server = start(small_config("", ""));
    let mut client = Client::connect(&server);
    let held = client.create(json!([1]), json!({}));
    client.wait_state(held, READY);
    let before = machines(&mut client);

    // Nothing answers on this UDP port.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = socket.local_addr().expect("addr").port();
    drop(socket);
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        allow_removing_every_machine = true
        [[machine]]
        name = "real"
        width = 1
        height = 1
        base_ip = "127.0.0.0"
        bmp = "scp"
        bmp_port = {port}
        scp_timeout = 0.05
        version_check_retries = 0
        "#
    );
    let config = ServerConfig::from_toml_str(&text).expect("valid config");
    match server.reload(config) {
        Err(ReloadError::Bmp(e)) => assert!(e.to_string().contains("real"), "{e}"),
        other => panic!("expected a BMP check failure, got {other:?}"),
    }
    assert_eq!(machines(&mut client), before);
    assert_eq!(client.state(held)["state"], json!(READY));
}

#[test]
fn a_changed_port_is_reported_but_not_rebound() {
    let server = start(small_config("", ""));
    let mut config = small_config("", "");
    config.port = 1;
    let outcome = server.reload(config).expect("reload accepted");
    assert!(outcome.restart_needed);
    assert!(outcome.report.is_unchanged());
    let mut client = Client::connect(&server);
    client.ok("version", json!([]), json!({}));
}
