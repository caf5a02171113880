//! Our server with its v2 API on a free port, and accounts, for the v2
//! client's tests.

#![allow(dead_code)]

use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::{RunningServer, ServerConfig};
use std::path::Path;

/// A 2×1-triad simulated machine with fast power; the HTTP port given (0
/// for any), the legacy port on any.
pub fn config(http_port: u16, state_file: Option<&Path>) -> ServerConfig {
    config_with(http_port, state_file, "")
}

/// [`config`] with more `[http]` keys (e.g. TLS files).
pub fn config_with(http_port: u16, state_file: Option<&Path>, http_keys: &str) -> ServerConfig {
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [http]
        port = {http_port}
        {http_keys}

        [[machine]]
        name = "test-machine"
        tags = ["default"]
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        "#
    );
    let mut config = ServerConfig::from_toml_str(&text).expect("test config is valid");
    config.state_file = state_file.map(Path::to_path_buf);
    config
}

/// The password of a test account: its name reversed.
pub fn password(user: &str) -> String {
    user.chars().rev().collect()
}

/// Now, as the accounts count time.
pub fn now() -> i64 {
    spalloc_server::clock::now() as i64
}

/// Starts a server with the users alice and bob and the reader rita.
pub fn start(config: ServerConfig) -> RunningServer {
    let server = RunningServer::start(config).expect("server starts");
    for (name, role) in [
        ("alice", Role::User),
        ("bob", Role::User),
        ("rita", Role::Reader),
    ] {
        let accounts = server.accounts();
        if accounts.user(name, now()).ok().flatten().is_none() {
            accounts
                .add_user(
                    &NewUser {
                        name: name.into(),
                        role,
                        password: Some(password(name)),
                        groups: vec!["testers".into()],
                    },
                    now(),
                )
                .expect("add user");
        }
    }
    server
}

/// A fresh server on any port.
pub fn server() -> RunningServer {
    start(config(0, None))
}

/// The service URL of a server, as users write it.
pub fn url(server: &RunningServer) -> String {
    format!(
        "http://{}/spalloc/",
        server.http_addr().expect("the server has an HTTP port")
    )
}

/// A new API token of `user`.
pub fn token(server: &RunningServer, user: &str) -> String {
    server
        .accounts()
        .create_token(user, "tests", None, now())
        .expect("token")
        .secret
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "spalloc-v2-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
