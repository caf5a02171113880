//! A BMP that exists only in memory: every power command takes
//! `power_delay` seconds, then succeeds; or fails when failure is injected:
//! `fail_power` makes the whole BMP fail (the job is then destroyed with
//! the reference's BMP failure reason), `fail_power_on` makes some boards
//! fail their power-on checks (the failure-aware path: those boards go out
//! of service and the job goes back to the queue).

use super::CarryOut;
use crate::core::bmp_request::{BmpFailure, BmpRequest};
use std::collections::BTreeSet;
use std::time::Duration;
use tracing::debug;

/// One simulated BMP.
#[derive(Debug, Clone)]
pub struct SimulatedBmp {
    /// Seconds each request takes.
    pub power_delay: f64,
    /// Whether every request fails.
    pub fail_power: bool,
    /// Boards, as (cabinet, frame, slot), whose power-on checks fail.
    pub fail_power_on: BTreeSet<(u32, u32, u32)>,
}

impl SimulatedBmp {
    /// The slots of a power-on request that fail their checks.
    fn failing_slots(&self, request: &BmpRequest) -> Vec<u32> {
        if !request.power {
            return Vec::new();
        }
        let (cabinet, frame) = request.bmp;
        request
            .boards
            .iter()
            .copied()
            .filter(|&slot| self.fail_power_on.contains(&(cabinet, frame, slot)))
            .collect()
    }
}

impl CarryOut for SimulatedBmp {
    async fn carry_out(&mut self, request: &BmpRequest) -> Result<(), BmpFailure> {
        debug!(
            bmp = %request.bmp_ip, job = request.job_id, power = request.power,
            boards = ?request.boards, links = request.links.len(), "simulated BMP request"
        );
        if self.power_delay > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(self.power_delay)).await;
        }
        if self.fail_power {
            return Err(BmpFailure::Bmp(request.bmp_ip.clone()));
        }
        let slots = self.failing_slots(request);
        if slots.is_empty() {
            Ok(())
        } else {
            Err(BmpFailure::PowerOnChecks {
                bmp_ip: request.bmp_ip.clone(),
                slots,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(power: bool, boards: Vec<u32>) -> BmpRequest {
        BmpRequest {
            id: 1,
            job_id: 1,
            machine: "m".into(),
            bmp: (0, 0),
            bmp_ip: "10.0.0.0".into(),
            power,
            boards,
            links: Vec::new(),
        }
    }

    #[tokio::test]
    async fn only_the_named_boards_fail_and_only_when_powered_on() {
        let mut bmp = SimulatedBmp {
            power_delay: 0.0,
            fail_power: false,
            fail_power_on: [(0, 0, 2)].into(),
        };
        assert_eq!(
            bmp.carry_out(&request(true, vec![1, 2, 3])).await,
            Err(BmpFailure::PowerOnChecks {
                bmp_ip: "10.0.0.0".into(),
                slots: vec![2]
            })
        );
        assert_eq!(bmp.carry_out(&request(true, vec![1, 3])).await, Ok(()));
        assert_eq!(bmp.carry_out(&request(false, vec![2])).await, Ok(()));
    }
}
