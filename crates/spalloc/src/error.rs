//! The one error type of the crate.
//!
//! Every fallible function returns [`Result<T>`](Result). The variants mirror
//! the reference client's exceptions (`ProtocolError`, `ProtocolTimeoutError`,
//! `SpallocServerException`, `JobDestroyedError`, `StateChangeTimeoutError`)
//! and add the ones Python reported as raw `OSError` or `ValueError`, so that
//! callers can tell them apart with a `match` instead of parsing messages.

use crate::config::ConfigError;
use std::io;
use thiserror::Error;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a spalloc server.
///
/// [`Error::is_communication_error`] tells the transient network failures,
/// after which reconnecting may help, from the permanent ones.
#[derive(Debug, Error)]
pub enum Error {
    /// The TCP connection could not be opened (refused, unreachable, name
    /// not found, connect timeout).
    #[error("could not connect to the spalloc server at {address}: {source} (check the hostname and port, e.g. in the [spalloc] section of your config file, and that the server is running)")]
    Connect {
        /// `host:port` as given.
        address: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The server closed the connection. The Python server does this, with no
    /// reply, on a command it does not know or a malformed request.
    #[error("the spalloc server closed the connection")]
    ConnectionClosed,

    /// The client was closed with [`ProtocolClient::close`](crate::ProtocolClient::close)
    /// and not reconnected.
    #[error("not connected to the spalloc server (call connect() first)")]
    NotConnected,

    /// Any other failure of the connection or of the data on it: an I/O
    /// error, a reply that is not JSON, a line over the size cap, a reply of
    /// the wrong shape.
    #[error("protocol error talking to the spalloc server: {0}")]
    ProtocolError(String),

    /// No reply (or notification) arrived in time. After a timeout in the
    /// middle of a call the connection is dropped, because the late reply
    /// would otherwise be taken for the answer to the next call.
    #[error("timed out waiting for the spalloc server: {0} (the server may be overloaded or unreachable; try a longer timeout)")]
    ProtocolTimeout(String),

    /// The server answered `{"exception": ...}`; the text is the server's,
    /// verbatim.
    #[error("{0}")]
    ServerException(String),

    /// The server's `version` is outside the range this client supports.
    #[error("server version {version} is not compatible with this client (supported: 0.1.0 <= version < 7.0.0, and 1!7.x)")]
    IncompatibleVersion {
        /// The version string the server sent.
        version: String,
    },

    /// The job was destroyed (or is unknown to the server) while it was
    /// expected to become ready, or when resuming it.
    #[error("job {job_id} was destroyed{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    JobDestroyed {
        /// The job.
        job_id: u64,
        /// The server's reason, if it gave one.
        reason: Option<String>,
    },

    /// [`Job::wait_until_ready`](crate::Job::wait_until_ready) ran out of time.
    #[error("timed out waiting for the job to become ready (pass a longer timeout, or None to wait forever)")]
    StateChangeTimeout,

    /// A request was refused by the client before anything was sent, e.g. a
    /// job with no owner or no hostname.
    #[error("{0}")]
    InvalidRequest(String),

    /// A configuration file could not be read or has a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A v2 (REST) request could not be sent or its answer not read: the
    /// server is unreachable, the connection broke, or TLS failed.
    #[error("could not reach the spalloc server at {url}: {message}")]
    Transport {
        /// The URL of the request.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// A v2 server refused the credentials (a wrong password, or an
    /// expired or revoked token).
    #[error("the spalloc server at {url} refused the credentials: {message}")]
    Unauthorized {
        /// The URL of the request.
        url: String,
        /// The server's message.
        message: String,
    },

    /// A v2 server answered a request with an error status; the message is
    /// the server's.
    #[error("the spalloc server refused {what} (HTTP {status}): {message}")]
    Http {
        /// What was asked (method and path).
        what: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },

    /// The job proxy's websocket closed (or could not be opened): the
    /// server's close code and reason, or what broke the connection.
    #[error("the job proxy closed: {reason}{}", code.map(|c| format!(" (close code {c})")).unwrap_or_default())]
    ProxyClosed {
        /// The websocket close code, if the server sent one.
        code: Option<u16>,
        /// The server's reason, or what went wrong.
        reason: String,
    },

    /// The job proxy refused a call (an ERROR frame): e.g. a chip that is
    /// not a board of the job. The proxy stays open.
    #[error("the job proxy refused: {0}")]
    ProxyRefused(String),
}

impl Error {
    /// True for failures of the connection itself (connect failure, closed
    /// connection, I/O or framing error, timeout): the errors after which
    /// reconnecting and trying again is worthwhile. Server exceptions, version
    /// mismatches, destroyed jobs and bad requests are not.
    pub fn is_communication_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectionClosed
                | Error::NotConnected
                | Error::ProtocolError(_)
                | Error::ProtocolTimeout(_)
                | Error::Transport { .. }
        ) || matches!(self, Error::ProxyClosed { code, .. } if !code.is_some_and(proxy_close_is_final))
    }
}

/// Whether a proxy close code means the server will not proxy the job
/// again (1001: the job ended or lost its boards; 1007/1008: the client
/// broke the protocol or may not; 1011: the job cannot be proxied), so that
/// reconnecting is pointless; any other close (a restart, a network drop)
/// is worth retrying.
pub fn proxy_close_is_final(code: u16) -> bool {
    matches!(code, 1001 | 1007 | 1008 | 1011)
}

impl Error {
    /// For [`Error::ProxyClosed`]: whether the server closed the proxy for
    /// good (see [`proxy_close_is_final`]).
    pub fn is_final_proxy_close(&self) -> bool {
        matches!(self, Error::ProxyClosed { code: Some(c), .. } if proxy_close_is_final(*c))
    }
}
