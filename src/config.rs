//! Configuration, read once from the environment at start-up.
//!
//! | variable | meaning |
//! |---|---|
//! | `STAGEWIRE_TABLE` | name of the registry table (required) |
//! | `STAGEWIRE_RESPONSE_HOSTS` | comma-separated hosts (`host` or `host:port`) that may receive custom-resource responses besides CloudFormation's response bucket for the region; empty in production, `127.0.0.1` for the local tests, demo and bench |
//! | `STAGEWIRE_BINDING_AUTHORIZATION` | `ApiTags` (default) or `Open`: which APIs a binding may touch (see docs/security.md) |
//! | `STAGEWIRE_ACCOUNT_ID` | the hub's own account (set by the template), to tell its events from those its member accounts forward; unset: every event is taken as the hub's own |
//! | `STAGEWIRE_SOURCE_ROLES` | comma-separated role ARN patterns (`*` matches any run of characters) that a source's `RoleArn` may name; empty: no source may name a role |
//! | `STAGEWIRE_RECONCILE_QUEUE` | URL of the full reconcile's work queue (SQS): with it, the schedule's full reconcile sends units there and SQS batches are worked; without, the full reconcile runs in one invocation |
//! | `STAGEWIRE_RECONCILE_WORKERS` | the work queue's maximum concurrency (default 1): each invocation paces API Gateway at this share of the account's quota |
//! | `AWS_REGION`, credentials, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ... | the AWS SDK's own configuration |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG` | the functions' log format and level ([`init_tracing`]) |

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Name of the variable holding the registry table name.
pub const TABLE_VAR: &str = "STAGEWIRE_TABLE";
/// Name of the variable holding the extra hosts that may receive responses.
pub const RESPONSE_HOSTS_VAR: &str = "STAGEWIRE_RESPONSE_HOSTS";
/// Name of the variable choosing the authorization rule.
pub const AUTHORIZATION_VAR: &str = "STAGEWIRE_BINDING_AUTHORIZATION";
/// Name of the variable holding the hub's account.
pub const ACCOUNT_VAR: &str = "STAGEWIRE_ACCOUNT_ID";
/// Name of the variable holding the role ARN patterns sources may name.
pub const SOURCE_ROLES_VAR: &str = "STAGEWIRE_SOURCE_ROLES";
/// Name of the variable holding the full reconcile's work queue URL.
pub const QUEUE_VAR: &str = "STAGEWIRE_RECONCILE_QUEUE";
/// Name of the variable holding the work queue's maximum concurrency.
pub const WORKERS_VAR: &str = "STAGEWIRE_RECONCILE_WORKERS";
/// The variables naming the region, in the order [`region_from_env`] reads them.
pub const REGION_VARS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];
/// The variable choosing the log format (`JSON`), set by Lambda's `LoggingConfig`.
pub const LOG_FORMAT_VAR: &str = "AWS_LAMBDA_LOG_FORMAT";
/// The variables naming the log level, in the order [`init_tracing`] reads them.
pub const LOG_LEVEL_VARS: [&str; 2] = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"];

/// Every environment variable this module reads by name (the AWS SDK reads its own besides).
pub const ENV_VARS: &[&str] = &[
    TABLE_VAR,
    RESPONSE_HOSTS_VAR,
    AUTHORIZATION_VAR,
    ACCOUNT_VAR,
    SOURCE_ROLES_VAR,
    QUEUE_VAR,
    WORKERS_VAR,
    REGION_VARS[0],
    REGION_VARS[1],
    LOG_FORMAT_VAR,
    LOG_LEVEL_VARS[0],
    LOG_LEVEL_VARS[1],
];

pub use crate::domain::{Authorization, SourceAccess};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Registry table name.
    pub table: String,
    /// Hosts besides CloudFormation's response bucket that may receive responses.
    pub response_hosts: Vec<String>,
    /// Which APIs a binding may touch.
    pub authorization: Authorization,
    /// The hub's account and the roles sources may name.
    pub sources: SourceAccess,
    /// The full reconcile's work queue (URL).
    pub queue: Option<String>,
    /// How many invocations work the queue at once; each paces API Gateway at its share.
    pub workers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{TABLE_VAR} is not set: it must name the stagewire registry table")]
    MissingTable,
    #[error("{AUTHORIZATION_VAR} is {0:?}: it must be ApiTags or Open")]
    BadAuthorization(String),
    #[error("{WORKERS_VAR} is {0:?}: it must be a whole number from 1 to 1000")]
    BadWorkers(String),
}

impl Config {
    /// Read from a lookup function (the process environment in `main`, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = get(TABLE_VAR)
            .filter(|t| !t.trim().is_empty())
            .ok_or(ConfigError::MissingTable)?;
        let authorization = authorization(&get)?;
        let workers = match get(WORKERS_VAR).as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(w) => w
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError::BadWorkers(w.to_string()))?,
        };
        Ok(Config {
            table,
            response_hosts: response_hosts(&get),
            authorization,
            sources: source_access(&get),
            queue: get(QUEUE_VAR).filter(|q| !q.trim().is_empty()),
            workers,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// `STAGEWIRE_BINDING_AUTHORIZATION`: `ApiTags` when unset.
pub fn authorization(get: &impl Fn(&str) -> Option<String>) -> Result<Authorization, ConfigError> {
    match get(AUTHORIZATION_VAR).as_deref().map(str::trim) {
        None | Some("") | Some("ApiTags") => Ok(Authorization::ApiTags),
        Some("Open") => Ok(Authorization::Open),
        Some(other) => Err(ConfigError::BadAuthorization(other.to_string())),
    }
}

/// [`authorization`] from the process environment (the operator CLI's `status` and `sync`).
pub fn authorization_from_env() -> Result<Authorization, ConfigError> {
    authorization(&|k| std::env::var(k).ok())
}

/// `STAGEWIRE_ACCOUNT_ID` and `STAGEWIRE_SOURCE_ROLES` (split on commas).
pub fn source_access(get: &impl Fn(&str) -> Option<String>) -> SourceAccess {
    SourceAccess {
        account: get(ACCOUNT_VAR)
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty()),
        roles: get(SOURCE_ROLES_VAR)
            .unwrap_or_default()
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
    }
}

/// [`source_access`] from the process environment (the operator CLI's `status` and `sync`).
pub fn source_access_from_env() -> SourceAccess {
    source_access(&|k| std::env::var(k).ok())
}

/// `STAGEWIRE_RESPONSE_HOSTS`, split on commas; read on its own too, so that a function whose
/// configuration is otherwise broken still answers only where it may.
pub fn response_hosts(get: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    get(RESPONSE_HOSTS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

/// [`response_hosts`] from the process environment.
pub fn response_hosts_from_env() -> Vec<String> {
    response_hosts(&|k| std::env::var(k).ok())
}

/// The region the SDK would use from the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`),
/// for a function that could not load its configuration; `None` when neither is set.
pub fn region_from_env() -> Option<String> {
    REGION_VARS
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|r| !r.is_empty()))
}

/// The target of `lambda_runtime`'s TRACE event "raw JSON event received from Lambda", which
/// carries the whole event: for `stage-binding` that includes the pre-signed ResponseURL.
pub const RAW_EVENT_TARGET: &str = "lambda_runtime::layers::api_response";

/// The functions' tracing subscriber: `lambda_runtime`'s default (level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; JSON when `AWS_LAMBDA_LOG_FORMAT` is
/// `JSON`), except that nothing of [`RAW_EVENT_TARGET`] is ever written, whatever the level or
/// `RUST_LOG` directives ask: the raw event would put the ResponseURL in the logs.
pub fn init_tracing() {
    use lambda_runtime::tracing::subscriber::{
        self, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter,
    };
    let format = std::env::var(LOG_FORMAT_VAR).unwrap_or_default();
    let level = std::env::var(LOG_LEVEL_VARS[0])
        .or_else(|_| std::env::var(LOG_LEVEL_VARS[1]))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let env_filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let no_raw_event = subscriber::filter::filter_fn(|meta| !is_raw_event_target(meta.target()));
    let fmt = subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    let registry = subscriber::registry().with(no_raw_event).with(env_filter);
    if format.eq_ignore_ascii_case("json") {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}

/// Whether events of `target` are never written (see [`init_tracing`]).
pub fn is_raw_event_target(target: &str) -> bool {
    target == RAW_EVENT_TARGET || target.starts_with(&format!("{RAW_EVENT_TARGET}::"))
}

/// The AWS SDK configuration the functions use: the SDK's own sources (environment, profile,
/// container or instance role, `AWS_ENDPOINT_URL`), with retries that ride out API Gateway's
/// throttling (`TooManyRequestsException` is retried with exponential backoff and jitter).
///
/// Lambda gives a function its region and credentials in the environment. Taken from there,
/// the SDK builds neither its region nor its credentials provider chain (profile files,
/// container and instance metadata), which is most of the configuration's start-up time; its SDK
/// clients share one HTTP client ([`crate::aws::one_http_client`]).
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = sdk_loader();
    if let Some(region) = region_from_env() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if env_credentials(|k| std::env::var(k).ok()) {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    crate::aws::one_http_client(loader.load().await)
}

/// Whether the environment holds a whole key pair: a key id alone (or an empty one) leaves the
/// credentials to the SDK's provider chain, which reports what it finds missing.
fn env_credentials(var: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|k| var(k).is_some_and(|v| !v.trim().is_empty()))
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
    fn the_raw_event_target_is_recognised() {
        assert!(is_raw_event_target(RAW_EVENT_TARGET));
        assert!(!is_raw_event_target("lambda_runtime::runtime"));
        assert!(!is_raw_event_target("stagewire::cfn"));
    }

    #[test]
    fn only_a_whole_key_pair_is_taken_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(env_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!env_credentials(env(&[("AWS_ACCESS_KEY_ID", "AKIA")])));
        assert!(!env_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!env_credentials(env(&[])));
    }

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
                table: "reg".into(),
                response_hosts: vec![],
                authorization: Authorization::ApiTags,
                sources: SourceAccess::default(),
                queue: None,
                workers: 1,
            })
        );
    }

    #[test]
    fn response_hosts_and_authorization() {
        let env = |k: &str| match k {
            TABLE_VAR => Some("reg".into()),
            RESPONSE_HOSTS_VAR => Some(" 127.0.0.1, localhost:9000 ,".into()),
            AUTHORIZATION_VAR => Some("Open".into()),
            ACCOUNT_VAR => Some(" 111111111111 ".into()),
            SOURCE_ROLES_VAR => Some("arn:aws:iam::*:role/stagewire-source, ,".into()),
            _ => None,
        };
        let c = Config::from_lookup(env).unwrap();
        assert_eq!(
            c.sources,
            SourceAccess {
                account: Some("111111111111".into()),
                roles: vec!["arn:aws:iam::*:role/stagewire-source".into()],
            }
        );
        assert_eq!(c.response_hosts, vec!["127.0.0.1", "localhost:9000"]);
        assert_eq!(c.authorization, Authorization::Open);
        let bad = |k: &str| match k {
            TABLE_VAR => Some("reg".into()),
            AUTHORIZATION_VAR => Some("Everyone".into()),
            _ => None,
        };
        assert!(matches!(
            Config::from_lookup(bad),
            Err(ConfigError::BadAuthorization(_))
        ));
    }

    #[test]
    fn work_queue_and_workers() {
        let env = |workers: &'static str| {
            move |k: &str| match k {
                TABLE_VAR => Some("reg".into()),
                QUEUE_VAR => Some("https://sqs/q".into()),
                WORKERS_VAR => Some(workers.into()),
                _ => None,
            }
        };
        let c = Config::from_lookup(env("4")).unwrap();
        assert_eq!((c.queue.as_deref(), c.workers), (Some("https://sqs/q"), 4));
        for bad in ["0", "four", "1001"] {
            assert_eq!(
                Config::from_lookup(env(bad)),
                Err(ConfigError::BadWorkers(bad.into()))
            );
        }
    }
}
