//! The worker of one real BMP: carries out each [`BmpRequest`] (one
//! reference `AtomicRequests`) in the reference's order, with its FPGA
//! re-power rounds and its single retry of a failed batch, then reports
//! the outcome to the core.

use super::connection::{Attempts, ScpConnection, ScpError};
use super::packet::{Reply, Request, VersionInfo, FPGA_FLAG_ID_MASK, FPGA_FLAG_REGISTER, N_FPGAS};
use crate::bmp::CarryOut;
use crate::config::ScpSettings;
use crate::core::bmp_request::{BmpFailure, BmpRequest};
use tracing::{debug, error, info, warn};

/// The first BMP software major version with FPGA register access; older
/// BMPs get no FPGA checks and no link writes, as in the reference.
const FPGA_MIN_MAJOR: u32 = 2;

/// One BMP and the connection to it (opened on first use, and again after
/// a failed batch).
pub struct Bmp {
    ip: String,
    settings: ScpSettings,
    connection: Option<ScpConnection>,
}

impl CarryOut for Bmp {
    async fn carry_out(&mut self, request: &BmpRequest) -> Result<(), BmpFailure> {
        Bmp::carry_out(self, request).await
    }
}

impl Bmp {
    /// A BMP at `ip` (port and timings from `settings`); nothing is sent yet.
    pub fn new(ip: String, settings: ScpSettings) -> Bmp {
        Bmp {
            ip,
            settings,
            connection: None,
        }
    }

    /// Carries out one request, trying the whole batch again after
    /// `retry_delay` if it fails (`request_tries` attempts in all). If the
    /// last attempt failed because boards' FPGAs never reported the right
    /// IDs, the error names those boards (they go out of service);
    /// otherwise it is the BMP's address, which the core puts in the job's
    /// reason.
    pub async fn carry_out(&mut self, request: &BmpRequest) -> Result<(), BmpFailure> {
        debug!(
            bmp = %self.ip, job = request.job_id, power = request.power,
            boards = ?request.boards, links = request.links.len(), "BMP request"
        );
        let tries = self.settings.request_tries.max(1);
        for attempt in 1..=tries {
            match self.attempt(request).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < tries => {
                    warn!(
                        bmp = %self.ip, job = request.job_id, error = %e,
                        "Retrying requests on BMP {} after {:?}", self.ip, self.settings.retry_delay
                    );
                    // A fresh socket drops replies that arrive too late.
                    self.connection = None;
                    tokio::time::sleep(self.settings.retry_delay).await;
                }
                Err(e) => {
                    error!(bmp = %self.ip, job = request.job_id, error = %e, "Requests failed on BMP {}", self.ip);
                    self.connection = None;
                    if let ScpError::FpgaId { boards, .. } = e {
                        return Err(BmpFailure::PowerOnChecks {
                            bmp_ip: self.ip.clone(),
                            slots: boards,
                        });
                    }
                }
            }
        }
        Err(BmpFailure::Bmp(self.ip.clone()))
    }

    /// One attempt: power on (with FPGA checks), then links, then power off.
    async fn attempt(&mut self, request: &BmpRequest) -> Result<(), ScpError> {
        if request.power && !request.boards.is_empty() {
            self.power_on_and_check(&request.boards).await?;
        }
        for (board, link, enable) in &request.links {
            if self.fpga_capable(*board).await? {
                let write = Request::link_stop(*board, *link, *enable);
                self.call(&write, self.attempts()).await?;
            }
        }
        if !request.power && !request.boards.is_empty() {
            let off = Request::Power {
                on: false,
                boards: request.boards.clone(),
            };
            let attempts = Attempts {
                timeout: self.settings.power_off_timeout,
                retries: 0,
            };
            self.call(&off, attempts).await?;
        }
        Ok(())
    }

    /// Powers boards on, waits, and checks each board's three FPGA IDs;
    /// boards with a wrong ID are powered on again, up to
    /// `fpga_check_rounds` rounds (work-around for spinnaker_tools#45).
    async fn power_on_and_check(&mut self, boards: &[u32]) -> Result<(), ScpError> {
        let mut to_power = boards.to_vec();
        for _ in 0..self.settings.fpga_check_rounds {
            let on = Request::Power {
                on: true,
                boards: to_power.clone(),
            };
            let attempts = Attempts {
                timeout: self.settings.power_on_timeout,
                retries: 0,
            };
            self.call(&on, attempts).await?;
            tokio::time::sleep(self.settings.post_power_on_delay).await;
            let mut wrong = Vec::new();
            for &board in &to_power {
                if !self.fpga_capable(board).await? {
                    continue;
                }
                // Like the reference's all(): stop at the first wrong FPGA.
                for fpga in 0..N_FPGAS {
                    if !self.good_fpga(board, fpga).await? {
                        wrong.push(board);
                        break;
                    }
                }
            }
            if wrong.is_empty() {
                return Ok(());
            }
            to_power = wrong;
        }
        Err(ScpError::FpgaId {
            bmp: self.ip.clone(),
            rounds: self.settings.fpga_check_rounds,
            boards: to_power,
        })
    }

    /// Whether the board's BMP software can access FPGA registers.
    async fn fpga_capable(&mut self, board: u32) -> Result<bool, ScpError> {
        let reply = self
            .call(&Request::Version { board }, self.attempts())
            .await?;
        let info = VersionInfo::decode(&reply.payload).map_err(|source| ScpError::BadReply {
            bmp: self.ip.clone(),
            command: "CMD_VER",
            source,
        })?;
        Ok(info.version.0 >= FPGA_MIN_MAJOR)
    }

    /// Whether one FPGA reports its own number in its FLAG register.
    async fn good_fpga(&mut self, board: u32, fpga: u32) -> Result<bool, ScpError> {
        let read = Request::ReadFpga {
            board,
            fpga,
            register: FPGA_FLAG_REGISTER,
        };
        let reply = self.call(&read, self.attempts()).await?;
        let value = reply
            .register_value()
            .map_err(|source| ScpError::BadReply {
                bmp: self.ip.clone(),
                command: "CMD_LINK_READ",
                source,
            })?;
        let ok = value & FPGA_FLAG_ID_MASK == fpga;
        if !ok {
            info!(
                bmp = %self.ip, board, fpga,
                "FPGA {fpga} on board {board} of {} has incorrect FPGA ID flag {}",
                self.ip, value & FPGA_FLAG_ID_MASK
            );
        }
        Ok(ok)
    }

    fn attempts(&self) -> Attempts {
        Attempts {
            timeout: self.settings.timeout,
            retries: self.settings.retries,
        }
    }

    async fn call(&mut self, request: &Request, attempts: Attempts) -> Result<Reply, ScpError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => ScpConnection::connect(&self.ip, self.settings.port).await?,
        };
        let result = connection.call(request, attempts).await;
        self.connection = Some(connection);
        result
    }
}
