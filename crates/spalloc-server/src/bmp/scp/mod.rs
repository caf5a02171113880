//! Real BMPs over SCP/UDP (reference §6.6 and §6.7): the packets
//! ([`packet`]), one request/reply exchange with timeouts and retries
//! ([`connection`]), the per-BMP worker ([`worker`]), and the version check
//! every BMP must pass before the server serves ([`check_bmps`]).

pub mod connection;
pub mod packet;
pub mod worker;

use crate::config::{BmpBackend, ScpSettings, ServerConfig};
use connection::{Attempts, ScpConnection, ScpError};
use packet::{Request, VersionInfo, BMP_NAME};
use std::fmt;
use tokio::task::JoinSet;
use tracing::info;

/// One BMP driven over SCP, as named by the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ScpBmp {
    /// The machine it belongs to.
    pub machine: String,
    /// Its (cabinet, frame).
    pub bmp: (u32, u32),
    /// Its address.
    pub ip: String,
    /// Port and timings.
    pub settings: ScpSettings,
}

/// Every BMP of the configuration's `bmp = "scp"` machines.
pub fn scp_bmps(config: &ServerConfig) -> Vec<ScpBmp> {
    let mut out = Vec::new();
    for m in &config.machines {
        if let BmpBackend::Scp(settings) = &m.bmp {
            for (bmp, ip) in &m.machine.bmp_ips {
                out.push(ScpBmp {
                    machine: m.machine.name.clone(),
                    bmp: *bmp,
                    ip: ip.clone(),
                    settings: settings.clone(),
                });
            }
        }
    }
    out
}

/// Asks one BMP for its version (CMD_VER to the BMP itself, `scp_timeout`
/// per attempt, `version_check_retries` resends) and requires `BC&MP` 1.x
/// or 2.x, as SpiNNMan does when the reference connects to a BMP.
pub async fn check_bmp(ip: &str, settings: &ScpSettings) -> Result<VersionInfo, ScpError> {
    let mut connection = ScpConnection::connect(ip, settings.port).await?;
    let attempts = Attempts {
        timeout: settings.timeout,
        retries: settings.version_check_retries,
    };
    let reply = connection
        .call(&Request::Version { board: 0 }, attempts)
        .await?;
    let info = VersionInfo::decode(&reply.payload).map_err(|source| ScpError::BadReply {
        bmp: ip.to_owned(),
        command: "CMD_VER",
        source,
    })?;
    if info.name != BMP_NAME || !matches!(info.version.0, 1 | 2) {
        let (major, minor, patch) = info.version;
        return Err(ScpError::Incompatible {
            bmp: ip.to_owned(),
            name: format!("{}/{}", info.name, info.hardware),
            version: format!("{major}.{minor}.{patch}"),
        });
    }
    Ok(info)
}

/// A BMP that failed its version check.
#[derive(Debug)]
pub struct BmpCheckFailure {
    /// Which BMP.
    pub bmp: ScpBmp,
    /// Why.
    pub error: ScpError,
}

/// Every BMP that failed the check, in configuration order.
#[derive(Debug)]
pub struct BmpCheckError(pub Vec<BmpCheckFailure>);

impl fmt::Display for BmpCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let b = &failure.bmp;
            write!(
                f,
                "BMP {} of machine '{}' (cabinet {}, frame {}) is not usable: {}",
                b.ip, b.machine, b.bmp.0, b.bmp.1, failure.error
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for BmpCheckError {}

/// Checks every SCP BMP of a configuration concurrently, so that start-up
/// (or a reload) takes one BMP's worst case, not the sum. Must run inside a
/// tokio runtime.
pub async fn check_bmps(config: &ServerConfig) -> Result<(), BmpCheckError> {
    let bmps = scp_bmps(config);
    let mut checks = JoinSet::new();
    for (index, bmp) in bmps.iter().cloned().enumerate() {
        checks.spawn(async move {
            let result = check_bmp(&bmp.ip, &bmp.settings).await;
            (index, result)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = checks.join_next().await {
        // A check task only panics on a bug; treat it as nothing to report.
        let Ok((index, result)) = joined else {
            continue;
        };
        let bmp = &bmps[index];
        match result {
            Ok(info) => {
                let (major, minor, patch) = info.version;
                info!(
                    "Using BMP at {} with version {} {major}.{minor}.{patch}",
                    bmp.ip, info.name
                );
            }
            Err(error) => failures.push((index, error)),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    failures.sort_by_key(|(index, _)| *index);
    Err(BmpCheckError(
        failures
            .into_iter()
            .map(|(index, error)| BmpCheckFailure {
                bmp: bmps[index].clone(),
                error,
            })
            .collect(),
    ))
}
