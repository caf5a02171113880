//! Running the `-c` command through `/bin/sh -c` and returning its status.

use crate::interrupt::InterruptibleSection;
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// Runs `line` with the shell and waits for it. Ctrl-C (which the shell also
/// receives from the terminal) sends it SIGTERM, as the reference does, and
/// the wait goes on.
pub fn run_shell_command(line: &str, section: &InterruptibleSection) -> std::io::Result<i32> {
    let mut child = Command::new("/bin/sh").arg("-c").arg(line).spawn()?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(exit_code(status));
        }
        if section.take_interrupt() {
            terminate(child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; the PID is our
        // own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
fn terminate(_pid: u32) {}

/// The status as the reference exits with it: the code, or for a death by
/// signal N, 256 - N (Python's `sys.exit(-N)`).
pub fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 256 - signal;
        }
    }
    1
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals() {
        let section = InterruptibleSection::enter();
        assert_eq!(run_shell_command("exit 3", &section).ok(), Some(3));
        assert_eq!(
            run_shell_command("kill -TERM $$", &section).ok(),
            Some(256 - 15)
        );
    }
}
