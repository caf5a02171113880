//! A BMP that exists only in memory: every power command takes
//! `power_delay` seconds, then succeeds, or fails when failure is injected
//! (the job is then destroyed with the reference's BMP failure reason).

use crate::clock;
use crate::core::bmp_request::BmpRequest;
use crate::server::shared::Shared;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::debug;

/// Runs one simulated BMP until the server stops.
pub async fn worker(
    mut inbox: mpsc::UnboundedReceiver<BmpRequest>,
    shared: Weak<Shared>,
    power_delay: f64,
    fail_power: bool,
) {
    while let Some(request) = inbox.recv().await {
        let started = std::time::Instant::now();
        debug!(
            bmp = %request.bmp_ip, job = request.job_id, power = request.power,
            boards = ?request.boards, links = request.links.len(), "simulated BMP request"
        );
        if power_delay > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(power_delay)).await;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let result = if fail_power {
            Err(request.bmp_ip.clone())
        } else {
            Ok(())
        };
        crate::metrics::events::global().bmp_request(
            &request.machine,
            result.is_ok(),
            started.elapsed(),
        );
        shared.with(|state| {
            state
                .service
                .bmp_request_done(request.id, result, clock::now())
        });
    }
}
