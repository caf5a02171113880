//! The `[proxy]` section: where the job proxy's unconnected channels bind
//! their UDP sockets (see `crate::proxy`).
//!
//! ```toml
//! [proxy]
//! unconnected_address = "10.0.0.1"   # default 127.0.0.1
//! ```
//!
//! Boards send to an unconnected channel's socket (their IPTags point at
//! it), so this must be an address of the server that the boards can
//! reach: on a real machine, the server's address on the boards' network.

use serde::Deserialize;
use std::net::Ipv4Addr;

/// The validated `[proxy]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The local IPv4 address unconnected channels bind (port 0: a free
    /// port per channel).
    pub unconnected_address: Ipv4Addr,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            unconnected_address: Ipv4Addr::LOCALHOST,
        }
    }
}

/// The raw TOML of `[proxy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    unconnected_address: Option<String>,
}

impl RawProxy {
    /// Validates it: the address must be an IPv4 address (the proxy
    /// protocol carries IPv4 addresses only).
    pub(super) fn build(self) -> Result<ProxyConfig, String> {
        let unconnected_address = match self.unconnected_address {
            None => Ipv4Addr::LOCALHOST,
            Some(text) => text.trim().parse().map_err(|_| {
                format!("[proxy] unconnected_address {text:?} is not an IPv4 address")
            })?,
        };
        Ok(ProxyConfig {
            unconnected_address,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerConfig;
    use std::net::Ipv4Addr;

    #[test]
    fn the_unconnected_address_is_read_and_defaults_to_loopback() {
        let c = ServerConfig::from_toml_str(
            "machine = []\n[proxy]\nunconnected_address = \"127.9.8.7\"\n",
        )
        .unwrap();
        assert_eq!(c.proxy.unconnected_address, Ipv4Addr::new(127, 9, 8, 7));
        let c = ServerConfig::from_toml_str("machine = []\n").unwrap();
        assert_eq!(c.proxy.unconnected_address, Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn an_unconnected_address_that_is_not_ipv4_is_refused_with_its_key() {
        for bad in ["\"::1\"", "\"board-host\"", "7"] {
            let e = ServerConfig::from_toml_str(&format!(
                "machine = []\n[proxy]\nunconnected_address = {bad}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("unconnected_address"), "{bad}: {e}");
        }
        assert!(ServerConfig::from_toml_str("machine = []\n[proxy]\nbogus = 1\n").is_err());
    }
}
