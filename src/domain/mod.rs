//! The domain: what a binding is, where its values come from, and the rules API Gateway puts on
//! stage names, variable names and values. Nothing here knows about the AWS SDK.
//!
//! [`source`] holds the kinds of sources and their registry keys; [`link`] what is known of
//! a VPC link.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub mod access;
pub mod link;
pub mod rights;
pub mod source;

pub use access::{SourceAccess, Untrusted};
pub use link::{LinkFamily, LinkStatus, VpcLink};
pub use rights::Authorization;
pub use source::{Place, Source, SourceKey, SourceKind, SOURCE_KINDS};

/// Most variables API Gateway accepts on one stage.
pub const MAX_VARIABLES_PER_STAGE: usize = 100;
/// Longest stage variable name.
pub const MAX_VARIABLE_NAME_LEN: usize = 64;
/// Longest stage variable value.
pub const MAX_VARIABLE_VALUE_LEN: usize = 512;
/// Longest stage name.
pub const MAX_STAGE_NAME_LEN: usize = 128;
/// The HTTP API stage served at the API's root (SAM's `HttpApi` and most HTTP APIs use it).
pub const DEFAULT_STAGE: &str = "$default";

/// Which API Gateway API family a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// A REST API (API Gateway v1), `RestApiId`.
    Rest,
    /// An HTTP API (API Gateway v2), `HttpApiId`.
    Http,
}

impl ApiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Rest => "rest",
            ApiKind::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rest" => Some(ApiKind::Rest),
            "http" => Some(ApiKind::Http),
            _ => None,
        }
    }
}

/// One stage of one API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageRef {
    pub kind: ApiKind,
    pub api_id: String,
    pub stage: String,
}

impl StageRef {
    pub fn new(kind: ApiKind, api_id: impl Into<String>, stage: impl Into<String>) -> Self {
        StageRef {
            kind,
            api_id: api_id.into(),
            stage: stage.into(),
        }
    }

    /// The public URL of the stage.
    pub fn invoke_url(&self, region: &str) -> String {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let base = format!("https://{}.execute-api.{region}.{suffix}", self.api_id);
        if self.kind == ApiKind::Http && self.stage == DEFAULT_STAGE {
            base
        } else {
            format!("{base}/{}", self.stage)
        }
    }
}

impl fmt::Display for StageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.kind {
            ApiKind::Rest => "REST API",
            ApiKind::Http => "HTTP API",
        };
        write!(f, "stage {} of {} {}", self.stage, family, self.api_id)
    }
}

/// Who owns a binding: one `Custom::StageBinding` resource of one stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub stack_id: String,
    pub logical_id: String,
    pub physical_id: String,
}

impl Owner {
    /// Key shared by every physical incarnation of the same resource.
    pub fn key(&self) -> String {
        owner_key(&self.stack_id, &self.logical_id)
    }
}

pub fn owner_key(stack_id: &str, logical_id: &str) -> String {
    format!("{stack_id}#{logical_id}")
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in stack {}", self.logical_id, self.stack_id)
    }
}

/// What one `Custom::StageBinding` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSpec {
    pub stage: StageRef,
    pub create_stage: bool,
    pub variables: BTreeMap<String, Source>,
}

impl BindingSpec {
    /// Deterministic physical id: stable while the API and stage stay the same.
    /// [`stage_of_physical_id`] reads the stage back.
    pub fn physical_id(&self, logical_id: &str) -> String {
        format!(
            "stagewire:{}:{}:{}:{}",
            self.stage.kind.as_str(),
            self.stage.api_id,
            self.stage.stage,
            logical_id
        )
    }
}

/// The stage a physical id made by [`BindingSpec::physical_id`] names.
pub fn stage_of_physical_id(id: &str) -> Option<StageRef> {
    let mut parts = id.splitn(5, ':');
    if parts.next()? != "stagewire" {
        return None;
    }
    let kind = ApiKind::parse(parts.next()?)?;
    let api = parts.next()?;
    let stage = parts.next()?;
    parts.next()?;
    (!api.is_empty() && validate_stage_name(kind, stage).is_ok())
        .then(|| StageRef::new(kind, api, stage))
}

/// A rule of API Gateway that an input breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("stage name {0:?} is invalid: use 1 to 128 characters among A-Z a-z 0-9 _ - (or $default for an HTTP API)")]
    StageName(String),
    #[error("stage variable name {0:?} is invalid: use 1 to 64 characters among A-Z a-z 0-9 _")]
    VariableName(String),
    #[error(
        "value {value:?} of stage variable {variable} is invalid: use 1 to 512 characters among A-Z a-z 0-9 - . _ ~ : / ? # & = ,"
    )]
    VariableValue { variable: String, value: String },
    #[error("{count} stage variables on {stage}: API Gateway allows at most 100 per stage")]
    TooManyVariables { stage: String, count: usize },
}

pub fn validate_stage_name(kind: ApiKind, name: &str) -> Result<(), ValidationError> {
    let ok = (kind == ApiKind::Http && name == DEFAULT_STAGE)
        || (!name.is_empty()
            && name.len() <= MAX_STAGE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::StageName(name.to_string()))
    }
}

pub fn validate_variable_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_VARIABLE_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::VariableName(name.to_string()))
    }
}

pub fn validate_variable_value(variable: &str, value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_VARIABLE_VALUE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::VariableValue {
            variable: variable.to_string(),
            value: value.to_string(),
        })
    }
}

pub fn validate_variable_count(stage: &StageRef, count: usize) -> Result<(), ValidationError> {
    if count > MAX_VARIABLES_PER_STAGE {
        Err(ValidationError::TooManyVariables {
            stage: stage.to_string(),
            count,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names() {
        assert!(validate_stage_name(ApiKind::Rest, "prod").is_ok());
        assert!(validate_stage_name(ApiKind::Rest, "dev_2-x").is_ok());
        assert!(validate_stage_name(ApiKind::Rest, &"a".repeat(128)).is_ok());
        assert!(validate_stage_name(ApiKind::Rest, &"a".repeat(129)).is_err());
        assert!(validate_stage_name(ApiKind::Rest, "").is_err());
        assert!(validate_stage_name(ApiKind::Rest, "pr od").is_err());
        assert!(validate_stage_name(ApiKind::Rest, "prod.1").is_err());
        assert!(validate_stage_name(ApiKind::Http, "$default").is_ok());
        assert!(validate_stage_name(ApiKind::Rest, "$default").is_err());
        assert!(validate_stage_name(ApiKind::Http, "$other").is_err());
    }

    #[test]
    fn the_default_stage_is_served_at_the_root() {
        let default = StageRef::new(ApiKind::Http, "h1", DEFAULT_STAGE);
        assert_eq!(
            default.invoke_url("us-east-1"),
            "https://h1.execute-api.us-east-1.amazonaws.com"
        );
        let spec = BindingSpec {
            stage: default.clone(),
            create_stage: true,
            variables: Default::default(),
        };
        assert_eq!(stage_of_physical_id(&spec.physical_id("B")), Some(default));
        assert_eq!(
            StageRef::new(ApiKind::Rest, "r1", "prod").invoke_url("cn-north-1"),
            "https://r1.execute-api.cn-north-1.amazonaws.com.cn/prod"
        );
    }

    #[test]
    fn variable_names() {
        assert!(validate_variable_name("helloworldElb").is_ok());
        assert!(validate_variable_name(&"v".repeat(64)).is_ok());
        assert!(validate_variable_name(&"v".repeat(65)).is_err());
        assert!(validate_variable_name("hello-world").is_err());
        assert!(validate_variable_name("").is_err());
    }

    #[test]
    fn variable_values() {
        assert!(validate_variable_value("v", "my-elb-1.us-east-1.elb.amazonaws.com").is_ok());
        assert!(validate_variable_value("v", "a:b/c?d#e&f=g,h~i").is_ok());
        assert!(validate_variable_value("v", &"x".repeat(512)).is_ok());
        assert!(validate_variable_value("v", &"x".repeat(513)).is_err());
        assert!(validate_variable_value("v", "has space").is_err());
        assert!(validate_variable_value("v", "").is_err());
        let err = validate_variable_value("banner", "a b").unwrap_err();
        assert!(err.to_string().contains("banner"), "{err}");
    }

    #[test]
    fn variable_count() {
        let stage = StageRef::new(ApiKind::Rest, "abc", "prod");
        assert!(validate_variable_count(&stage, 100).is_ok());
        let err = validate_variable_count(&stage, 101).unwrap_err();
        assert!(err.to_string().contains("101"));
    }

    #[test]
    fn physical_id_is_stable_and_names_the_stage() {
        let spec = BindingSpec {
            stage: StageRef::new(ApiKind::Rest, "abc123", "prod"),
            create_stage: true,
            variables: BTreeMap::new(),
        };
        assert_eq!(
            spec.physical_id("HelloworldProdBinding"),
            "stagewire:rest:abc123:prod:HelloworldProdBinding"
        );
    }

    #[test]
    fn physical_ids_name_their_stage() {
        let spec = BindingSpec {
            stage: StageRef::new(ApiKind::Http, "h77", "prod"),
            create_stage: true,
            variables: BTreeMap::new(),
        };
        assert_eq!(
            stage_of_physical_id(&spec.physical_id("Binding")),
            Some(spec.stage.clone())
        );
        assert_eq!(stage_of_physical_id("stagewire:failed:req-1"), None);
        assert_eq!(stage_of_physical_id("something-else"), None);
        assert_eq!(stage_of_physical_id("stagewire:rest:a:bad stage:L"), None);
    }

    #[test]
    fn invoke_url() {
        let s = StageRef::new(ApiKind::Rest, "abc123", "prod");
        assert_eq!(
            s.invoke_url("us-east-1"),
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
        );
    }
}
