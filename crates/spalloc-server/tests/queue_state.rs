//! A queued job's `get_job_state` over real TCP: where it stands and why it
//! waits, as two extra keys (also on its `list_jobs` entry); every other
//! job's reply is the reference's.

mod common;

use common::{small_config, start, Client};
use serde_json::json;

#[test]
fn a_queued_job_state_says_its_place_and_why_and_other_replies_have_no_extra_keys() {
    let server = start(small_config("", ""));
    let mut c = Client::connect(&server);
    let full = c.create(json!([2, 1]), json!({"keepalive": null}));
    let big = c.create(json!([2, 1]), json!({"keepalive": null}));
    let small = c.create(json!([]), json!({"keepalive": null}));
    let head = c.state(big);
    assert_eq!(head["state"], json!(1), "{head}");
    assert_eq!(head["queue_position"], json!(1));
    assert_eq!(
        head["queue_reason"],
        json!("waiting for 6 free boards on test-machine; 6 of 6 in use")
    );
    let behind = c.state(small);
    assert_eq!(behind["queue_position"], json!(2));
    assert_eq!(
        behind["queue_reason"],
        json!(format!(
            "behind job {big} at the head of the queue on test-machine"
        ))
    );
    // list_jobs says the same of each queued job, and nothing more of others.
    let listed = c.ok("list_jobs", json!([]), json!({}));
    let entry = |id: u64| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_id"] == json!(id))
            .cloned()
            .unwrap()
    };
    assert_eq!(entry(big)["queue_position"], json!(1));
    assert_eq!(entry(big)["queue_reason"], head["queue_reason"]);
    assert_eq!(entry(small)["queue_reason"], behind["queue_reason"]);
    assert!(entry(full).get("queue_position").is_none());
    assert!(entry(full).get("queue_reason").is_none());
    // Allocated, destroyed and unknown jobs: exactly the reference's keys.
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<String>>()
    };
    let reference = [
        "state",
        "power",
        "keepalive",
        "reason",
        "start_time",
        "keepalivehost",
    ];
    assert_eq!(keys(&c.state(full)), reference);
    c.ok("destroy_job", json!([full]), json!({}));
    assert_eq!(keys(&c.state(full)), reference);
    assert_eq!(keys(&c.state(999)), reference);
    let started = c.wait_state(big, 3);
    assert_eq!(keys(&started), reference);
    assert_eq!(c.state(small)["queue_position"], json!(1));
}
