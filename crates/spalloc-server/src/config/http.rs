//! The `[http]` section: where the v2 REST API listens, its TLS files, and
//! whether the legacy port stays open.
//!
//! ```toml
//! [http]
//! ip = "127.0.0.1"          # default: the top-level ip
//! port = 8080               # 0: any free port (logged)
//! tls_cert = "cert.pem"     # PEM certificate chain; with tls_key, serve HTTPS
//! tls_key = "key.pem"       # PEM private key
//! legacy_port = true        # false: no legacy protocol listener at all
//! max_long_polls = 4096     # wait=true requests held at once; more get 429
//! ```
//!
//! No `[http]` section means no HTTP listener. SpiNNMan's client rewrites
//! every URL it follows to `https`, so it needs TLS: ours, or a reverse
//! proxy's (whose `X-Forwarded-Proto` and `X-Forwarded-Host` are honoured).

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The validated `[http]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on; `None` means the top-level `ip`.
    pub ip: Option<String>,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// Certificate chain and key (PEM) for HTTPS; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Whether the legacy protocol's port is served too.
    pub legacy_port: bool,
    /// How many long-polls may be held at once; more get 429.
    pub max_long_polls: usize,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The default HTTP port (allocserv's example deployment).
pub const DEFAULT_HTTP_PORT: u16 = 9091;

/// The default cap on long-polls held at once.
pub const DEFAULT_MAX_LONG_POLLS: usize = 4096;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            ip: None,
            port: DEFAULT_HTTP_PORT,
            tls: None,
            legacy_port: true,
            max_long_polls: DEFAULT_MAX_LONG_POLLS,
        }
    }
}

/// The raw TOML of `[http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    ip: Option<String>,
    port: Option<u16>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    legacy_port: Option<bool>,
    max_long_polls: Option<usize>,
}

impl RawHttp {
    /// Validates it; relative TLS paths are relative to `base_dir`.
    pub(super) fn build(self, base_dir: &Path) -> Result<HttpConfig, String> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: base_dir.join(cert),
                key: base_dir.join(key),
            }),
            (None, None) => None,
            _ => return Err("[http] needs both tls_cert and tls_key, or neither".into()),
        };
        Ok(HttpConfig {
            ip: self.ip,
            port: self.port.unwrap_or(DEFAULT_HTTP_PORT),
            tls,
            legacy_port: self.legacy_port.unwrap_or(true),
            max_long_polls: self.max_long_polls.unwrap_or(DEFAULT_MAX_LONG_POLLS),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerConfig;

    #[test]
    fn an_http_section_is_read_and_needs_both_tls_files() {
        let c = ServerConfig::from_toml_str(
            "machine = []\n[http]\nport = 0\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nlegacy_port = false\n",
        )
        .unwrap();
        let http = c.http.unwrap();
        assert_eq!(http.port, 0);
        assert!(!http.legacy_port);
        assert!(http.tls.unwrap().cert.ends_with("c.pem"));
        let e = ServerConfig::from_toml_str("machine = []\n[http]\ntls_cert = \"c.pem\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("both tls_cert and tls_key"), "{e}");
        assert!(ServerConfig::from_toml_str("machine = []")
            .unwrap()
            .http
            .is_none());
        assert!(ServerConfig::from_toml_str("machine = []\n[http]\nbogus = 1\n").is_err());
    }
}
