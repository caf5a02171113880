//! Every command over real TCP against a server on port 0.

mod common;

use common::{small_config, start, Client};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[test]
fn version_is_a_dotted_integer_the_reference_clients_accept() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let v = c.ok("version", json!([]), json!({}));
    let parts: Vec<u32> = v
        .as_str()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(parts >= vec![0, 1, 0] && parts < vec![7, 0, 0], "{v}");
    assert_eq!(
        c.call("version", json!([1]), json!({})).unwrap_err(),
        "SpallocServer.version() takes 2 positional arguments but 3 were given"
    );
}

#[test]
fn one_board_job_goes_queued_power_ready_with_reference_geometry() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let id = c.create(json!([]), json!({"keepalive": 60.0}));
    assert_eq!(id, 1);
    let s = c.state(id);
    assert_eq!(s["state"], json!(2), "allocated at once, powering on: {s}");
    assert_eq!(s["power"], json!(true));
    assert_eq!(s["keepalive"], json!(60.0));
    assert_eq!(s["reason"], Value::Null);
    assert_eq!(s["keepalivehost"], json!("127.0.0.1"));
    c.wait_state(id, 3);
    let info = c.ok("get_job_machine_info", json!([id]), json!({}));
    assert_eq!(
        info,
        json!({"width": 8, "height": 8, "connections": [[[0, 0], "127.0.1.1"]],
               "machine_name": "test-machine", "boards": [[0, 0, 0]]})
    );
}

#[test]
fn whole_machine_has_the_reference_connections() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let id = c.create(json!([2, 1]), json!({}));
    c.wait_state(id, 3);
    let info = c.ok("get_job_machine_info", json!([id]), json!({}));
    assert_eq!(
        (info["width"].clone(), info["height"].clone()),
        (json!(24), json!(12))
    );
    let chips: BTreeSet<(u64, u64)> = info["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0][0].as_u64().unwrap(), c[0][1].as_u64().unwrap()))
        .collect();
    let expected: BTreeSet<(u64, u64)> = [(0, 0), (8, 4), (4, 8), (12, 0), (20, 4), (16, 8)].into();
    assert_eq!(chips, expected);
    // Four boards rounds up to two triads (min_ratio as the client sends it).
    let mut c2 = Client::connect(&server);
    let id2 = c2.create(json!([4]), json!({"min_ratio": 0.333}));
    assert_eq!(
        c2.state(id2)["state"],
        json!(1),
        "queued behind the whole machine"
    );
}

#[test]
fn queued_job_runs_after_destroy_and_reasons_follow_the_reference() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let big = c.create(json!([2, 1]), json!({}));
    let small = c.create(json!([1]), json!({}));
    assert_eq!(c.state(small)["state"], json!(1));
    c.ok(
        "destroy_job",
        json!([big]),
        json!({"reason": "done with it"}),
    );
    let s = c.state(big);
    assert_eq!(s["state"], json!(4));
    assert_eq!(s["reason"], json!("done with it"));
    assert_eq!(s["power"], Value::Null);
    c.wait_state(small, 3);
    // Cancelling a queued job prefixes its reason.
    let queued = c.create(json!([2, 1]), json!({}));
    c.ok("destroy_job", json!([queued]), json!({}));
    assert_eq!(c.state(queued)["reason"], json!("Cancelled: "));
    let queued = c.create(json!([2, 1]), json!({}));
    c.ok("destroy_job", json!([queued, "bye"]), json!({}));
    assert_eq!(c.state(queued)["reason"], json!("Cancelled: bye"));
}

#[test]
fn impossible_requests_are_cancelled_at_once() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    for (args, kwargs) in [
        (json!([1, 1]), json!({"require_torus": true})),
        (json!([3, 3]), json!({})),
        (json!([]), json!({"machine": "nope"})),
        (json!([]), json!({"tags": ["nope"]})),
        (json!([0]), json!({})),
        (json!([1, 2, 3, 4]), json!({})),
        (json!([]), json!({"tags": "default"})),
    ] {
        let id = c.create(args.clone(), kwargs.clone());
        let s = c.state(id);
        assert_eq!(s["state"], json!(4), "{args} {kwargs}");
        assert_eq!(
            s["reason"],
            json!("Cancelled: No suitable machines available."),
            "{args} {kwargs}"
        );
    }
}

#[test]
fn invalid_requests_raise_without_creating_ghost_jobs() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    for (kwargs, message) in [
        (json!({}), "owner must be specified for all jobs"),
        (
            json!({"owner": "x", "machine": "test-machine", "tags": ["default"], "keepalive": 2}),
            "Only one of machine and tags may be specified for a job.",
        ),
        (
            json!({"owner": "x", "require_torus": true}),
            "require_torus must be False when allocating boards.",
        ),
        (
            json!({"owner": "x", "bogus": 1}),
            "Allocator._alloc_type() got an unexpected keyword argument 'bogus'",
        ),
        (
            json!({"owner": "x", "keepalive": "abc"}),
            "could not convert string to float: 'abc'",
        ),
    ] {
        assert_eq!(
            c.call("create_job", json!([]), kwargs).unwrap_err(),
            message
        );
    }
    assert_eq!(
        c.call(
            "create_job",
            json!([4]),
            json!({"owner": "x", "min_ratio": -1})
        )
        .unwrap_err(),
        "Aspect ratio cannot be negative."
    );
    assert!(c
        .call("create_job", json!(["4"]), json!({"owner": "x"}))
        .is_err());
    assert_eq!(c.ok("list_jobs", json!([]), json!({})), json!([]));
    // No ID was consumed.
    assert_eq!(c.create(json!([]), json!({})), 1);
}

#[test]
fn keepalive_expiry_destroys_queued_and_allocated_jobs() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let running = c.create(json!([2, 1]), json!({"keepalive": 0.3}));
    let queued = c.create(json!([1]), json!({"keepalive": 0.3}));
    let forever = c.create(json!([1]), json!({"keepalive": null}));
    let s = c.wait_gone(queued);
    assert_eq!(s["reason"], json!("Cancelled: Job timed out."));
    let s = c.wait_gone(running);
    assert_eq!(s["reason"], json!("Job timed out."));
    let s = c.wait_state(forever, 3);
    assert_eq!(s["keepalive"], Value::Null);
}

#[test]
fn keepalive_touches_keep_a_job_alive() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let id = c.create(json!([]), json!({"keepalive": 0.4}));
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(c.ok("job_keepalive", json!([id]), json!({})), Value::Null);
    }
    assert_ne!(c.state(id)["state"], json!(4));
}

#[test]
fn power_off_and_on_pass_through_power_state() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let id = c.create(json!([]), json!({}));
    c.wait_state(id, 3);
    c.ok("power_off_job_boards", json!([id]), json!({}));
    let s = c.state(id);
    assert_eq!(
        (s["state"].clone(), s["power"].clone()),
        (json!(2), json!(false))
    );
    let s = c.wait_state(id, 3);
    assert_eq!(s["power"], json!(false));
    c.ok("power_on_job_boards", json!([id]), json!({}));
    assert_eq!(c.state(id)["power"], json!(true));
    assert_eq!(c.wait_state(id, 3)["power"], json!(true));
}

#[test]
fn unknown_jobs_read_as_unknown_and_commands_on_them_are_no_ops() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    assert_eq!(
        c.state(999),
        json!({"state": 0, "power": null, "keepalive": null, "reason": null, "start_time": null, "keepalivehost": null})
    );
    for cmd in [
        "job_keepalive",
        "destroy_job",
        "power_on_job_boards",
        "power_off_job_boards",
    ] {
        assert_eq!(c.ok(cmd, json!([999]), json!({})), Value::Null, "{cmd}");
    }
    assert_eq!(
        c.ok("get_job_machine_info", json!([999]), json!({})),
        json!({"width": null, "height": null, "connections": null, "machine_name": null, "boards": null})
    );
    // Non-integer IDs are simply unknown.
    assert_eq!(
        c.ok("get_job_state", json!(["x"]), json!({}))["state"],
        json!(0)
    );
}

#[test]
fn list_jobs_and_list_machines_have_the_reference_fields() {
    let server = start(small_config(
        r#"dead_boards = [[1, 0, 2]]
           dead_links = [[0, 0, 1, "north"]]
           tags = ["default", "fast"]"#,
        "",
    ));
    let mut c = Client::connect(&server);
    let id = c.create(
        json!([2]),
        json!({"owner": "bob", "keepalive": 60.0, "machine": null, "tags": ["default"], "min_ratio": 0.333,
               "max_dead_boards": 0, "max_dead_links": null, "require_torus": false}),
    );
    let jobs = c.ok("list_jobs", json!([]), json!({}));
    let job = &jobs[0];
    assert_eq!(job["job_id"], json!(id));
    assert_eq!(job["owner"], json!("bob"));
    assert_eq!(job["args"], json!([2]));
    assert_eq!(
        job["kwargs"],
        json!({"machine": null, "tags": ["default"], "min_ratio": 0.333, "max_dead_boards": 0,
               "max_dead_links": null, "require_torus": false})
    );
    assert_eq!(job["allocated_machine_name"], json!("test-machine"));
    assert_eq!(job["keepalivehost"], json!("127.0.0.1"));
    assert!(job["start_time"].as_f64().unwrap() > 1.7e9);
    let keys: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "job_id",
            "owner",
            "start_time",
            "keepalive",
            "state",
            "power",
            "args",
            "kwargs",
            "allocated_machine_name",
            "boards",
            "keepalivehost"
        ]
    );
    assert_eq!(
        c.ok("list_machines", json!([]), json!({})),
        json!([{"name": "test-machine", "tags": ["default", "fast"], "width": 2, "height": 1,
                "dead_boards": [[1, 0, 2]], "dead_links": [[0, 0, 1, 2]]}])
    );
}

#[test]
fn where_is_matches_the_reference_table() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let w = |c: &mut Client, kw: Value| c.ok("where_is", json!([]), kw);
    let r = w(
        &mut c,
        json!({"machine": "test-machine", "x": 1, "y": 0, "z": 2}),
    );
    assert_eq!(
        r,
        json!({"machine": "test-machine", "logical": [1, 0, 2], "physical": [0, 0, 5], "chip": [16, 8],
               "board_chip": [0, 0], "job_id": null, "job_chip": null})
    );
    let r = w(
        &mut c,
        json!({"machine": "test-machine", "chip_x": 30, "chip_y": 13}),
    );
    assert_eq!(
        (
            r["chip"].clone(),
            r["logical"].clone(),
            r["board_chip"].clone()
        ),
        (json!([6, 1]), json!([0, 0, 2]), json!([2, 5]))
    );
    let r = w(
        &mut c,
        json!({"machine": "test-machine", "chip_x": -1, "chip_y": -1}),
    );
    assert_eq!(
        (
            r["chip"].clone(),
            r["logical"].clone(),
            r["board_chip"].clone()
        ),
        (json!([23, 11]), json!([1, 0, 2]), json!([7, 3]))
    );
    let r = w(
        &mut c,
        json!({"machine": "test-machine", "x": 5, "y": 0, "z": 0}),
    );
    assert_eq!(r["logical"], json!([1, 0, 0]));
    let r = w(
        &mut c,
        json!({"machine": "test-machine", "cabinet": 0, "frame": 0, "board": 4}),
    );
    assert_eq!(r["logical"], json!([1, 0, 1]));
    let id = c.create(json!([]), json!({}));
    let r = w(&mut c, json!({"job_id": id, "chip_x": 3, "chip_y": 2}));
    assert_eq!(r["job_chip"], json!([3, 2]));
    assert_eq!(r["job_id"], json!(id));
    assert_eq!(r["logical"], json!([0, 0, 0]));
    // A chip off the job's boards, an unknown machine, a missing location.
    assert_eq!(
        w(&mut c, json!({"job_id": id, "chip_x": 12, "chip_y": 0})),
        Value::Null
    );
    assert_eq!(
        w(&mut c, json!({"machine": "nope", "chip_x": 0, "chip_y": 0})),
        Value::Null
    );
    assert_eq!(
        w(
            &mut c,
            json!({"machine": "test-machine", "cabinet": 9, "frame": 0, "board": 0})
        ),
        Value::Null
    );
    assert_eq!(
        c.call("where_is", json!([]), json!({"machine": "test-machine"}))
            .unwrap_err(),
        "Invalid arguments: machine"
    );
}

#[test]
fn board_positions_translate_both_ways() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    assert_eq!(
        c.ok(
            "get_board_position",
            json!(["test-machine", 1, 0, 1]),
            json!({})
        ),
        json!([0, 0, 4])
    );
    assert_eq!(
        c.ok(
            "get_board_at_position",
            json!([]),
            json!({"machine_name": "test-machine", "x": 0, "y": 0, "z": 4})
        ),
        json!([1, 0, 1])
    );
    assert_eq!(
        c.ok("get_board_position", json!(["nope", 0, 0, 0]), json!({})),
        Value::Null
    );
    assert_eq!(
        c.ok(
            "get_board_position",
            json!(["test-machine", 7, 0, 0]),
            json!({})
        ),
        Value::Null
    );
}

#[test]
fn job_notifications_follow_the_reply_and_respect_watch_sets() {
    let server = start(small_config("", ""));
    let mut watcher = Client::connect(&server);
    let mut other = Client::connect(&server);
    watcher.ok("notify_job", json!([null]), json!({}));
    let id = watcher.create(json!([]), json!({}));
    // The reply came first; the notification follows.
    let note = watcher.read_line().unwrap();
    assert_eq!(note["jobs_changed"], json!([id]));
    // A client watching only job 99 hears nothing about this job.
    other.ok("notify_job", json!([99]), json!({}));
    other.ok("notify_machine", json!(["test-machine"]), json!({}));
    watcher.wait_state(id, 3);
    other.create(json!([]), json!({}));
    let note = other.read_line().unwrap();
    assert_eq!(note, json!({"machines_changed": ["test-machine"]}));
    other.ok("no_notify_machine", json!([]), json!({}));
    other.ok("no_notify_job", json!([]), json!({}));
    watcher.ok("destroy_job", json!([id]), json!({}));
    assert!(
        watcher
            .notifications
            .iter()
            .any(|n| n["jobs_changed"] == json!([id]))
            || watcher.read_line().unwrap()["jobs_changed"]
                .as_array()
                .unwrap()
                .contains(&json!(id))
    );
}

#[test]
fn an_idle_watcher_hears_of_changes_other_clients_make() {
    let server = start(small_config("", ""));
    let mut watcher = Client::connect(&server);
    watcher.ok("notify_job", json!([]), json!({}));
    watcher.ok("notify_machine", json!([]), json!({}));
    // The watcher sends nothing more: only the other client's requests and
    // the simulated BMP's completions make its connection write.
    let mut other = Client::connect(&server);
    let id = other.create(json!([]), json!({}));
    other.wait_state(id, 3);
    other.ok("destroy_job", json!([id]), json!({}));
    let mut jobs_changed = 0;
    let mut machines_changed = 0;
    while jobs_changed < 2 || machines_changed < 2 {
        let note = watcher.read_line().expect("a notification");
        if note["jobs_changed"] == json!([id]) {
            jobs_changed += 1;
        } else if note["machines_changed"] == json!(["test-machine"]) {
            machines_changed += 1;
        } else {
            panic!("not a notification: {note}");
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let mut batch = String::new();
    for i in 0..50 {
        batch += &format!("{{\"command\": \"get_job_state\", \"args\": [{i}]}}\n");
        batch += "{\"command\": \"version\"}\n\n";
    }
    c.send_raw(batch.as_bytes());
    for _ in 0..50 {
        assert_eq!(c.reply().unwrap()["state"], json!(0));
        assert_eq!(c.reply().unwrap(), json!("6.0.0"));
    }
}

#[test]
fn bmp_failure_destroys_the_job_with_the_reference_reason() {
    let server = start(small_config("fail_power = true", ""));
    let mut c = Client::connect(&server);
    let id = c.create(json!([]), json!({}));
    let s = c.wait_state(id, 4);
    assert_eq!(
        s["reason"],
        json!("Machine configuration failed. Error: Requests failed on BMP 127.0.1.0")
    );
}

#[test]
fn boards_are_freed_even_when_no_reason_is_remembered() {
    // The reference leaks boards with max_retired_jobs = 0 (bug B2).
    let server = start(small_config("", "max_retired_jobs = 0"));
    let mut c = Client::connect(&server);
    let first = c.create(json!([2, 1]), json!({}));
    c.wait_state(first, 3);
    c.ok("destroy_job", json!([first]), json!({}));
    assert_eq!(c.state(first)["state"], json!(0), "nothing remembered");
    let second = c.create(json!([2, 1]), json!({}));
    c.wait_state(second, 3);
}
