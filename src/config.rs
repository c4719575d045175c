//! Configuration, read once from the environment at start-up.
//!
//! | variable | meaning |
//! |---|---|
//! | `STAGEWIRE_TABLE` | name of the registry table (required) |
//! | `AWS_REGION`, credentials, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ... | the AWS SDK's own configuration |

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Name of the variable holding the registry table name.
pub const TABLE_VAR: &str = "STAGEWIRE_TABLE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Registry table name.
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{TABLE_VAR} is not set: it must name the stagewire registry table")]
    MissingTable,
}

impl Config {
    /// Read from a lookup function (the process environment in `main`, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = get(TABLE_VAR)
            .filter(|t| !t.trim().is_empty())
            .ok_or(ConfigError::MissingTable)?;
        Ok(Config { table })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// The AWS SDK configuration the functions use: the SDK's own sources (environment, profile,
/// container or instance role, `AWS_ENDPOINT_URL`), with retries that ride out API Gateway's
/// throttling (`TooManyRequestsException` is retried with exponential backoff and jitter).
pub async fn load_sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`load_sdk_config`], for callers that add settings of their own (the
/// operator CLI's `--profile` and `--region`).
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config())
}

/// The functions' retries: 6 attempts, exponential backoff with jitter from 200 ms to 8 s.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_required() {
        assert_eq!(
            Config::from_lookup(|_| None),
            Err(ConfigError::MissingTable)
        );
        assert_eq!(
            Config::from_lookup(|_| Some("  ".into())),
            Err(ConfigError::MissingTable)
        );
        assert_eq!(
            Config::from_lookup(|k| (k == TABLE_VAR).then(|| "reg".into())),
            Ok(Config {
                table: "reg".into()
            })
        );
    }
}
