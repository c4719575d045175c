//! Exit statuses and failures: what went wrong, about which table, region and endpoint, and the
//! whole cause chain with `--verbose`.

use std::error::Error;

/// Done; nothing to do, or (status, dry runs) every variable in sync.
pub const EXIT_OK: u8 = 0;
/// A failure while running (AWS call, registry, credentials, a refused change).
pub const EXIT_FAILURE: u8 = 1;
/// Something needs attention: drift, or (dry runs) changes pending.
pub const EXIT_PENDING: u8 = 2;
/// Bad arguments or settings (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a command did not run to the end.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or settings.
    Usage(String),
    /// Something failed while running, with the error that caused it (if any).
    Runtime {
        message: String,
        cause: Option<BoxError>,
    },
}

impl Failure {
    /// A failure that is the error itself.
    pub fn from_err(e: impl Error + Send + Sync + 'static) -> Self {
        Failure::Runtime {
            message: e.to_string(),
            cause: Some(Box::new(e)),
        }
    }

    /// A failure explained by `message`, caused by `e`.
    pub fn caused(message: impl Into<String>, e: impl Error + Send + Sync + 'static) -> Self {
        Failure::Runtime {
            message: message.into(),
            cause: Some(Box::new(e)),
        }
    }

    /// A refusal: nothing failed, the change is not made.
    pub fn refused(message: impl Into<String>) -> Self {
        Failure::Runtime {
            message: message.into(),
            cause: None,
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Runtime { .. } => EXIT_FAILURE,
        }
    }

    /// The lines printed on stderr: the message, then the causes it does not already say
    /// (the deepest one only unless `verbose`), then `context` (table, region, endpoint).
    pub fn report(&self, context: Option<&str>, verbose: bool) -> String {
        let (message, cause) = match self {
            Failure::Usage(m) => return format!("error: {m}\n"),
            Failure::Runtime { message, cause } => (message, cause),
        };
        let mut out = format!("error: {message}\n");
        let mut chain: Vec<String> = Vec::new();
        let mut next: Option<&(dyn Error + 'static)> = cause.as_deref().map(|e| e as _);
        while let Some(e) = next {
            chain.push(e.to_string());
            next = e.source();
        }
        let shown: Vec<&String> = if verbose {
            chain.iter().filter(|c| *c != message).collect()
        } else {
            chain
                .last()
                .filter(|c| !message.contains(c.as_str()))
                .into_iter()
                .collect()
        };
        for c in &shown {
            out.push_str(&format!("  caused by: {c}\n"));
        }
        if let Some(context) = context {
            out.push_str(&format!("  ({context})\n"));
        }
        if !verbose && chain.len() > shown.len() + 1 {
            out.push_str("  (--verbose shows the whole cause chain)\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Inner(#[source] std::io::Error);

    fn failure() -> Failure {
        Failure::caused(
            "could not read the registry",
            Outer(Inner(std::io::Error::other("connection refused"))),
        )
    }

    #[test]
    fn the_deepest_cause_is_kept_and_verbose_shows_every_one() {
        let short = failure().report(Some("registry table t"), false);
        assert!(
            short.starts_with("error: could not read the registry\n"),
            "{short}"
        );
        assert!(short.contains("caused by: connection refused"), "{short}");
        assert!(!short.contains("middle"), "{short}");
        assert!(short.contains("(registry table t)"), "{short}");
        assert!(short.contains("--verbose"), "{short}");
        let long = failure().report(None, true);
        for c in ["outer", "middle", "connection refused"] {
            assert!(long.contains(&format!("caused by: {c}")), "{long}");
        }
        assert!(!long.contains("--verbose"), "{long}");
        assert_eq!(Failure::Usage("x".into()).report(None, true), "error: x\n");
    }
}
