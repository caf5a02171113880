//! A tool running in the background, with its output streams on pipes or on
//! a pseudo-terminal, that is killed if the test ends early.

use super::transcript::{Transcript, PATIENCE};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`Running::wait_exit`] waits, after the tool exited, for its
/// pipes to be read to the end.
const PIPE_DRAIN: Duration = Duration::from_secs(5);

/// Which of the tool's standard streams are the terminal; the others are
/// pipes (stdin: `/dev/null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnTerminal {
    /// stdin is the terminal.
    pub stdin: bool,
    /// stdout is the terminal.
    pub stdout: bool,
    /// stderr is the terminal.
    pub stderr: bool,
}

impl OnTerminal {
    /// All three streams on the terminal, as in an interactive shell.
    pub const ALL: OnTerminal = OnTerminal {
        stdin: true,
        stdout: true,
        stderr: true,
    };
}

/// A tool running in the background.
#[derive(Debug)]
pub struct Running {
    child: Child,
    master: Option<File>,
    /// What the terminal showed, when any stream is on one.
    screen: Option<Transcript>,
    /// stdout, when it is a pipe.
    stdout: Option<Transcript>,
    /// stderr, when it is a pipe.
    stderr: Option<Transcript>,
}

impl Running {
    /// Starts `command` with stdout and stderr on pipes and stdin empty.
    pub fn piped(command: &mut Command) -> Running {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("tool starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Running {
            child,
            master: None,
            screen: None,
            stdout: Some(Transcript::capture("stdout", stdout)),
            stderr: Some(Transcript::capture("stderr", stderr)),
        }
    }

    /// Starts `command` in a new session whose controlling terminal is a new
    /// pseudo-terminal, with the streams chosen by `on` attached to it, so
    /// that Ctrl-C typed on it reaches the tool as from a shell.
    pub fn on_terminal(command: &mut Command, on: OnTerminal) -> Running {
        Running::on_terminal_sized(command, on, 80)
    }

    /// [`Running::on_terminal`] on a terminal `columns` wide (24 rows).
    pub fn on_terminal_sized(command: &mut Command, on: OnTerminal, columns: u16) -> Running {
        let (master, slave) = open_pty(columns);
        let slave_fd: RawFd = slave.as_raw_fd();
        let attach = |wanted: bool, otherwise: fn() -> Stdio| -> Stdio {
            if wanted {
                Stdio::from(slave.try_clone().expect("dup the terminal"))
            } else {
                otherwise()
            }
        };
        command
            .stdin(attach(on.stdin, Stdio::null))
            .stdout(attach(on.stdout, Stdio::piped))
            .stderr(attach(on.stderr, Stdio::piped));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) run between
        // fork and exec; `slave_fd` stays open in the child until exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("tool starts on a terminal");
        // Only the tool may hold the terminal's slave side now (the command
        // keeps its stdio until changed or dropped), so that the master
        // reports the end once the tool exits.
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        drop(slave);
        let reader = master.try_clone().expect("dup the terminal master");
        let stdout = child
            .stdout
            .take()
            .map(|s| Transcript::capture("stdout", s));
        let stderr = child
            .stderr
            .take()
            .map(|s| Transcript::capture("stderr", s));
        Running {
            child,
            master: Some(master),
            screen: Some(Transcript::capture("terminal", reader)),
            stdout,
            stderr,
        }
    }

    /// What the terminal showed (the tool must run on one).
    pub fn screen(&self) -> &Transcript {
        self.screen.as_ref().expect("the tool runs on a terminal")
    }

    /// The piped stdout (stdout must not be the terminal).
    pub fn stdout(&self) -> &Transcript {
        self.stdout.as_ref().expect("stdout is a pipe")
    }

    /// The piped stderr (stderr must not be the terminal).
    pub fn stderr(&self) -> &Transcript {
        self.stderr.as_ref().expect("stderr is a pipe")
    }

    /// The piped stderr's text so far, or `""` when stderr is the terminal.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .as_ref()
            .map(Transcript::text)
            .unwrap_or_default()
    }

    /// Types `bytes` on the terminal (`"\x03"` is Ctrl-C).
    pub fn type_keys(&mut self, bytes: &[u8]) {
        let master = self.master.as_mut().expect("the tool runs on a terminal");
        master.write_all(bytes).expect("write to the terminal");
        master.flush().expect("flush the terminal");
    }

    /// Sends SIGINT to the tool, as `kill -INT` would.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    /// Sends `signal` to the tool, as `kill` would.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: plain system call on our own child's pid.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill -{signal} {pid}");
    }

    /// Waits (at most [`PATIENCE`]) for the tool to exit; its exit status,
    /// or 128 + the signal number if a signal ended it. Once it has exited,
    /// also waits (briefly) for the capturing threads to read the last of its
    /// piped output, so that [`Running::stderr_text`] then holds all of it.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the tool") {
                for pipe in [&self.stdout, &self.stderr].into_iter().flatten() {
                    // A grandchild may hold the pipe open: do not wait for it long.
                    pipe.wait_for_end_within(PIPE_DRAIN);
                }
                return exit_code(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the tool did not exit within {PATIENCE:?}; terminal: {:?}; stdout: {:?}; stderr: {:?}",
                    self.screen.as_ref().map(Transcript::text),
                    self.stdout.as_ref().map(Transcript::text),
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The shell's view of an exit status: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Opens a new `columns`×24 pseudo-terminal with the system's default modes
/// (echo, canonical input, Ctrl-C as SIGINT, `\n` shown as `\r\n`); returns
/// (master, slave), both close-on-exec.
fn open_pty(columns: u16) -> (File, OwnedFd) {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: 24,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into our locals; no name buffer
    // or termios is passed.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, slave] {
        // SAFETY: fcntl on descriptors we just opened and own.
        let flagged = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(flagged, 0, "FD_CLOEXEC");
    }
    // SAFETY: both descriptors are open and owned by nothing else.
    unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}
