//! Exit codes (docs/operations.md), decided once in `main` from the error chain.
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

/// True when the error is a closed stdout (`footfall show | head`): not a failure. A broken
/// pipe anywhere else (a storage or database connection) is an input/output error.
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    use crate::print::{StdoutClosed, STDOUT_CLOSED};
    err.chain().any(|e| {
        e.is::<StdoutClosed>()
            || e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).is_some_and(|i| i.is::<StdoutClosed>())
            // Polars keeps only the message of the I/O error it wraps.
            || e.to_string().contains(STDOUT_CLOSED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_closed_stdout_is_success() {
        let closed = Error::new(ErrorKind::BrokenPipe, crate::print::StdoutClosed);
        assert!(is_stdout_closed(&anyhow::Error::new(closed).context("writing rows")));
        let wrapped = polars::prelude::PolarsError::from(Error::new(ErrorKind::BrokenPipe, crate::print::StdoutClosed));
        assert!(is_stdout_closed(&anyhow::Error::from(wrapped)));
        // A broken connection to storage or a database is a failure (exit 3).
        let net = anyhow::Error::new(Error::new(ErrorKind::BrokenPipe, "Broken pipe (os error 32)"))
            .context("cannot write s3://bucket/out/_state/manifest.json");
        assert!(!is_stdout_closed(&net));
        assert_eq!(exit_code(&net), EXIT_IO);
        assert!(!is_stdout_closed(&anyhow::anyhow!("connection reset: Broken pipe")));
    }
}
