//! Taking boards out of service and returning them, at run time (issue 16,
//! item 3: the core part; the store and the admin commands come later).
//!
//! A board out of service is handed to no new job. Jobs that could only
//! run with it stay queued, their reason saying the machine is out of
//! service, and start when it returns; jobs holding it keep it until they
//! end. The set is kept in memory only for now: after a restart every board
//! is in service again.

use crate::core::controller::Controller;
use crate::core::coordinates::Board;
use crate::core::job_queue::ServiceError;
use std::collections::BTreeSet;

impl Controller {
    /// Takes a live board of a machine out of service (`in_service =
    /// false`) or returns it, then allocates what now fits; watchers of the
    /// machine are told. Unknown machines and boards are refused and
    /// nothing changes.
    pub fn set_board_in_service(
        &mut self,
        machine: &str,
        board: Board,
        in_service: bool,
        now: f64,
    ) -> Result<(), ServiceError> {
        let placed = self.queue.set_in_service(machine, board, in_service, now)?;
        self.changed_machines.insert(machine.to_owned());
        self.on_placed(placed);
        Ok(())
    }

    /// The boards of a machine out of service (`None`: no such machine).
    pub fn boards_out_of_service(&self, machine: &str) -> Option<&BTreeSet<Board>> {
        self.queue.out_of_service(machine)
    }
}
