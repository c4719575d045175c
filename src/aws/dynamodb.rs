//! The registry in DynamoDB.
//!
//! One item per bound stage variable: `pk = STAGE#<kind>#<api>#<stage>`, `sk = VAR#<name>`.
//! Three sparse indexes answer the questions stagewire asks: `by-source` (which bindings does an
//! event about this stack, service or load balancer affect), `by-via` (which bindings currently
//! point at this load balancer) and `by-owner` (what does this custom resource own). Every write
//! is conditional: claims on the owner, re-sync records on the item's version.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use super::sdk_error;
use crate::domain::{ApiKind, Owner, Source, SourceKey, StageRef};
use crate::ports::{AwsError, ErrorKind, Record, Registry, RegistryError, SyncUpdate};

const SERVICE: &str = "dynamodb";
/// DynamoDB's limit of actions in one transaction.
const MAX_TRANSACTION: usize = 100;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoRegistry {
    client: Client,
    table: String,
}

pub fn stage_pk(stage: &StageRef) -> String {
    format!(
        "STAGE#{}#{}#{}",
        stage.kind.as_str(),
        stage.api_id,
        stage.stage
    )
}

fn var_sk(variable: &str) -> String {
    format!("VAR#{variable}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(stage: &StageRef, variable: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(stage_pk(stage))),
        ("sk".to_string(), s(var_sk(variable))),
    ])
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn decode(item: &Item) -> Result<Record, RegistryError> {
    let pk = get_s(item, "pk").unwrap_or("?");
    let corrupt = |reason: &str| RegistryError::Corrupt {
        key: format!("{pk}/{}", get_s(item, "sk").unwrap_or("?")),
        reason: reason.to_string(),
    };
    let field = |name: &'static str| get_s(item, name).ok_or_else(|| corrupt(name));
    let kind = ApiKind::parse(field("api_kind")?).ok_or_else(|| corrupt("api_kind"))?;
    let source: Source =
        serde_json::from_str(field("source")?).map_err(|e| corrupt(&format!("source: {e}")))?;
    Ok(Record {
        stage: StageRef::new(kind, field("api_id")?, field("stage_name")?),
        variable: field("var_name")?.to_string(),
        owner: Owner {
            stack_id: field("stack_id")?.to_string(),
            logical_id: field("logical_id")?.to_string(),
            physical_id: field("physical_id")?.to_string(),
        },
        source,
        value: get_s(item, "value").map(str::to_owned),
        written_at: get_n(item, "written_at"),
        via: get_s(item, "via_key")
            .map(|k| k.parse::<SourceKey>())
            .transpose()
            .map_err(|e| corrupt(&format!("via_key: {e}")))?,
        created_stage: item
            .get("created_stage")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        last_error: get_s(item, "last_error").map(str::to_owned),
        checked_at: get_n(item, "checked_at"),
        version: get_n(item, "version").unwrap_or(0).max(0) as u64,
    })
}

/// The full item of a record, as [`Registry::claim`] leaves it (for bulk loads).
pub fn encode(r: &Record) -> HashMap<String, AttributeValue> {
    let mut item = key(&r.stage, &r.variable);
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_string(), v);
    };
    put("owner_key", s(r.owner.key()));
    put("stack_id", s(&r.owner.stack_id));
    put("logical_id", s(&r.owner.logical_id));
    put("physical_id", s(&r.owner.physical_id));
    put("source_key", s(r.source.key().to_string()));
    put(
        "source",
        s(serde_json::to_string(&r.source).unwrap_or_default()),
    );
    put("api_kind", s(r.stage.kind.as_str()));
    put("api_id", s(&r.stage.api_id));
    put("stage_name", s(&r.stage.stage));
    put("var_name", s(&r.variable));
    put("created_stage", AttributeValue::Bool(r.created_stage));
    put("version", n(r.version.max(1)));
    if let Some(v) = &r.value {
        put("value", s(v));
    }
    if let Some(at) = r.written_at {
        put("written_at", n(at));
    }
    if let Some(via) = &r.via {
        put("via_key", s(via.to_string()));
    }
    if let Some(e) = &r.last_error {
        put("last_error", s(e));
    }
    if let Some(at) = r.checked_at {
        put("checked_at", n(at));
    }
    item
}

/// A transaction item that could not be built (a required field missing).
fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError {
        service: SERVICE,
        operation: "TransactWriteItems",
        kind: ErrorKind::Other,
        code: None,
        message: Some(e.to_string()),
        source: Some(Box::new(e)),
    }
}

impl DynamoRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRegistry {
            client,
            table: table.into(),
        }
    }

    fn claim_update(&self, r: &Record) -> Result<Update, AwsError> {
        let mut set = vec![
            "owner_key = :ok",
            "stack_id = :sid",
            "logical_id = :lid",
            "physical_id = :pid",
            "source_key = :skey",
            "#source = :src",
            "api_kind = :kind",
            "api_id = :api",
            "stage_name = :stage",
            "var_name = :var",
            "created_stage = :cs",
            "version = if_not_exists(version, :zero) + :one",
        ];
        let mut remove = vec!["last_error"];
        let mut values = HashMap::from([
            (":ok".to_string(), s(r.owner.key())),
            (":sid".to_string(), s(&r.owner.stack_id)),
            (":lid".to_string(), s(&r.owner.logical_id)),
            (":pid".to_string(), s(&r.owner.physical_id)),
            (":skey".to_string(), s(r.source.key().to_string())),
            (
                ":src".to_string(),
                s(serde_json::to_string(&r.source).unwrap_or_default()),
            ),
            (":kind".to_string(), s(r.stage.kind.as_str())),
            (":api".to_string(), s(&r.stage.api_id)),
            (":stage".to_string(), s(&r.stage.stage)),
            (":var".to_string(), s(&r.variable)),
            (":cs".to_string(), AttributeValue::Bool(r.created_stage)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        match (&r.value, r.written_at) {
            (Some(v), Some(at)) => {
                set.push("#value = :v");
                set.push("written_at = :at");
                values.insert(":v".into(), s(v));
                values.insert(":at".into(), n(at));
            }
            _ => remove.extend(["#value", "written_at"]),
        }
        match &r.via {
            Some(via) => {
                set.push("via_key = :via");
                values.insert(":via".into(), s(via.to_string()));
            }
            None => remove.push("via_key"),
        }
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&r.stage, &r.variable)))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression("attribute_not_exists(pk) OR owner_key = :ok")
            .expression_attribute_names("#source", "source")
            .expression_attribute_names("#value", "value")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)
    }

    fn release_delete(&self, r: &Record) -> Result<Delete, AwsError> {
        Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&r.stage, &r.variable)))
            .condition_expression("attribute_not_exists(pk) OR physical_id = :pid")
            .expression_attribute_values(":pid", s(&r.owner.physical_id))
            .build()
            .map_err(build_error)
    }

    /// After a cancelled claim: name the owner holding one of the variables.
    async fn find_conflict(&self, put: &[Record]) -> Result<Option<RegistryError>, RegistryError> {
        for r in put {
            if let Some(existing) = self.get(&r.stage, &r.variable).await? {
                if existing.owner.key() != r.owner.key() {
                    return Ok(Some(RegistryError::Owned {
                        variable: r.variable.clone(),
                        stage: r.stage.to_string(),
                        owner: existing.owner.to_string(),
                    }));
                }
            }
        }
        Ok(None)
    }

    async fn query(
        &self,
        index: Option<&str>,
        key_name: &str,
        key_value: &str,
    ) -> Result<Vec<Record>, RegistryError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            // The table itself answers consistently; indexes cannot.
            .consistent_read(index.is_none())
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", key_name)
            .expression_attribute_values(":k", s(key_value))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(SERVICE, "Query", e))?;
            for item in page.items() {
                out.push(decode(item)?);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Registry for DynamoRegistry {
    #[instrument(skip_all, fields(put = put.len(), release = release.len()))]
    async fn claim(&self, put: &[Record], release: &[Record]) -> Result<(), RegistryError> {
        let mut actions = Vec::with_capacity(put.len() + release.len());
        for r in put {
            actions.push(
                TransactWriteItem::builder()
                    .update(self.claim_update(r)?)
                    .build(),
            );
        }
        for r in release {
            actions.push(
                TransactWriteItem::builder()
                    .delete(self.release_delete(r)?)
                    .build(),
            );
        }
        for chunk in actions.chunks(MAX_TRANSACTION) {
            if let Err(e) = self
                .client
                .transact_write_items()
                .set_transact_items(Some(chunk.to_vec()))
                .send()
                .await
            {
                let e = sdk_error(SERVICE, "TransactWriteItems", e);
                if e.code.as_deref() == Some("TransactionCanceledException")
                    || e.is(ErrorKind::ConditionFailed)
                {
                    if let Some(conflict) = self.find_conflict(put).await? {
                        return Err(conflict);
                    }
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    #[instrument(skip_all, fields(records = records.len()))]
    async fn release(&self, records: &[Record]) -> Result<usize, RegistryError> {
        let mut removed = 0;
        for r in records {
            let res = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(&r.stage, &r.variable)))
                .condition_expression("physical_id = :pid")
                .expression_attribute_values(":pid", s(&r.owner.physical_id))
                .send()
                .await;
            match res {
                Ok(_) => removed += 1,
                Err(e) => {
                    let e = sdk_error(SERVICE, "DeleteItem", e);
                    if !e.is(ErrorKind::ConditionFailed) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(removed)
    }

    #[instrument(skip(self))]
    async fn get(&self, stage: &StageRef, variable: &str) -> Result<Option<Record>, RegistryError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(stage, variable)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetItem", e))?;
        out.item().map(decode).transpose()
    }

    async fn by_owner(&self, owner_key: &str) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-owner"), "owner_key", owner_key).await
    }

    async fn by_source(&self, key: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-source"), "source_key", &key.to_string())
            .await
    }

    async fn by_via(&self, via: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-via"), "via_key", &via.to_string())
            .await
    }

    async fn by_stage(&self, stage: &StageRef) -> Result<Vec<Record>, RegistryError> {
        self.query(None, "pk", &stage_pk(stage)).await
    }

    #[instrument(skip(self))]
    async fn all(&self) -> Result<Vec<Record>, RegistryError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(SERVICE, "Scan", e))?;
            for item in page.items() {
                out.push(decode(item)?);
            }
        }
        Ok(out)
    }

    #[instrument(skip_all, fields(stage = %record.stage, variable = %record.variable))]
    async fn record_sync(
        &self,
        record: &Record,
        update: &SyncUpdate,
    ) -> Result<bool, RegistryError> {
        let mut set = vec!["checked_at = :at", "version = version + :one"];
        let mut remove = Vec::new();
        let mut values = HashMap::from([
            (":at".to_string(), n(update.at)),
            (":one".to_string(), n(1)),
            (":ver".to_string(), n(record.version)),
        ]);
        let mut names = HashMap::new();
        if let Some(v) = &update.value {
            set.push("#value = :v");
            set.push("written_at = :at");
            values.insert(":v".into(), s(v));
            names.insert("#value".to_string(), "value".to_string());
        }
        if let Some(via) = &update.via {
            set.push("via_key = :via");
            values.insert(":via".into(), s(via.to_string()));
        }
        match &update.error {
            Some(e) => {
                set.push("last_error = :err");
                values.insert(":err".into(), s(e));
            }
            None => remove.push("last_error"),
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&record.stage, &record.variable)))
            .update_expression(expr)
            .condition_expression("version = :ver")
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = sdk_error(SERVICE, "UpdateItem", e);
                if e.is(ErrorKind::ConditionFailed) {
                    Ok(false)
                } else {
                    Err(e.into())
                }
            }
        }
    }
}
