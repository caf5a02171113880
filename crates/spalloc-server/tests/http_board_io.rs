//! `GET`/`POST /jobs/{id}/memory` over real sockets against simulated
//! boards that answer SCP (`answer_scp = true`): what SpiNNMan's
//! `SpallocTransceiver` does with `write_data` and `read_data` (contract
//! §3.12), in several SCP pieces, with the errors a client can cause.

mod http_support;

use http_support::{start, Api};
use serde_json::json;
use spalloc_server::board_sim::scamp::MEMORY_BASE;
use spalloc_server::ServerConfig;

/// A 1×1-triad machine whose boards answer SCP on addresses of their own
/// (one base per test: two servers cannot answer on the same addresses).
fn config(base_ip: &str) -> ServerConfig {
    ServerConfig::from_toml_str(&format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [http]
        port = 0

        [[machine]]
        name = "test-machine"
        width = 1
        height = 1
        base_ip = "{base_ip}"
        power_delay = 0.02
        answer_scp = true
        "#
    ))
    .expect("test config is valid")
}

#[test]
fn memory_written_through_the_server_is_read_back_through_it() {
    let server = start(config("127.77.0.0"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(json!({
        "machine-name": "test-machine", "keepalive-interval": "PT60S",
        "board": {"x": 0, "y": 0, "z": 0},
    }));
    alice.wait_for(&job, "READY");
    // More than one SCP packet's worth (256 bytes), at an odd address.
    let data: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
    let address = MEMORY_BASE + 17;
    let written = alice.send(
        "POST",
        &format!("{job}/memory?x=0&y=0&address={address}"),
        "application/octet-stream",
        &data,
    );
    assert_eq!(written.status, 202, "{}", written.body);
    let url = format!("{job}/memory?x=0&y=0&address={address}&size=600");
    let response = alice
        .agent
        .get(&url)
        .set("Authorization", &format!("Basic {}", basic("alice")))
        .call()
        .expect("read");
    assert_eq!(response.content_type(), "application/octet-stream");
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut read).expect("body");
    assert_eq!(read, data);
}

#[test]
fn memory_requests_that_cannot_work_are_refused_with_a_message() {
    let server = start(config("127.78.0.0"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(json!({
        "machine-name": "test-machine", "keepalive-interval": "PT60S",
    }));
    alice.wait_for(&job, "READY");
    let status = |api: &Api, query: &str| {
        let a = api.get(&format!("{job}/memory?{query}"));
        assert!(a.status == 200 || a.content_type.starts_with("text/plain"));
        a.status
    };
    let base = MEMORY_BASE;
    assert_eq!(status(&alice, &format!("address={base}&size=4")), 200);
    // Beyond the board's memory: the board refuses, the client hears why.
    assert_eq!(status(&alice, "address=0&size=4"), 400);
    assert_eq!(
        status(&alice, &format!("x=200&y=0&address={base}&size=4")),
        400
    );
    assert_eq!(status(&alice, &format!("address={base}")), 400, "no size");
    assert_eq!(status(&alice, "size=4"), 400, "no address");
    assert_eq!(status(&alice, &format!("address={base}&size=0")), 400);
    assert_eq!(
        status(
            &Api::new(&server, Some("bob")),
            &format!("address={base}&size=4")
        ),
        404
    );
    assert_eq!(
        status(
            &Api::new(&server, Some("rita")),
            &format!("address={base}&size=4")
        ),
        403
    );
    assert_eq!(
        status(&Api::new(&server, None), &format!("address={base}&size=4")),
        401
    );
    // Fast data and router resets stay unserved, with a reason.
    let router = alice.delete(&format!("{job}/router"));
    assert_eq!(router.status, 501);
    assert!(router.body.contains("extra monitor"), "{}", router.body);
    assert_eq!(alice.delete(&job).status, 204);
    assert_eq!(status(&alice, &format!("address={base}&size=4")), 410);
}

fn basic(user: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(format!("{user}:{}", http_support::password(user)))
}
