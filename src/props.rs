//! Decoding `Custom::StageBinding` properties into a [`BindingSpec`].
//!
//! CloudFormation passes every scalar as a string (`"true"`, `"300"`), so booleans and numbers are
//! accepted in both forms. Unknown properties are rejected with their names, as CloudFormation
//! does for its own resource types, so that a typo cannot silently drop a variable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::binding::INVOKE_URL;
use crate::domain::source::{self, FieldType, FieldValue, Fields};
use crate::domain::{
    validate_stage_name, validate_variable_count, validate_variable_name, validate_variable_value,
    ApiKind, BindingSpec, Source, StageRef, ValidationError,
};

/// Every top-level property of `Custom::StageBinding`; any other is refused by name. The keys of
/// each source under `Variables` are in [`source::SOURCE_KINDS`].
pub const PROPERTIES: &[&str] = &[
    "ServiceToken",
    "ServiceTimeout",
    "RestApiId",
    "HttpApiId",
    "StageName",
    "CreateStage",
    "Variables",
    "WaitForHealthyTargets",
];

/// Why a set of properties cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertiesError {
    #[error("ResourceProperties must be an object")]
    NotAnObject,
    #[error("property {0} is required")]
    Missing(&'static str),
    #[error("property {name} must be {expected}, got {got}")]
    WrongType {
        name: String,
        expected: &'static str,
        got: String,
    },
    #[error("give exactly one of RestApiId and HttpApiId")]
    ApiId,
    #[error("unsupported property {name} (supported: {supported})")]
    Unsupported { name: String, supported: String },
    #[error("Variables must name at least one stage variable")]
    NoVariables,
    #[error("variable {0}: give exactly one source: {kinds}", kinds = source::readable_kinds())]
    Source(String),
    #[error(
        "variable name {0} is reserved: Fn::GetAtt {0} answers the stage URL; give the variable another name"
    )]
    Reserved(String),
    #[error(
        "{path}: give the source of one load balancer: {kinds}",
        kinds = source::readable_wrappable_kinds()
    )]
    NotALoadBalancer { path: String },
    #[error("Variables.{variable}: {problem}")]
    Place { variable: String, problem: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn string(name: &str, v: &Value) -> Result<String, PropertiesError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(PropertiesError::WrongType {
            name: name.to_string(),
            expected: "a non-empty string",
            got: match other {
                Value::String(_) => "an empty string".into(),
                o => type_name(o),
            },
        }),
    }
}

fn boolean(name: &str, v: &Value) -> Result<bool, PropertiesError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(PropertiesError::WrongType {
            name: name.to_string(),
            expected: "true or false",
            got: match other {
                Value::String(s) => format!("{s:?}"),
                o => type_name(o),
            },
        }),
    }
}

fn unsigned(name: &str, v: &Value, max: u64) -> Result<u64, PropertiesError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n <= max => Ok(n),
        _ => Err(PropertiesError::WrongType {
            name: name.to_string(),
            expected: "a whole number",
            got: match v {
                Value::String(s) => format!("{s:?}"),
                o => o.to_string(),
            },
        }),
    }
}

fn check_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), PropertiesError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(PropertiesError::Unsupported {
                name: format!("{prefix}{key}"),
                supported: allowed.join(", "),
            });
        }
    }
    Ok(())
}

/// The properties of a binding, decoded and validated once: the spec and the settings of its
/// lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub spec: BindingSpec,
    /// `ServiceTimeout` (CloudFormation allows 1 to 3600 seconds), when given.
    pub service_timeout: Option<Duration>,
    /// `WaitForHealthyTargets` (default true): whether a switch to a load balancer without a
    /// healthy target waits for one ([`crate::wait`]).
    pub wait_for_healthy_targets: bool,
}

/// `ServiceTimeout`: whole seconds from 1 to 3600, as CloudFormation allows.
fn service_timeout(v: &Value) -> Result<Duration, PropertiesError> {
    match unsigned("ServiceTimeout", v, 3600)? {
        0 => Err(PropertiesError::WrongType {
            name: "ServiceTimeout".into(),
            expected: "a whole number of seconds from 1 to 3600",
            got: "0".into(),
        }),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// Decode and validate properties.
pub fn parse(props: &Value) -> Result<Properties, PropertiesError> {
    let obj = props.as_object().ok_or(PropertiesError::NotAnObject)?;
    check_keys(obj, PROPERTIES, "")?;
    let service_timeout = obj.get("ServiceTimeout").map(service_timeout).transpose()?;
    let wait_for_healthy_targets = match obj.get("WaitForHealthyTargets") {
        Some(v) => boolean("WaitForHealthyTargets", v)?,
        None => true,
    };
    Ok(Properties {
        spec: spec(obj)?,
        service_timeout,
        wait_for_healthy_targets,
    })
}

fn spec(obj: &Map<String, Value>) -> Result<BindingSpec, PropertiesError> {
    let kind_and_id = match (obj.get("RestApiId"), obj.get("HttpApiId")) {
        (Some(id), None) => (ApiKind::Rest, string("RestApiId", id)?),
        (None, Some(id)) => (ApiKind::Http, string("HttpApiId", id)?),
        _ => return Err(PropertiesError::ApiId),
    };
    let stage_name = string(
        "StageName",
        obj.get("StageName")
            .ok_or(PropertiesError::Missing("StageName"))?,
    )?;
    validate_stage_name(kind_and_id.0, &stage_name)?;
    let create_stage = match obj.get("CreateStage") {
        Some(v) => boolean("CreateStage", v)?,
        None => true,
    };
    let stage = StageRef::new(kind_and_id.0, kind_and_id.1, stage_name);

    let vars = match obj.get("Variables") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(PropertiesError::WrongType {
                name: "Variables".into(),
                expected: "an object of variable name to source",
                got: type_name(other),
            })
        }
        None => return Err(PropertiesError::Missing("Variables")),
    };
    if vars.is_empty() {
        return Err(PropertiesError::NoVariables);
    }
    validate_variable_count(&stage, vars.len())?;
    let mut variables = BTreeMap::new();
    for (name, source) in vars {
        validate_variable_name(name)?;
        if name == INVOKE_URL {
            return Err(PropertiesError::Reserved(name.clone()));
        }
        variables.insert(name.clone(), parse_source(name, source)?);
    }
    Ok(BindingSpec {
        stage,
        create_stage,
        variables,
    })
}

fn parse_source(variable: &str, v: &Value) -> Result<Source, PropertiesError> {
    parse_source_at(variable, &format!("Variables.{variable}"), v)
}

/// The source at `path` (`Variables.NAME`, or inside a wrapping kind's property).
fn parse_source_at(variable: &str, path: &str, v: &Value) -> Result<Source, PropertiesError> {
    let prefix = format!("{path}.");
    let obj = match v {
        // A bare string is a literal.
        Value::String(_) | Value::Number(_) => {
            let value = string(path, v)?;
            validate_variable_value(variable, &value)?;
            return Ok(Source::Literal { value });
        }
        Value::Object(o) => o,
        other => {
            return Err(PropertiesError::WrongType {
                name: path.to_string(),
                expected: "an object naming one source",
                got: type_name(other),
            })
        }
    };
    let missing = || PropertiesError::Source(variable.to_string());
    let kind = source::kind_of_properties(|k| obj.contains_key(k)).ok_or_else(missing)?;
    let allowed: Vec<&str> = kind.keys().collect();
    check_keys(obj, &allowed, &prefix)?;
    if !kind.required.iter().all(|f| obj.contains_key(f.key)) {
        return Err(missing());
    }
    let mut fields = Fields::default();
    for field in kind.optional.iter().chain(kind.required) {
        let Some(v) = obj.get(field.key) else {
            continue;
        };
        let name = format!("{prefix}{}", field.key);
        let value = match field.ty {
            FieldType::Text => FieldValue::Text(string(&name, v)?),
            FieldType::Port => FieldValue::Port(unsigned(&name, v, u16::MAX.into())? as u16),
            FieldType::Source => FieldValue::Source(Box::new(wrapped(variable, &name, v)?)),
        };
        fields.insert(field.key, value);
    }
    let source = kind.build(&fields).ok_or_else(missing)?;
    if let Some(value) = source.literal_value() {
        validate_variable_value(variable, value)?;
    }
    if let Some(problem) = source.place().and_then(|p| p.problem()) {
        return Err(PropertiesError::Place {
            variable: variable.to_string(),
            problem,
        });
    }
    Ok(source)
}

/// The source a wrapping kind's property holds: one that names a load balancer.
fn wrapped(variable: &str, path: &str, v: &Value) -> Result<Source, PropertiesError> {
    let not_one = || PropertiesError::NotALoadBalancer {
        path: path.to_string(),
    };
    if !v.is_object() {
        return Err(not_one());
    }
    let inner = match parse_source_at(variable, path, v) {
        Err(PropertiesError::Source(_)) => return Err(not_one()),
        other => other?,
    };
    match inner.names_a_load_balancer() {
        true => Ok(inner),
        false => Err(not_one()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The spec of these properties (most tests look at nothing else).
    fn parse(props: &Value) -> Result<BindingSpec, PropertiesError> {
        super::parse(props).map(|p| p.spec)
    }

    fn seed() -> Value {
        json!({
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:stage-binding",
            "ServiceTimeout": "300",
            "RestApiId": "abc123",
            "StageName": "prod",
            "CreateStage": "true",
            "Variables": {
                "helloworldElb": {"StackName": "EcsHelloworldProd", "OutputKey": "EcsElbDnsName"},
                "ordersElb": {"Cluster": "prod", "Service": "orders", "ContainerPort": "80"},
                "legacyElb": {"LoadBalancer": "my-elb"},
                "banner": {"Value": "v2"},
                "short": "v3"
            }
        })
    }

    #[test]
    fn parses_every_source_and_stringified_scalars() {
        let spec = parse(&seed()).unwrap();
        assert_eq!(spec.stage, StageRef::new(ApiKind::Rest, "abc123", "prod"));
        assert!(spec.create_stage);
        assert_eq!(
            spec.variables["helloworldElb"],
            Source::StackOutput {
                stack: "EcsHelloworldProd".into(),
                output_key: "EcsElbDnsName".into(),
                at: Default::default()
            }
        );
        assert_eq!(
            spec.variables["ordersElb"],
            Source::EcsService {
                cluster: "prod".into(),
                service: "orders".into(),
                container_name: None,
                container_port: Some(80),
                at: Default::default()
            }
        );
        assert_eq!(
            spec.variables["legacyElb"],
            Source::LoadBalancer {
                name: "my-elb".into(),
                at: Default::default()
            }
        );
        assert_eq!(
            spec.variables["banner"],
            Source::Literal { value: "v2".into() }
        );
        assert_eq!(
            spec.variables["short"],
            Source::Literal { value: "v3".into() }
        );
        let settings = super::parse(&seed()).unwrap();
        assert_eq!(settings.service_timeout, Some(Duration::from_secs(300)));
        assert!(settings.wait_for_healthy_targets);
    }

    #[test]
    fn service_timeout_is_one_to_3600_seconds() {
        let mut p = seed();
        p.as_object_mut().unwrap().remove("ServiceTimeout");
        assert_eq!(super::parse(&p).unwrap().service_timeout, None);
        for bad in [json!("0"), json!(3601), json!("soon")] {
            p["ServiceTimeout"] = bad.clone();
            let err = super::parse(&p).unwrap_err().to_string();
            assert!(err.contains("ServiceTimeout"), "{bad}: {err}");
        }
        p["ServiceTimeout"] = json!(3600);
        assert_eq!(
            super::parse(&p).unwrap().service_timeout,
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn create_stage_false_as_string_and_bool() {
        let mut p = seed();
        p["CreateStage"] = json!("false");
        assert!(!parse(&p).unwrap().create_stage);
        p["CreateStage"] = json!(false);
        assert!(!parse(&p).unwrap().create_stage);
        p["CreateStage"] = json!("maybe");
        let err = parse(&p).unwrap_err().to_string();
        assert!(
            err.contains("CreateStage") && err.contains("maybe"),
            "{err}"
        );
    }

    #[test]
    fn wait_for_healthy_targets_defaults_to_true_and_accepts_strings() {
        let waits = |p: &Value| super::parse(p).unwrap().wait_for_healthy_targets;
        let mut p = seed();
        assert!(waits(&p));
        p["WaitForHealthyTargets"] = json!("false");
        assert!(!waits(&p));
        p["WaitForHealthyTargets"] = json!(true);
        assert!(waits(&p));
        p["WaitForHealthyTargets"] = json!("later");
        let err = parse(&p).unwrap_err().to_string();
        assert!(err.contains("WaitForHealthyTargets"), "{err}");
    }

    #[test]
    fn http_api() {
        let mut p = seed();
        p.as_object_mut().unwrap().remove("RestApiId");
        p["HttpApiId"] = json!("h77");
        assert_eq!(parse(&p).unwrap().stage.kind, ApiKind::Http);
        p["RestApiId"] = json!("abc");
        assert_eq!(parse(&p).unwrap_err(), PropertiesError::ApiId);
    }

    #[test]
    fn rejects_bad_input_with_names() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "must be an object"),
            (
                json!({"RestApiId": "a", "Variables": {"v": "x"}}),
                "StageName",
            ),
            (json!({"RestApiId": "a", "StageName": "p"}), "Variables"),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {}}),
                "at least one",
            ),
            (
                json!({"RestApiId": "a", "StageName": "bad stage", "Variables": {"v": "x"}}),
                "stage name \"bad stage\"",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {"bad-name": "x"}}),
                "\"bad-name\"",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": {"Value": "sp ace"}}}),
                "value \"sp ace\" of stage variable v",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": {"StackName": "s"}}}),
                "variable v: give exactly one source",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": {"StackName": "s", "OutputKey": "o", "Value": "x"}}}),
                "unsupported property Variables.v.StackName",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": {"Bogus": "x"}}}),
                "variable v: give exactly one source",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "Varaibles": {}, "Variables": {"v": "x"}}),
                "unsupported property Varaibles",
            ),
            (
                json!({"RestApiId": "a", "StageName": "p", "ServiceTimeout": "soon", "Variables": {"v": "x"}}),
                "ServiceTimeout",
            ),
            (
                json!({"RestApiId": "", "StageName": "p", "Variables": {"v": "x"}}),
                "RestApiId must be a non-empty string",
            ),
        ];
        for (props, needle) in cases {
            let err = parse(&props).unwrap_err().to_string();
            assert!(err.contains(needle), "{props}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn a_source_error_names_every_kind() {
        let p = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": {"Cluster": "c"}}});
        assert_eq!(
            parse(&p).unwrap_err().to_string(),
            "variable v: give exactly one source: StackName + OutputKey, Cluster + Service, LoadBalancer, Value, or VpcLinkFor"
        );
    }

    #[test]
    fn a_place_must_be_a_region_and_a_role() {
        let with = |extra: Value| {
            let mut source = json!({"StackName": "S", "OutputKey": "O"});
            source
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(&json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": source}}))
        };
        let spec =
            with(json!({"Region": "eu-west-1", "RoleArn": "arn:aws:iam::222222222222:role/r"}))
                .unwrap();
        assert_eq!(
            spec.variables["v"].place().unwrap().account(),
            Some("222222222222")
        );
        let err = with(json!({"Region": "Ireland"})).unwrap_err().to_string();
        assert!(
            err.starts_with("Variables.v: Region \"Ireland\" is not a region"),
            "{err}"
        );
        let err = with(json!({"RoleArn": "stagewire-source"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RoleArn \"stagewire-source\" is not an IAM role ARN"),
            "{err}"
        );
        let err = parse(&json!({"RestApiId": "a", "StageName": "p",
            "Variables": {"v": {"Value": "x", "Region": "eu-west-1"}}}))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unsupported property Variables.v.Region"),
            "{err}"
        );
    }

    #[test]
    fn every_kind_parses_from_its_keys() {
        for kind in crate::domain::SOURCE_KINDS {
            let source: Map<String, Value> = kind
                .required
                .iter()
                .chain(kind.optional)
                .map(|f| match f.ty {
                    // A place must be one.
                    _ if f == &source::REGION => (f.key.to_string(), json!("eu-west-1")),
                    _ if f == &source::ROLE_ARN => (
                        f.key.to_string(),
                        json!("arn:aws:iam::222222222222:role/stagewire-source"),
                    ),
                    FieldType::Text => (f.key.to_string(), json!(format!("x{}", f.key.len()))),
                    FieldType::Port => (f.key.to_string(), json!("8080")),
                    FieldType::Source => (f.key.to_string(), json!({"LoadBalancer": "nlb"})),
                })
                .collect();
            let p = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": source}});
            let spec = parse(&p).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(
                source::kind_of_properties(|k| source.contains_key(k)).map(|k| k.cli_prefix),
                Some(kind.cli_prefix)
            );
            assert!(spec.variables.contains_key("v"));
            // Any one required key missing is a source error naming the variable.
            for f in kind.required {
                let mut partial = source.clone();
                partial.remove(f.key);
                let p = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": partial}});
                assert_eq!(
                    parse(&p).unwrap_err(),
                    PropertiesError::Source("v".into()),
                    "{kind:?} without {}",
                    f.key
                );
            }
        }
    }

    #[test]
    fn too_many_variables() {
        let vars: Map<String, Value> = (0..101).map(|i| (format!("v{i}"), json!("x"))).collect();
        let p = json!({"RestApiId": "a", "StageName": "p", "Variables": vars});
        let err = parse(&p).unwrap_err().to_string();
        assert!(err.contains("101") && err.contains("at most 100"), "{err}");
    }

    #[test]
    fn a_variable_named_like_an_answer_is_refused() {
        let mut p = seed();
        p["Variables"]["InvokeUrl"] = json!("x");
        let e = parse(&p).unwrap_err();
        assert!(e.to_string().contains("InvokeUrl is reserved"), "{e}");
    }

    #[test]
    fn an_http_api_default_stage_is_bindable() {
        let mut p = seed();
        p.as_object_mut().unwrap().remove("RestApiId");
        p["HttpApiId"] = json!("h1");
        p["StageName"] = json!("$default");
        assert_eq!(parse(&p).unwrap().stage.stage, "$default");
        p.as_object_mut().unwrap().remove("HttpApiId");
        p["RestApiId"] = json!("r1");
        assert!(parse(&p).is_err(), "a REST API has no $default stage");
    }

    #[test]
    fn a_vpc_link_for_wraps_one_load_balancer_source() {
        let with = |inner: Value| {
            parse(&json!({"RestApiId": "a", "StageName": "p",
                "Variables": {"vpcLinkId": {"VpcLinkFor": inner}}}))
        };
        let spec = with(json!({"StackName": "Ecs", "OutputKey": "NlbArn", "Region": "eu-west-1"}))
            .unwrap();
        assert_eq!(
            spec.variables["vpcLinkId"],
            Source::VpcLinkFor {
                target: Box::new(Source::StackOutput {
                    stack: "Ecs".into(),
                    output_key: "NlbArn".into(),
                    at: crate::domain::Place {
                        region: Some("eu-west-1".into()),
                        role_arn: None,
                    },
                })
            }
        );
        with(json!({"Cluster": "prod", "Service": "orders", "ContainerPort": "80"})).unwrap();
        let not_one = |inner: Value| with(inner).unwrap_err().to_string();
        let expected = "Variables.vpcLinkId.VpcLinkFor: give the source of one load balancer: StackName + OutputKey, Cluster + Service, or LoadBalancer";
        for bad in [
            json!("nlb-1"),
            json!({"Value": "x"}),
            json!({"VpcLinkFor": {"LoadBalancer": "nlb"}}),
            json!({}),
            json!(["nlb"]),
        ] {
            assert_eq!(not_one(bad.clone()), expected, "{bad}");
        }
        assert_eq!(
            not_one(json!({"LoadBalancer": "nlb", "Bogus": 1})),
            "unsupported property Variables.vpcLinkId.VpcLinkFor.Bogus (supported: LoadBalancer, Region, RoleArn)"
        );
        assert!(not_one(json!({"LoadBalancer": "nlb", "Region": "Ireland"})).contains("Region"));
        // The place belongs inside, on the load balancer's source.
        let beside = parse(&json!({"RestApiId": "a", "StageName": "p",
            "Variables": {"v": {"VpcLinkFor": {"LoadBalancer": "nlb"}, "Region": "eu-west-1"}}}));
        assert!(beside
            .unwrap_err()
            .to_string()
            .contains("Variables.v.Region"));
    }
}
