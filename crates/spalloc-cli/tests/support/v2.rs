//! A server with the v2 API and the users alice and bob, for the tools'
//! v2 tests (one copy instead of one per test file).

use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::{RunningServer, ServerConfig};

/// A 1×1-triad machine `m1` with both ports: the v2 API on `http_port`
/// (0: any) with `http_keys` in its `[http]` table, boards that power on
/// in `power_delay` seconds, and `tail` (more tables) at the end.
pub fn config(http_port: u16, http_keys: &str, power_delay: f64, tail: &str) -> ServerConfig {
    ServerConfig::from_toml_str(&format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05
        [http]
        port = {http_port}
        {http_keys}
        [[machine]]
        name = "m1"
        tags = ["default"]
        width = 1
        height = 1
        base_ip = "127.0.1.0"
        power_delay = {power_delay}
        {tail}
        "#
    ))
    .expect("config")
}

/// Starts a server and adds alice and bob (passwords: the names reversed,
/// both in the group `testers`) unless its state file already has them.
pub fn start(config: ServerConfig) -> RunningServer {
    let server = RunningServer::start(config).expect("server starts");
    let now = spalloc_server::clock::now() as i64;
    for name in ["alice", "bob"] {
        if server.accounts().user(name, now).ok().flatten().is_none() {
            server
                .accounts()
                .add_user(
                    &NewUser {
                        name: name.into(),
                        role: Role::User,
                        password: Some(name.chars().rev().collect()),
                        groups: vec!["testers".into()],
                    },
                    now,
                )
                .expect("user");
        }
    }
    server
}

/// The v2 service's URL on `server`.
pub fn url(server: &RunningServer) -> String {
    format!("http://{}/spalloc/", server.http_addr().expect("http"))
}
