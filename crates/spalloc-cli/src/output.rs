//! Writing to stdout without panicking on a closed pipe.

use crate::failure::Failure;
use std::io::Write;

/// Writes `text` as is to stdout and flushes.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes `text` and a newline to stdout.
pub fn print_line(text: &str) -> Result<(), Failure> {
    write_stdout(&format!("{text}\n"))
}

/// One line of compact JSON, for `--json`.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::new(1, format!("cannot encode the JSON output: {e}")))?;
    print_line(&text)
}
