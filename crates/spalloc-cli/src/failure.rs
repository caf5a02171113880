//! How a tool fails: a message for stderr and an exit status.

use std::fmt;

/// A tool's early end, with the reference's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit status.
    pub code: i32,
    /// What to print on stderr first, if anything.
    pub message: Option<String>,
}

impl Failure {
    /// Ends with `code`, printing `message` (the reference's `Terminate`).
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: Some(message.into()),
        }
    }

    /// Ends with `code` and prints nothing.
    pub fn silent(code: i32) -> Failure {
        Failure {
            code,
            message: None,
        }
    }

    /// Prints the message (if any) to stderr and returns the exit status.
    pub fn report(&self) -> i32 {
        if let Some(message) = &self.message {
            eprintln!("{message}");
        }
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{m} (exit {})", self.code),
            None => write!(f, "exit {}", self.code),
        }
    }
}

impl From<spalloc::Error> for Failure {
    /// Server exceptions and communication errors exit 1, as in the
    /// reference's `Script` runner.
    fn from(error: spalloc::Error) -> Failure {
        match error {
            spalloc::Error::ServerException(text) => {
                Failure::new(1, format!("Error from server: {text}"))
            }
            spalloc::Error::IncompatibleVersion { version } => {
                Failure::new(2, format!("Incompatible server version ({version})"))
            }
            other => Failure::new(1, format!("Error communicating with server: {other}")),
        }
    }
}

impl From<std::io::Error> for Failure {
    /// Output errors: a closed pipe (`| head`) ends quietly with 0.
    fn from(error: std::io::Error) -> Failure {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::silent(0)
        } else {
            Failure::new(1, format!("cannot write the output: {error}"))
        }
    }
}
