//! The ResponseURL: a credential that is never printed.

use std::fmt;

/// The pre-signed S3 URL CloudFormation waits on. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseUrl(String);

impl ResponseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        ResponseUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Remove the URL, and its query string on its own, from a text.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "<ResponseURL>");
        if let Some((_, query)) = self.0.split_once('?') {
            if !query.is_empty() {
                out = out.replace(query, "<redacted>");
            }
        }
        out
    }
}

impl fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseUrl(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_url_never_printed() {
        let url = ResponseUrl::new("https://bucket.s3.amazonaws.com/x?X-Amz-Signature=SECRET");
        assert_eq!(format!("{url:?}"), "ResponseUrl(<redacted>)");
        let text = "failed for https://bucket.s3.amazonaws.com/x?X-Amz-Signature=SECRET and X-Amz-Signature=SECRET";
        let scrubbed = url.scrub(text);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
    }
}
