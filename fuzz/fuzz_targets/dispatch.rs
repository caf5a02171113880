//! libFuzzer target over frame parsing and command dispatch on the sans-I/O
//! core: `cargo +nightly fuzz run dispatch` from the repository root. The
//! stable-toolchain equivalent, run in CI, is
//! `crates/spalloc-server/tests/fuzz_dispatch.rs`.
//!
//! The input is a byte stream as a client would send it. It is fed to a
//! `LineBuffer` in chunks sized by the first byte; every complete line goes
//! through `Service::handle_line`, with time advancing and BMP requests
//! completing (or failing) between lines. Checked: no panic, one reply per
//! non-blank line, and no board in two live jobs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spalloc_protocol::LineBuffer;
use spalloc_server::cmd::Caller;
use spalloc_server::{ServerConfig, Service};

const CONFIG: &str = r#"
    seconds_before_free = 0.5
    max_retired_jobs = 5

    [[machine]]
    name = "m"
    tags = ["default"]
    width = 2
    height = 1
    base_ip = "10.0.0.0"
    dead_boards = [[1, 0, 2]]
    dead_links = [[0, 0, 1, "north"]]

    [[machine]]
    name = "one"
    tags = ["one"]
    single_board = true
    bmp_ip = "10.1.0.1"
    spinnaker_ip = "10.1.0.2"
"#;

fn check_invariants(service: &Service) {
    if let Err(e) = service.controller.check_board_ownership() {
        panic!("{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 64) + 1;
    let config = ServerConfig::from_toml_str(CONFIG).expect("valid config");
    let mut service = Service::new(&config);
    let caller = Caller {
        client: 1,
        host: Some("127.0.0.1".into()),
    };
    let mut now = 1000.0;
    let mut framer = LineBuffer::new(4096);
    let mut seen = 0u32;
    for piece in data.chunks(chunk) {
        framer.extend(piece);
        loop {
            let line = match framer.next_line() {
                Ok(Some(line)) => line.to_vec(),
                Ok(None) => break,
                Err(_) => return, // the server drops such a connection
            };
            let blank = line.iter().all(u8::is_ascii_whitespace);
            let reply = service.handle_line(&caller, &line, now);
            assert_eq!(reply.is_none(), blank, "one reply per non-blank line");
            if let Some(reply) = reply {
                let _ = reply.to_line();
            }
            seen += 1;
            // Let time pass and BMPs work every few lines.
            now += f64::from(line.len() as u8) / 64.0;
            service.tick(now);
            for r in service.take_bmp_requests() {
                let result = if seen % 7 == 0 {
                    Err("10.0.0.0".to_owned())
                } else {
                    Ok(())
                };
                service.bmp_request_done(r.id, result, now);
            }
            let _ = service.take_notifications();
            check_invariants(&service);
        }
    }
    service.client_disconnected(caller.client);
});
