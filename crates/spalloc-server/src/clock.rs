//! The one place the server reads the wall clock. The core gets time passed
//! in, so it stays deterministic under test.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as Unix seconds (the protocol's `start_time` unit).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
