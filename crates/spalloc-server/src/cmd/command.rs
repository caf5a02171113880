//! The set of legacy-protocol commands as an enum the compiler checks: its
//! names come from the variants (so the list in error messages can never
//! miss one, as the old hand-kept `COMMANDS` list missed `where_is`), and
//! [`super::dispatch`] must match every variant.

use strum::{EnumIter, EnumString, IntoEnumIterator, IntoStaticStr};

/// One command of the legacy protocol, named as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Command {
    /// `version()`.
    Version,
    /// `create_job(*args, **kwargs)`.
    CreateJob,
    /// `job_keepalive(job_id)`.
    JobKeepalive,
    /// `get_job_state(job_id)`.
    GetJobState,
    /// `get_job_machine_info(job_id)`.
    GetJobMachineInfo,
    /// `power_on_job_boards(job_id)`.
    PowerOnJobBoards,
    /// `power_off_job_boards(job_id)`.
    PowerOffJobBoards,
    /// `destroy_job(job_id, reason=None)`.
    DestroyJob,
    /// `notify_job(job_id=None)`.
    NotifyJob,
    /// `no_notify_job(job_id=None)`.
    NoNotifyJob,
    /// `notify_machine(machine_name=None)`.
    NotifyMachine,
    /// `no_notify_machine(machine_name=None)`.
    NoNotifyMachine,
    /// `list_jobs()`.
    ListJobs,
    /// `list_machines()`.
    ListMachines,
    /// `get_board_position(machine_name, x, y, z)`.
    GetBoardPosition,
    /// `get_board_at_position(machine_name, x, y, z)`.
    GetBoardAtPosition,
    /// `where_is(**kwargs)`.
    WhereIs,
    /// `report_problem(address, x=None, y=None, p=None, description=None)`:
    /// allocserv's, not the Python reference's.
    ReportProblem,
    /// `list_usage(owner=None, since=None, until=None, start=None,
    /// limit=None)`: an extension (see [`super::usage`]).
    ListUsage,
}

impl Command {
    /// The command's wire name.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Looks a command up by its wire name.
    pub fn from_name(name: &str) -> Option<Command> {
        name.parse().ok()
    }

    /// Every command's wire name, in declaration order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Command::iter().map(Command::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_name_round_trips_and_where_is_is_one_of_them() {
        for command in Command::iter() {
            assert_eq!(Command::from_name(command.name()), Some(command));
        }
        assert_eq!(Command::names().count(), 19);
        assert_eq!(Command::from_name("where_is"), Some(Command::WhereIs));
        assert_eq!(Command::from_name("WhereIs"), None);
        assert_eq!(Command::from_name("no_such"), None);
    }
}
