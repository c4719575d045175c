//! The registry in DynamoDB.
//!
//! One item per bound stage variable, its layout in [`item`]. Three sparse indexes answer the
//! questions stagewire asks: `by-source` (which bindings does an event about this stack, service
//! or load balancer affect), `by-via` (which bindings currently point at this load balancer) and
//! `by-owner` (what does this custom resource own). Every write is conditional: claims on the
//! owner, re-sync records on the item's version.

pub mod item;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use self::item::{decode, key, s, stage_pk, Attr};
use super::sdk_error;
use crate::domain::{SourceKey, StageRef};
use crate::ports::{AwsError, ErrorKind, Record, Registry, RegistryError, SyncUpdate};

const SERVICE: &str = "dynamodb";
/// DynamoDB's limit of actions in one transaction.
const MAX_TRANSACTION: usize = 100;

pub struct DynamoRegistry {
    client: Client,
    table: String,
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
        let mut parts = item::claim(r);
        let condition = item::claim_condition(r, &mut parts);
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&r.stage, &r.variable)))
            .update_expression(parts.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .build()
            .map_err(build_error)
    }

    fn release_delete(&self, r: &Record) -> Result<Delete, AwsError> {
        Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&r.stage, &r.variable)))
            .condition_expression("attribute_not_exists(#pk) OR #physical_id = :physical_id")
            .expression_attribute_names("#pk", Attr::Pk.name())
            .expression_attribute_names("#physical_id", Attr::PhysicalId.name())
            .expression_attribute_values(":physical_id", s(&r.owner.physical_id))
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
        key: Attr,
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
            .expression_attribute_names("#k", key.name())
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
                .condition_expression("#physical_id = :physical_id")
                .expression_attribute_names("#physical_id", Attr::PhysicalId.name())
                .expression_attribute_values(":physical_id", s(&r.owner.physical_id))
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
        self.query(Some("by-owner"), Attr::OwnerKey, owner_key)
            .await
    }

    async fn by_source(&self, key: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-source"), Attr::SourceKey, &key.to_string())
            .await
    }

    async fn by_via(&self, via: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-via"), Attr::ViaKey, &via.to_string())
            .await
    }

    async fn by_stage(&self, stage: &StageRef) -> Result<Vec<Record>, RegistryError> {
        self.query(None, Attr::Pk, &stage_pk(stage)).await
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
        let (parts, condition) = item::sync(record, update);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&record.stage, &record.variable)))
            .update_expression(parts.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
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
