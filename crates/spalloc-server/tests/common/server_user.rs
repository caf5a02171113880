//! The server binary run as a user that file permissions apply to, for
//! tests of permission faults.
//!
//! Root ignores file permissions, and sessions and CI run the tests as
//! root: there the server is started through util-linux's `setpriv` as
//! uid and gid 65534 (`nobody`, no supplementary groups; leaving root also
//! drops every capability), in directories handed to that user. Run as
//! any other user, the tests start the server directly, as themselves. If
//! neither is possible the tests fail saying why: a permission test that
//! runs as root proves nothing.

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `nobody`'s uid and gid on Debian (and most systems).
const NOBODY: u32 = 65534;

/// How to start the server as a user that permissions apply to.
#[derive(Debug)]
pub struct ServerUser {
    /// `Some(uid)` when the tests run as root and the server goes through
    /// `setpriv` as that uid (and gid).
    setpriv_as: Option<u32>,
    /// The binary to run.
    binary: PathBuf,
}

impl ServerUser {
    /// The one for this test process (found, and checked, once).
    pub fn get() -> &'static ServerUser {
        static USER: OnceLock<ServerUser> = OnceLock::new();
        USER.get_or_init(ServerUser::find)
    }

    fn find() -> ServerUser {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_spalloc-server"));
        if !rustix::process::geteuid().is_root() {
            return ServerUser {
                setpriv_as: None,
                binary: built,
            };
        }
        match Command::new("setpriv").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "these tests run as root, which ignores file permissions, so they start the \
                 server as uid {NOBODY} with util-linux's setpriv, which cannot be run here \
                 ({other:?}); install util-linux (Debian: apt-get install util-linux)"
            ),
        }
        // setpriv changes user just before it runs the binary, so cargo's
        // target directory may be one only root may enter (such as /root).
        let user = ServerUser {
            setpriv_as: Some(NOBODY),
            binary: built,
        };
        let out = user.command().arg("--version").output();
        assert!(
            out.as_ref().is_ok_and(|out| out.status.success()),
            "uid {NOBODY} cannot run {} through setpriv: {out:?}",
            user.binary.display()
        );
        user
    }

    /// `spalloc-server`, to be run as this user (add its arguments).
    pub fn command(&self) -> Command {
        self.run(&self.binary)
    }

    /// `program`, to be run as this user (add its arguments).
    pub fn run(&self, program: &Path) -> Command {
        match self.setpriv_as {
            Some(id) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={id}"))
                    .arg(format!("--regid={id}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// `command` run by bash after `prelude` (such as `ulimit -S -f 100`):
    /// limits set there are inherited by the server.
    pub fn in_shell(command: &Command, prelude: &str) -> Command {
        let mut shell = Command::new("bash");
        shell
            .arg("-c")
            .arg(format!("{prelude}; exec \"$@\""))
            .arg("bash")
            .arg(command.get_program())
            .args(command.get_args());
        shell
    }

    /// A fresh directory in the temp directory, owned by this user,
    /// readable by everyone.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spalloc-perm-{name}-{}", std::process::id()));
        remove_dir(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        set_mode(&dir, 0o755);
        self.give(&dir);
        dir
    }

    /// Makes this user the owner of `path` (nothing to do when the server
    /// runs as the tests' own user).
    pub fn give(&self, path: &Path) {
        if let Some(id) = self.setpriv_as {
            chown(path, Some(id), Some(id))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    /// Whether the server runs as another user than the tests (root).
    pub fn is_another_user(&self) -> bool {
        self.setpriv_as.is_some()
    }
}

/// Sets `path`'s permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Removes a test directory, first making every directory in it writable
/// again (a failed test may leave a read-only one behind).
pub fn remove_dir(dir: &Path) {
    if dir.exists() {
        make_writable(dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Gives `dir` and every directory below it mode 0755.
fn make_writable(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}
