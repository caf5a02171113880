//! A BMP that exists only in memory: every power command takes
//! `power_delay` seconds, then succeeds, or fails when failure is injected
//! (the job is then destroyed with the reference's BMP failure reason).

use super::CarryOut;
use crate::core::bmp_request::BmpRequest;
use std::time::Duration;
use tracing::debug;

/// One simulated BMP.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedBmp {
    /// Seconds each request takes.
    pub power_delay: f64,
    /// Whether every request fails.
    pub fail_power: bool,
}

impl CarryOut for SimulatedBmp {
    async fn carry_out(&mut self, request: &BmpRequest) -> Result<(), String> {
        debug!(
            bmp = %request.bmp_ip, job = request.job_id, power = request.power,
            boards = ?request.boards, links = request.links.len(), "simulated BMP request"
        );
        if self.power_delay > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(self.power_delay)).await;
        }
        if self.fail_power {
            Err(request.bmp_ip.clone())
        } else {
            Ok(())
        }
    }
}
