//! Exit codes of SPEC §6, decided once in `main` from the error chain.
//!
//! Library code returns `anyhow::Error`; the only classification it makes is wrapping
//! usage/configuration problems in [`UsageError`]. Everything else is an input/output
//! failure (exit 3), which is the safe default for a data tool run from cron.

use std::fmt;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a comparison found differences (`diff`, `check` thresholds).
pub const EXIT_DIFFERENCES: i32 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: input or output error.
pub const EXIT_IO: i32 = 3;

/// A usage or configuration error (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Return early with a usage error.
#[macro_export]
macro_rules! bail_usage {
    ($($arg:tt)*) => { return Err($crate::error::usage(format!($($arg)*))) };
}

/// The exit code for a failed command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_IO
    }
}

/// True when the error is a closed stdout (`footfall show | head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    // Polars wraps I/O errors in its own type, so the message is checked as well.
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.to_string().contains("Broken pipe")
    })
}
