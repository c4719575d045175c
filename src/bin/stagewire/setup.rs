//! Settings checked before any command runs: the table, the profile, the region, credentials and
//! that the registry table can be reached and exists.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::ProvideCredentials;
use aws_sdk_dynamodb::error::SdkError;
use stagewire::config::TABLE_VAR;

use crate::fail::Failure;
use crate::Global;

/// How long the credential check may take before credentials count as missing.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the commands run: the registry table, the region and the endpoint, for messages.
pub struct Place {
    pub table: String,
    pub region: String,
    pub endpoint: String,
}

impl Place {
    pub fn describe(&self) -> String {
        format!(
            "registry table {}, region {}, endpoint {}",
            self.table, self.region, self.endpoint
        )
    }
}

/// The registry table: `--table` or `$STAGEWIRE_TABLE`.
pub fn table(global: &Global) -> Result<String, Failure> {
    global
        .table
        .clone()
        .or_else(|| std::env::var(TABLE_VAR).ok())
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no registry table: give --table NAME or set {TABLE_VAR}"
            ))
        })
}

/// The SDK configuration: the functions' settings plus `--profile` and `--region`, with the
/// profile, region and credentials checked up front.
pub async fn load_sdk(global: &Global) -> Result<SdkConfig, Failure> {
    let mut loader = stagewire::config::sdk_loader();
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    // A profile asked for by name must exist; one from AWS_PROFILE is checked when the SDK
    // finds no region or credentials (other settings may not need it).
    if let Some(profile) = &global.profile {
        profile_exists(profile)?;
    }
    let env_profile = || match std::env::var("AWS_PROFILE") {
        Ok(p) if p != "default" => profile_exists(&p),
        _ => Ok(()),
    };
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        env_profile()?;
        return Err(Failure::Usage(
            "no AWS region: give --region, set AWS_REGION, or use a profile with a region".into(),
        ));
    }
    const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE (or give --profile), \
set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is available";
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| Failure::refused(NO_CREDENTIALS))?;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(sdk),
        Ok(Err(e)) => {
            env_profile()?;
            Err(Failure::caused(NO_CREDENTIALS, e))
        }
        Err(_) => Err(Failure::refused(format!(
            "{NO_CREDENTIALS} (none within {} s)",
            CREDENTIALS_TIMEOUT.as_secs()
        ))),
    }
}

/// The AWS config and credentials files, as the SDK finds them.
fn profile_files() -> [PathBuf; 2] {
    let home = std::env::var("HOME").unwrap_or_default();
    let file = |var: &str, default: &str| {
        std::env::var(var)
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(&home).join(".aws").join(default))
    };
    [
        file("AWS_CONFIG_FILE", "config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    ]
}

/// Whether a section `[profile NAME]` (config) or `[NAME]` (either file) exists.
fn profile_exists(name: &str) -> Result<(), Failure> {
    let files = profile_files();
    let found = files.iter().any(|path| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines().any(|line| {
                let Some(section) = line.trim().strip_prefix('[') else {
                    return false;
                };
                let section = section.trim_end_matches(']').trim();
                section == name || section.strip_prefix("profile ").map(str::trim) == Some(name)
            })
        })
    });
    if found {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "AWS profile {name} was not found in {} or {}: give the name of a profile defined there",
        files[0].display(),
        files[1].display()
    )))
}

/// Where the SDK sends DynamoDB calls.
pub fn place(sdk: &SdkConfig, table: &str) -> Place {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let endpoint = sdk
        .endpoint_url()
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://dynamodb.{region}.amazonaws.com"));
    Place {
        table: table.to_string(),
        region,
        endpoint,
    }
}

/// Check that the registry table exists (one DescribeTable call, tried twice at most).
pub async fn check_table(sdk: &SdkConfig, place: &Place) -> Result<(), Failure> {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let Err(e) = client
        .describe_table()
        .table_name(&place.table)
        .send()
        .await
    else {
        return Ok(());
    };
    let (table, region, endpoint) = (&place.table, &place.region, &place.endpoint);
    let message = match &e {
        SdkError::ServiceError(s) if s.err().is_resource_not_found_exception() => format!(
            "the registry table {table} does not exist in region {region} (endpoint {endpoint}): \
give --table or set {TABLE_VAR} to the table of stagewire's stack (its output RegistryTableName)"
        ),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
            "could not reach DynamoDB at {endpoint} (region {region}) to read the registry table \
{table}: check the endpoint (AWS_ENDPOINT_URL) and the network"
        ),
        _ => format!("could not read the registry table {table} in region {region} at {endpoint}"),
    };
    Err(Failure::caused(message, e))
}
