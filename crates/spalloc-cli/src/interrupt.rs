//! Ctrl-C handling, and SIGTERM and SIGHUP handled the same way.
//!
//! SIGTERM (a batch system's `scancel`, `kill`) and SIGHUP (a closed
//! terminal or SSH session) are treated as Ctrl-C, so that a waiting or
//! running `spalloc` still destroys its job and removes its temporary CSV
//! (the reference dies there and leaves both behind).
//!
//! Outside the places where the reference handles Ctrl-C, the tools exit at
//! once with status 130 (the reference prints a Python traceback there).
//! Inside an [`InterruptibleSection`] the interrupt is only recorded, and the
//! waiting loop, which polls [`InterruptibleSection::take_interrupt`] between short waits, decides
//! what to do (destroy the job, exit 0, exit 7, ...).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SECTIONS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// The exit status for an unhandled Ctrl-C, as a shell reports SIGINT.
pub const EXIT_ON_INTERRUPT: i32 = 130;

/// Installs the handler of Ctrl-C, SIGTERM and SIGHUP (once per process).
pub fn install_handler() {
    INSTALL.call_once(|| {
        let result = ctrlc::set_handler(|| {
            if SECTIONS.load(Ordering::SeqCst) > 0 {
                INTERRUPTED.store(true, Ordering::SeqCst);
            } else {
                std::process::exit(EXIT_ON_INTERRUPT);
            }
        });
        if let Err(e) = result {
            eprintln!("warning: cannot handle Ctrl-C: {e}");
        }
    });
}

/// While alive, Ctrl-C is recorded instead of ending the process.
#[derive(Debug)]
pub struct InterruptibleSection(());

impl InterruptibleSection {
    /// Starts recording Ctrl-C (and installs the handler if needed).
    pub fn enter() -> InterruptibleSection {
        install_handler();
        SECTIONS.fetch_add(1, Ordering::SeqCst);
        InterruptibleSection(())
    }

    /// Whether Ctrl-C was pressed since the last call; clears the record.
    pub fn take_interrupt(&self) -> bool {
        INTERRUPTED.swap(false, Ordering::SeqCst)
    }
}

impl Drop for InterruptibleSection {
    fn drop(&mut self) {
        SECTIONS.fetch_sub(1, Ordering::SeqCst);
    }
}
