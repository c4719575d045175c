//! Creates the registry DynamoDB table from its definition in the SAM template.
//!
//! `template.yaml` holds exactly one resource of type `AWS::DynamoDB::Table`; its Properties
//! (AttributeDefinitions, KeySchema, GlobalSecondaryIndexes, LocalSecondaryIndexes,
//! BillingMode, ProvisionedThroughput, StreamSpecification, TimeToLiveSpecification) become a
//! `CreateTable` call, so local runs use the same table shape as a deployment. CloudFormation
//! short tags elsewhere in the template (`!Ref`, `!Sub`, ...) are left alone; the table's own
//! key and index definitions must be plain values. `TableName` is ignored: the caller names
//! the table.

use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_yaml::Value;

use crate::{workspace_root, DevkitError};

/// The resource type looked for in the template.
pub const TABLE_TYPE: &str = "AWS::DynamoDB::Table";

/// The SAM template of the workspace, `<workspace>/template.yaml`.
pub fn template_path() -> PathBuf {
    workspace_root().join("template.yaml")
}

/// Creates `table_name` from the table defined in `<workspace>/template.yaml`.
pub async fn create_registry_table(client: &Client, table_name: &str) -> Result<(), DevkitError> {
    create_table_from_template(client, table_name, &template_path()).await
}

/// Creates `table_name` from the single `AWS::DynamoDB::Table` in the template at `template`.
pub async fn create_table_from_template(
    client: &Client,
    table_name: &str,
    template: &Path,
) -> Result<(), DevkitError> {
    let text = tokio::fs::read_to_string(template)
        .await
        .map_err(|e| DevkitError::io(format!("reading {}", template.display()), e))?;
    let definition = TableDefinition::from_template_str(&text, template)?;
    definition.create(client, table_name).await
}

/// The parts of a table resource that `CreateTable` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    /// The template's logical id of the table.
    pub logical_id: String,
    /// `AttributeDefinitions`.
    pub attributes: Vec<AttributeDefinition>,
    /// `KeySchema`.
    pub key_schema: Vec<KeySchemaElement>,
    /// `GlobalSecondaryIndexes`.
    pub global_indexes: Vec<GlobalSecondaryIndex>,
    /// `LocalSecondaryIndexes`.
    pub local_indexes: Vec<LocalSecondaryIndex>,
    /// `BillingMode` (CloudFormation's default is `PROVISIONED`).
    pub billing_mode: BillingMode,
    /// `ProvisionedThroughput`, for provisioned tables.
    pub throughput: Option<ProvisionedThroughput>,
    /// `StreamSpecification`.
    pub stream: Option<StreamSpecification>,
    /// `TimeToLiveSpecification`, applied after creation.
    pub ttl: Option<TimeToLiveSpecification>,
}

impl TableDefinition {
    /// Finds the single table resource in template text; `path` is only used in errors.
    pub fn from_template_str(text: &str, path: &Path) -> Result<TableDefinition, DevkitError> {
        let err = |message: String| DevkitError::Template {
            path: path.to_path_buf(),
            message,
        };
        let doc: Value = serde_yaml::from_str(text).map_err(|source| DevkitError::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| err("no Resources mapping".into()))?;
        let tables: Vec<(String, &Value)> = resources
            .iter()
            .filter(|(_, resource)| {
                resource.get("Type").and_then(Value::as_str) == Some(TABLE_TYPE)
            })
            .map(|(id, resource)| (id.as_str().unwrap_or("?").to_string(), resource))
            .collect();
        let (logical_id, resource) = match tables.as_slice() {
            [one] => one.clone(),
            [] => return Err(err(format!("no resource of type {TABLE_TYPE}"))),
            many => {
                let ids: Vec<&str> = many.iter().map(|(id, _)| id.as_str()).collect();
                return Err(err(format!(
                    "expected one {TABLE_TYPE}, found {}: {}",
                    ids.len(),
                    ids.join(", ")
                )));
            }
        };
        let props = resource
            .get("Properties")
            .ok_or_else(|| err(format!("{logical_id} has no Properties")))?;
        Parser {
            logical_id: &logical_id,
            path,
        }
        .definition(props)
    }

    /// Issues `CreateTable` (and `UpdateTimeToLive` when the template asks for it).
    pub async fn create(&self, client: &Client, table_name: &str) -> Result<(), DevkitError> {
        let mut request = client
            .create_table()
            .table_name(table_name)
            .set_attribute_definitions(Some(self.attributes.clone()))
            .set_key_schema(Some(self.key_schema.clone()))
            .billing_mode(self.billing_mode.clone())
            .set_provisioned_throughput(self.throughput.clone())
            .set_stream_specification(self.stream.clone());
        if !self.global_indexes.is_empty() {
            request = request.set_global_secondary_indexes(Some(self.global_indexes.clone()));
        }
        if !self.local_indexes.is_empty() {
            request = request.set_local_secondary_indexes(Some(self.local_indexes.clone()));
        }
        request
            .send()
            .await
            .map_err(|e| DevkitError::aws("CreateTable", e))?;
        if let Some(ttl) = &self.ttl {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(ttl.clone())
                .send()
                .await
                .map_err(|e| DevkitError::aws("UpdateTimeToLive", e))?;
        }
        Ok(())
    }
}

struct Parser<'a> {
    logical_id: &'a str,
    path: &'a Path,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> DevkitError {
        DevkitError::Template {
            path: self.path.to_path_buf(),
            message: format!("{}: {}", self.logical_id, message.into()),
        }
    }

    fn definition(&self, props: &Value) -> Result<TableDefinition, DevkitError> {
        let attributes = self
            .seq(props, "AttributeDefinitions")?
            .iter()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(self.string(a, "AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(
                        self.string(a, "AttributeType")?.as_str(),
                    ))
                    .build()
                    .map_err(|e| DevkitError::aws("CreateTable (AttributeDefinition)", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key_schema = self.key_schema(props)?;
        let mut global_indexes = Vec::new();
        if props.get("GlobalSecondaryIndexes").is_some() {
            for index in self.seq(props, "GlobalSecondaryIndexes")? {
                let built = GlobalSecondaryIndex::builder()
                    .index_name(self.string(index, "IndexName")?)
                    .set_key_schema(Some(self.key_schema(index)?))
                    .projection(self.projection(index)?)
                    .set_provisioned_throughput(self.throughput(index)?)
                    .build()
                    .map_err(|e| DevkitError::aws("CreateTable (GlobalSecondaryIndex)", e))?;
                global_indexes.push(built);
            }
        }
        let mut local_indexes = Vec::new();
        if props.get("LocalSecondaryIndexes").is_some() {
            for index in self.seq(props, "LocalSecondaryIndexes")? {
                let built = LocalSecondaryIndex::builder()
                    .index_name(self.string(index, "IndexName")?)
                    .set_key_schema(Some(self.key_schema(index)?))
                    .projection(self.projection(index)?)
                    .build()
                    .map_err(|e| DevkitError::aws("CreateTable (LocalSecondaryIndex)", e))?;
                local_indexes.push(built);
            }
        }
        let billing_mode = match props.get("BillingMode") {
            None => BillingMode::Provisioned,
            Some(_) => BillingMode::from(self.string(props, "BillingMode")?.as_str()),
        };
        let throughput = self.throughput(props)?;
        if billing_mode == BillingMode::Provisioned && throughput.is_none() {
            return Err(self.err("a PROVISIONED table needs ProvisionedThroughput"));
        }
        let stream = match props.get("StreamSpecification") {
            None => None,
            Some(spec) => Some(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(
                        self.string(spec, "StreamViewType")?.as_str(),
                    ))
                    .build()
                    .map_err(|e| DevkitError::aws("CreateTable (StreamSpecification)", e))?,
            ),
        };
        let ttl = match props.get("TimeToLiveSpecification") {
            None => None,
            Some(spec) => {
                let enabled = match spec.get("Enabled") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                    _ => return Err(self.err("TimeToLiveSpecification.Enabled must be a boolean")),
                };
                Some(
                    TimeToLiveSpecification::builder()
                        .attribute_name(self.string(spec, "AttributeName")?)
                        .enabled(enabled)
                        .build()
                        .map_err(|e| DevkitError::aws("UpdateTimeToLive (specification)", e))?,
                )
            }
        };
        Ok(TableDefinition {
            logical_id: self.logical_id.to_string(),
            attributes,
            key_schema,
            global_indexes,
            local_indexes,
            billing_mode,
            throughput,
            stream,
            ttl,
        })
    }

    fn key_schema(&self, parent: &Value) -> Result<Vec<KeySchemaElement>, DevkitError> {
        self.seq(parent, "KeySchema")?
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(self.string(k, "AttributeName")?)
                    .key_type(KeyType::from(self.string(k, "KeyType")?.as_str()))
                    .build()
                    .map_err(|e| DevkitError::aws("CreateTable (KeySchemaElement)", e))
            })
            .collect()
    }

    fn projection(&self, index: &Value) -> Result<Projection, DevkitError> {
        let projection = index
            .get("Projection")
            .ok_or_else(|| self.err("an index has no Projection"))?;
        let kind = match projection.get("ProjectionType") {
            None => ProjectionType::KeysOnly,
            Some(_) => ProjectionType::from(self.string(projection, "ProjectionType")?.as_str()),
        };
        let non_key = match projection.get("NonKeyAttributes") {
            None => None,
            Some(_) => Some(
                self.seq(projection, "NonKeyAttributes")?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| self.err("NonKeyAttributes must be strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Projection::builder()
            .projection_type(kind)
            .set_non_key_attributes(non_key)
            .build())
    }

    fn throughput(&self, parent: &Value) -> Result<Option<ProvisionedThroughput>, DevkitError> {
        let Some(spec) = parent.get("ProvisionedThroughput") else {
            return Ok(None);
        };
        let read = self.integer(spec, "ReadCapacityUnits")?;
        let write = self.integer(spec, "WriteCapacityUnits")?;
        ProvisionedThroughput::builder()
            .read_capacity_units(read)
            .write_capacity_units(write)
            .build()
            .map(Some)
            .map_err(|e| DevkitError::aws("CreateTable (ProvisionedThroughput)", e))
    }

    fn seq<'v>(&self, parent: &'v Value, key: &str) -> Result<&'v Vec<Value>, DevkitError> {
        match parent.get(key) {
            Some(Value::Sequence(items)) => Ok(items),
            Some(other) => {
                Err(self.err(format!("{key} must be a plain list, found {}", kind(other))))
            }
            None => Err(self.err(format!("{key} is missing"))),
        }
    }

    fn string(&self, parent: &Value, key: &str) -> Result<String, DevkitError> {
        match parent.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(format!(
                "{key} must be a plain string, found {}",
                kind(other)
            ))),
            None => Err(self.err(format!("{key} is missing"))),
        }
    }

    fn integer(&self, parent: &Value, key: &str) -> Result<i64, DevkitError> {
        match parent.get(key) {
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.err(format!("{key} must be an integer"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("{key} must be an integer, found {s:?}"))),
            Some(other) => {
                Err(self.err(format!("{key} must be an integer, found {}", kind(other))))
            }
            None => Err(self.err(format!("{key} is missing"))),
        }
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(_) => "a string".into(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(tagged) => format!("a {} tag", tagged.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TableDefinition, DevkitError> {
        TableDefinition::from_template_str(text, Path::new("t.yaml"))
    }

    #[test]
    fn provisioned_table_with_ttl_and_stream() {
        let def = parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Env: !Ref Table
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-t"
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      ProvisionedThroughput: {ReadCapacityUnits: "5", WriteCapacityUnits: 2}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
      TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
"#,
        )
        .unwrap();
        assert_eq!(def.logical_id, "Table");
        assert_eq!(def.billing_mode, BillingMode::Provisioned);
        let throughput = def.throughput.unwrap();
        assert_eq!(throughput.read_capacity_units(), 5);
        assert_eq!(throughput.write_capacity_units(), 2);
        assert!(def.stream.is_some());
        assert_eq!(def.ttl.unwrap().attribute_name(), "expires");
        assert!(def.global_indexes.is_empty());
    }

    #[test]
    fn template_errors() {
        let none = parse("Resources:\n  A:\n    Type: AWS::SNS::Topic\n").unwrap_err();
        assert!(none.to_string().contains("no resource of type"), "{none}");
        let two = parse(
            "Resources:\n  A:\n    Type: AWS::DynamoDB::Table\n  B:\n    Type: AWS::DynamoDB::Table\n",
        )
        .unwrap_err();
        assert!(two.to_string().contains("found 2: A, B"), "{two}");
        let tagged = parse(
            "Resources:\n  A:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions: !If [c, [], []]\n      KeySchema: []\n",
        )
        .unwrap_err();
        assert!(tagged.to_string().contains("!If tag"), "{tagged}");
        assert!(matches!(parse(": : :"), Err(DevkitError::Yaml { .. })));
    }
}
