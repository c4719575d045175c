//! The error type shared by every devkit module.

use std::path::PathBuf;
use std::time::Duration;

/// A boxed error from the AWS SDK (or any other library), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while setting up or driving the test bench.
#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    /// An operating-system level failure (sockets, processes, files).
    #[error("I/O error while {context}")]
    Io {
        /// What the bench was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP exchange with a local server failed.
    #[error("HTTP error while {context}")]
    Http {
        /// What the bench was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: hyper::Error,
    },
    /// The moto server could not be started or did not answer in time.
    #[error("moto server: {0}")]
    Moto(String),
    /// `template.yaml` is not valid YAML.
    #[error("cannot parse {path}")]
    Yaml {
        /// The template file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_yaml::Error,
    },
    /// `template.yaml` does not hold a usable table definition.
    #[error("{path}: {message}")]
    Template {
        /// The template file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An AWS SDK call (or building its input) failed.
    #[error("AWS call {operation} failed")]
    Aws {
        /// The operation name.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Something did not happen within the allowed time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the bench waited.
        after: Duration,
    },
    /// A caller passed an argument the bench cannot use.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An answer lacked something the bench relies on.
    #[error("{0}")]
    Unexpected(String),
    /// A function binary did not poll its Runtime API in time.
    #[error("{} did not poll the Runtime API within {after:?}; output:\n{}", binary.display(), output.join("\n"))]
    NotStarted {
        /// The binary.
        binary: PathBuf,
        /// How long the bench waited.
        after: Duration,
        /// Everything the process printed.
        output: Vec<String>,
    },
}

impl DevkitError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DevkitError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn http(context: impl Into<String>, source: hyper::Error) -> Self {
        DevkitError::Http {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn aws<E>(operation: &'static str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        DevkitError::Aws {
            operation,
            source: Box::new(source),
        }
    }
}

/// Formats an error with all its causes, for messages; a cause whose text already ends the
/// message (an error that displays its source) is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Shows(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Hides(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn chains_name_each_cause_once() {
        assert_eq!(error_chain(&Hides(Inner)), "outer: inner");
        assert_eq!(error_chain(&Shows(Inner)), "outer: inner");
    }
}
