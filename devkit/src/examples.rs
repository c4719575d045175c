//! The example stacks of `examples/`, created in moto as the README's deploy creates them.
//!
//! moto's CloudFormation creates an `AWS::ApiGateway::RestApi` without its `Tags` and `Body`,
//! cannot hold a `Custom::` resource, and cannot change a REST API's tags once it exists. So:
//!
//! - [`deploy_api_stack`] creates the API stack (`EcsDemoApi`, from
//!   `examples/ecs-demo-api.yaml`) the way CloudFormation creates its REST API: the stack (with a
//!   placeholder resource), then `CreateRestApi` with the template's `Tags` (parameters
//!   resolved) and CloudFormation's own tags (`aws:cloudformation:stack-id`, ...), `PutRestApi`
//!   (overwrite) with the OpenAPI definition that `BodyS3Location` names, and the template's
//!   stage-less deployment. The tags come from the template: the template is the one source.
//! - [`without_binding`] is the ECS template (`examples/ecs-helloworld.yaml`) for `CreateStack`,
//!   and [`binding_properties`] the `ResourceProperties` CloudFormation sends for its
//!   `StageBinding`, resolved from the template with the stack's parameters, resources and the
//!   exports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_sdk_apigateway::primitives::Blob;
use aws_sdk_apigateway::types::PutMode;
use serde_json::Value as Json;
use serde_yaml::Value;

use crate::DevkitError;

/// The API stack's template, from the workspace root.
pub const API_TEMPLATE: &str = "examples/ecs-demo-api.yaml";
/// The ECS stack's template, from the workspace root.
pub const ECS_TEMPLATE: &str = "examples/ecs-helloworld.yaml";
/// The API stack's name in the README's deploy.
pub const API_STACK: &str = "EcsDemoApi";
/// The prod ECS stack's name in the README's deploy.
pub const PROD_STACK: &str = "EcsHelloworldProd";
/// The dev ECS stack's name in the README's deploy.
pub const DEV_STACK: &str = "EcsHelloworldDev";
/// The logical id of the binding in the ECS template.
pub const BINDING: &str = "StageBinding";
/// The tag by which an API allows the bindings of other stacks.
pub const ALLOWED_STACKS_TAG: &str = "stagewire:allowed-stacks";
/// The tag CloudFormation puts on each resource it creates: the stack's id.
pub const STACK_ID_TAG: &str = "aws:cloudformation:stack-id";
/// The start of the binding's resource in the ECS template.
const BINDING_BLOCK: &str = "\n  StageBinding:\n";
const REST_API_TYPE: &str = "AWS::ApiGateway::RestApi";
const DEPLOYMENT_TYPE: &str = "AWS::ApiGateway::Deployment";

/// A CloudFormation template, parsed (short-form intrinsics as YAML tags).
#[derive(Debug, Clone)]
pub struct Template {
    path: PathBuf,
    doc: Value,
}

impl Template {
    /// Reads and parses the template at `path`.
    pub fn load(path: &Path) -> Result<Template, DevkitError> {
        let text = std::fs::read_to_string(path).map_err(|source| DevkitError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        Template::parse(&text, path)
    }

    /// Parses template `text`; `path` locates relative files and names the template in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Template, DevkitError> {
        let doc = serde_yaml::from_str(text).map_err(|source| DevkitError::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Template {
            path: path.to_path_buf(),
            doc,
        })
    }

    fn err(&self, message: impl Into<String>) -> DevkitError {
        DevkitError::Template {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The default of parameter `name`, as a string.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        let default = self.doc.get("Parameters")?.get(name)?.get("Default")?;
        scalar(default)
    }

    /// Every parameter's default, then `overrides`.
    pub fn parameters(&self, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        if let Some(Value::Mapping(params)) = self.doc.get("Parameters") {
            for (name, _) in params {
                if let Some(name) = name.as_str() {
                    if let Some(default) = self.parameter_default(name) {
                        values.insert(name.to_string(), default);
                    }
                }
            }
        }
        for (k, v) in overrides {
            values.insert(k.to_string(), v.to_string());
        }
        values
    }

    /// The one resource of type `kind`: its logical id and definition.
    pub fn resource_of_type(&self, kind: &str) -> Result<(String, &Value), DevkitError> {
        let found: Vec<(String, &Value)> = self
            .resources()?
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, r)| (id.as_str().unwrap_or("?").to_string(), r))
            .collect();
        match <[_; 1]>::try_from(found) {
            Ok([one]) => Ok(one),
            Err(found) => Err(self.err(format!("expected one {kind}, found {}", found.len()))),
        }
    }

    /// The `Properties` of resource `logical_id`.
    pub fn properties(&self, logical_id: &str) -> Result<&Value, DevkitError> {
        self.resources()?
            .get(logical_id)
            .and_then(|r| r.get("Properties"))
            .ok_or_else(|| self.err(format!("no resource {logical_id} with Properties")))
    }

    fn resources(&self) -> Result<&serde_yaml::Mapping, DevkitError> {
        self.doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| self.err("no Resources mapping"))
    }
}

/// A scalar as CloudFormation passes it on: a string.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What `Ref` and `Fn::ImportValue` resolve to.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// Parameter values by name.
    pub parameters: BTreeMap<String, String>,
    /// Physical ids by logical id.
    pub resources: BTreeMap<String, String>,
    /// Export values by export name.
    pub imports: BTreeMap<String, String>,
}

impl Refs {
    fn reference(&self, name: &str) -> Result<String, String> {
        self.parameters
            .get(name)
            .or_else(|| self.resources.get(name))
            .cloned()
            .ok_or_else(|| format!("Ref {name}: no such parameter or resource"))
    }

    fn import(&self, name: &str) -> Result<String, String> {
        self.imports
            .get(name)
            .cloned()
            .ok_or_else(|| format!("ImportValue {name}: no such export"))
    }

    fn intrinsic(&self, function: &str, argument: &Value) -> Result<Json, String> {
        let name = match self.resolve(argument)? {
            Json::String(name) => name,
            other => return Err(format!("{function} of {other}: not a name")),
        };
        match function {
            "Ref" => self.reference(&name).map(Json::String),
            "ImportValue" | "Fn::ImportValue" => self.import(&name).map(Json::String),
            other => Err(format!("intrinsic function {other} is not supported here")),
        }
    }

    /// `value` with `Ref` and `Fn::ImportValue` resolved and scalars as strings, as
    /// CloudFormation hands properties to a custom resource.
    pub fn resolve(&self, value: &Value) -> Result<Json, String> {
        match value {
            Value::Null => Ok(Json::Null),
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                Ok(Json::String(scalar(value).unwrap_or_default()))
            }
            Value::Sequence(items) => items
                .iter()
                .map(|v| self.resolve(v))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Value::Mapping(map) => {
                if let (1, Some((Value::String(key), argument))) = (map.len(), map.iter().next()) {
                    if key == "Ref" || key == "Fn::ImportValue" {
                        return self.intrinsic(key, argument);
                    }
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let key = scalar(k).ok_or_else(|| format!("key {k:?} is not a scalar"))?;
                    out.insert(key, self.resolve(v)?);
                }
                Ok(Json::Object(out))
            }
        }
    }
}

/// The API stack as created by [`deploy_api_stack`].
#[derive(Debug, Clone)]
pub struct ExampleApi {
    /// The REST API's id (the stack's `RestApiId` output).
    pub id: String,
    /// The REST API's name.
    pub name: String,
    /// The stack's id.
    pub stack_id: String,
    /// The tags the template gives the REST API, parameters resolved.
    pub template_tags: BTreeMap<String, String>,
    /// Every tag of the REST API: the template's and CloudFormation's own.
    pub tags: BTreeMap<String, String>,
    /// The OpenAPI definition imported (`BodyS3Location`, relative to the template).
    pub body_path: PathBuf,
}

/// The REST API of the API template, resolved with `parameters` (over the defaults).
struct RestApiSpec {
    logical_id: String,
    name: String,
    description: Option<String>,
    tags: BTreeMap<String, String>,
    body_path: PathBuf,
    deployment_description: Option<String>,
}

fn rest_api_spec(
    template: &Template,
    parameters: &[(&str, &str)],
) -> Result<RestApiSpec, DevkitError> {
    let refs = Refs {
        parameters: template.parameters(parameters),
        ..Refs::default()
    };
    let (logical_id, _) = template.resource_of_type(REST_API_TYPE)?;
    let props = refs
        .resolve(template.properties(&logical_id)?)
        .map_err(|e| template.err(format!("{logical_id}: {e}")))?;
    let text = |key: &str| props.get(key).and_then(Json::as_str).map(str::to_string);
    let mut tags = BTreeMap::new();
    for tag in props
        .get("Tags")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(Json::String(k)), Some(Json::String(v))) = (tag.get("Key"), tag.get("Value")) {
            tags.insert(k.clone(), v.clone());
        }
    }
    let body = text("BodyS3Location")
        .ok_or_else(|| template.err(format!("{logical_id} has no BodyS3Location file path")))?;
    let dir = template.path.parent().unwrap_or(Path::new("."));
    let deployment_description = template
        .resource_of_type(DEPLOYMENT_TYPE)
        .ok()
        .and_then(|(_, d)| d.get("Properties")?.get("Description").and_then(scalar));
    Ok(RestApiSpec {
        name: text("Name").ok_or_else(|| template.err(format!("{logical_id} has no Name")))?,
        description: text("Description"),
        body_path: dir.join(body),
        logical_id,
        tags,
        deployment_description,
    })
}

/// Creates stack `stack_name` from the API template at `template_path` with `parameters` (over
/// the defaults), its REST API made as CloudFormation makes it (see the module's documentation).
pub async fn deploy_api_stack(
    sdk: &SdkConfig,
    template_path: &Path,
    stack_name: &str,
    parameters: &[(&str, &str)],
) -> Result<ExampleApi, DevkitError> {
    let template = Template::load(template_path)?;
    let spec = rest_api_spec(&template, parameters)?;
    let body = std::fs::read(&spec.body_path).map_err(|source| DevkitError::Io {
        context: format!("reading {}", spec.body_path.display()),
        source,
    })?;
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let stack_id = placeholder_stack(&cfn, stack_name).await?;
    let mut tags = spec.tags.clone();
    tags.insert(STACK_ID_TAG.into(), stack_id.clone());
    tags.insert("aws:cloudformation:stack-name".into(), stack_name.into());
    tags.insert(
        "aws:cloudformation:logical-id".into(),
        spec.logical_id.clone(),
    );
    let apigw = aws_sdk_apigateway::Client::new(sdk);
    let api = apigw
        .create_rest_api()
        .name(&spec.name)
        .set_description(spec.description.clone())
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateRestApi", e))?;
    let id = api.id().unwrap_or_default().to_string();
    apigw
        .put_rest_api()
        .rest_api_id(&id)
        .mode(PutMode::Overwrite)
        .fail_on_warnings(true)
        .body(Blob::new(body))
        .send()
        .await
        .map_err(|e| DevkitError::aws("PutRestApi", e))?;
    apigw
        .create_deployment()
        .rest_api_id(&id)
        .set_description(spec.deployment_description.clone())
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateDeployment", e))?;
    Ok(ExampleApi {
        id,
        name: spec.name,
        stack_id,
        template_tags: spec.tags,
        tags,
        body_path: spec.body_path,
    })
}

/// Creates the ECS stack `name` from `template` (the ECS template's text) with `EnvironmentName`
/// `environment`, as `aws cloudformation deploy` would; answers its id.
pub async fn create_ecs_stack(
    cfn: &aws_sdk_cloudformation::Client,
    template: &str,
    name: &str,
    environment: &str,
) -> Result<String, DevkitError> {
    create_stack(cfn, name, template, &[("EnvironmentName", environment)]).await
}

/// Creates stack `name` holding only a placeholder (moto's stacks cannot hold the custom
/// resources a stack of bindings holds); answers its id.
pub async fn placeholder_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<String, DevkitError> {
    let template =
        r#"{"Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}"#;
    create_stack(cfn, name, template, &[]).await
}

/// Creates stack `name` from `template` with `parameters`, allowing IAM resources; answers its
/// id.
async fn create_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    template: &str,
    parameters: &[(&str, &str)],
) -> Result<String, DevkitError> {
    use aws_sdk_cloudformation::types::{Capability, Parameter};
    let parameters: Vec<Parameter> = parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build()
        })
        .collect();
    let created = cfn
        .create_stack()
        .stack_name(name)
        .template_body(template)
        .set_parameters((!parameters.is_empty()).then_some(parameters))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .map_err(|e| DevkitError::aws("CreateStack", e))?;
    created
        .stack_id()
        .map(str::to_string)
        .ok_or_else(|| DevkitError::Unexpected(format!("CreateStack {name} returned no id")))
}

/// The ECS template without the binding's resource (up to the next blank line): moto cannot
/// hold a `Custom::` resource, so CloudFormation's side of the binding is played apart.
pub fn without_binding(template: &str) -> String {
    let Some(start) = template.find(BINDING_BLOCK) else {
        return template.to_string();
    };
    let body = start + BINDING_BLOCK.len();
    let end = template[body..]
        .find("\n\n")
        .map_or(template.len(), |i| body + i);
    format!("{}{}", &template[..start], &template[end..])
}

/// The `ResourceProperties` CloudFormation sends for the ECS template's binding ([`BINDING`]),
/// with `refs` for its parameters (defaults included), resources and exports.
pub fn binding_properties(template: &Template, refs: &Refs) -> Result<Json, DevkitError> {
    refs.resolve(template.properties(BINDING)?)
        .map_err(|e| template.err(format!("{BINDING}: {e}")))
}

/// The workspace file `relative` (for example [`API_TEMPLATE`]).
pub fn workspace_file(relative: &str) -> PathBuf {
    crate::workspace_root().join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECS: &str = r#"
Parameters:
  EnvironmentName: {Type: String}
  RestApiId: {Type: String, Default: ""}
  Export: {Type: String, Default: stagewire-StageBindingFunctionArn}
Resources:
  LoadBalancer:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer

  StageBinding:
    Type: Custom::StageBinding
    Properties:
      ServiceToken: !ImportValue
        Ref: Export
      ServiceTimeout: 300
      CreateStage: true
      RestApiId: !Ref RestApiId
      StageName: !Ref EnvironmentName
      Variables:
        helloworldElb:
          LoadBalancer: {Ref: LoadBalancer}

Outputs: {}
"#;

    #[test]
    fn the_binding_gets_its_properties_as_cloudformation_sends_them() {
        let t = Template::parse(ECS, Path::new("ecs.yaml")).unwrap();
        let refs = Refs {
            parameters: t.parameters(&[("EnvironmentName", "prod"), ("RestApiId", "a1")]),
            resources: [("LoadBalancer".to_string(), "arn:lb".to_string())].into(),
            imports: [("stagewire-StageBindingFunctionArn".into(), "arn:fn".into())].into(),
        };
        let props = binding_properties(&t, &refs).unwrap();
        assert_eq!(
            props,
            serde_json::json!({
                "ServiceToken": "arn:fn", "ServiceTimeout": "300", "CreateStage": "true",
                "RestApiId": "a1", "StageName": "prod",
                "Variables": {"helloworldElb": {"LoadBalancer": "arn:lb"}}
            })
        );
        let none = Refs::default();
        assert!(binding_properties(&t, &none).is_err());
    }

    #[test]
    fn without_binding_drops_only_the_binding() {
        let t = without_binding(ECS);
        assert!(!t.contains("Custom::StageBinding") && t.contains("LoadBalancer:\n    Type"));
        assert!(t.contains("\nOutputs: {}"));
    }

    #[test]
    fn the_example_api_template_names_the_example_stacks_in_its_consent_tag() {
        let t = Template::load(&workspace_file(API_TEMPLATE)).unwrap();
        let spec = rest_api_spec(&t, &[]).unwrap();
        let allowed = spec
            .tags
            .get(ALLOWED_STACKS_TAG)
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = allowed.split_whitespace().collect();
        assert!(
            names.contains(&PROD_STACK) && names.contains(&DEV_STACK),
            "{allowed:?}"
        );
        assert!(spec.body_path.is_file(), "{}", spec.body_path.display());
    }
}
