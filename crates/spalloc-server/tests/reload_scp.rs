//! Config reload with real (fake) BMPs over SCP: new machines' BMPs are
//! version-checked before anything is applied, and the jobs of a removed
//! machine are powered off through its old BMP workers.

mod common;
mod fake_bmp;

use common::{small_config, start, Client};
use fake_bmp::{FakeBmp, CMD_BMP_POWER};
use serde_json::json;
use spalloc_server::ServerConfig;
use std::time::{Duration, Instant};

const READY: u64 = 3;
const DESTROYED: u64 = 4;

const FAST: &str = "scp_timeout = 0.05\nscp_retries = 1\nversion_check_retries = 1\n\
                    power_on_timeout = 0.2\npower_off_timeout = 0.1\npost_power_on_delay = 0.01\n\
                    retry_delay = 0.05\n";

/// The simulated test machine plus a 1x1-triad SCP machine `real` (if given).
fn config(real: Option<(&FakeBmp, u32)>) -> ServerConfig {
    let mut config = small_config("", "");
    if let Some((bmp, width)) = real {
        let text = format!(
            "[[machine]]\nname = \"real\"\ntags = [\"real\"]\nwidth = {width}\nheight = 1\n\
             base_ip = \"{}\"\nbmp = \"scp\"\nbmp_port = {}\n{FAST}",
            bmp.ip(),
            bmp.port()
        );
        let extra = ServerConfig::from_toml_str(&text).expect("valid config");
        config.machines.extend(extra.machines);
    }
    config
}

fn power_commands(bmp: &FakeBmp) -> Vec<bool> {
    bmp.received()
        .iter()
        .filter(|r| r.cmd == CMD_BMP_POWER)
        .map(|r| r.args[0] == 1)
        .collect()
}

fn wait_power_commands(bmp: &FakeBmp, n: usize) -> Vec<bool> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let commands = power_commands(bmp);
        if commands.len() >= n {
            return commands;
        }
        assert!(
            Instant::now() < deadline,
            "only {commands:?} power commands"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn added_scp_machines_are_checked_and_removed_ones_powered_off() {
    let bmp = FakeBmp::start("127.0.61.0");
    let server = start(config(None));
    let mut client = Client::connect(&server);

    let outcome = server
        .reload(config(Some((&bmp, 1))))
        .expect("reload accepted");
    assert_eq!(outcome.report.added, ["real"]);
    assert!(
        bmp.lines().iter().any(|l| l.starts_with("CMD_VER")),
        "the new BMP was version-checked"
    );
    let job = client.create(json!([1]), json!({"tags": ["real"]}));
    client.wait_state(job, READY);
    assert_eq!(wait_power_commands(&bmp, 1), [true]);

    let outcome = server.reload(config(None)).expect("reload accepted");
    assert_eq!(outcome.report.removed, ["real"]);
    let state = client.state(job);
    assert_eq!(state["state"], json!(DESTROYED));
    assert_eq!(state["reason"], json!("Machine removed."));
    assert_eq!(
        wait_power_commands(&bmp, 2),
        [true, false],
        "powered off through the removed machine's BMP"
    );
}

#[test]
fn a_reshaped_scp_machine_powers_off_the_old_job_before_the_new_one_starts() {
    let bmp = FakeBmp::start("127.0.62.0");
    let server = start(config(Some((&bmp, 1))));
    let mut client = Client::connect(&server);
    let old = client.create(json!([1, 1]), json!({"tags": ["real"]}));
    client.wait_state(old, READY);
    let queued = client.create(json!([1, 1]), json!({"tags": ["real"]}));

    let outcome = server
        .reload(config(Some((&bmp, 2))))
        .expect("reload accepted");
    assert_eq!(outcome.report.changed, ["real"]);
    assert_eq!(outcome.report.destroyed_jobs, [old]);
    assert_eq!(client.state(old)["reason"], json!("Machine removed."));
    client.wait_state(queued, READY);
    // The old worker's power-off went out before the new worker's power-on.
    assert_eq!(wait_power_commands(&bmp, 3), [true, false, true]);
}

#[test]
fn an_unusable_new_bmp_refuses_the_whole_reload() {
    let bmp = FakeBmp::start("127.0.63.0");
    bmp.always(fake_bmp::CMD_VER, fake_bmp::Action::Silent);
    let server = start(config(None));
    let mut client = Client::connect(&server);
    let before = client.ok("list_machines", json!([]), json!({}));
    let mut bad = config(Some((&bmp, 1)));
    // A change that would otherwise apply, to show nothing does.
    bad.machines[0].machine.tags.insert("other".into());
    let error = server.reload(bad).expect_err("reload refused");
    assert!(error.to_string().contains("127.0.63.0"), "{error}");
    assert_eq!(client.ok("list_machines", json!([]), json!({})), before);
}
