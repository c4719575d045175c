//! The registry in DynamoDB.
//!
//! One item per bound stage variable, its layout in [`item`]. Three sparse indexes answer the
//! questions stagewire asks: `by-source` (which bindings does an event about this stack, service
//! or load balancer affect), `by-via` (which bindings currently point at this load balancer or VPC link) and
//! `by-owner` (what does this custom resource own), and `by-stack` (what do the bindings of a
//! stack own). Every write is conditional: claims on the owner and the owner's cancellation
//! marker, re-sync records on the item's version.

pub mod item;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use tracing::instrument;

use self::item::{decode, key, marker, parse_stage_pk, s, stage_pk, Attr};
use super::sdk_error;
use crate::domain::{SourceKey, StageRef};
use crate::ports::{
    AwsError, ClaimTerms, ErrorKind, PageKey, Record, Registry, RegistryError, StagePage,
    SyncUpdate, PAGE_KEYS,
};

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

    fn claim_update(&self, r: &Record, takeover: Option<&str>) -> Result<Update, AwsError> {
        let mut parts = item::claim(r);
        let condition = item::claim_condition(r, takeover, &mut parts);
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

    /// The check that no cancellation of the owner's Creates came after `started_ms`.
    fn not_cancelled(&self, owner_key: &str, started_ms: i64) -> Result<ConditionCheck, AwsError> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(marker::key(owner_key)))
            .condition_expression("attribute_not_exists(#pk) OR #at < :started")
            .expression_attribute_names("#pk", Attr::Pk.name())
            .expression_attribute_names("#at", marker::CANCELLED_AT)
            .expression_attribute_values(":started", item::n(started_ms))
            .build()
            .map_err(build_error)
    }

    /// After a claim whose condition failed: name the owner holding one of the variables.
    async fn find_conflict(
        &self,
        put: &[Record],
        terms: &ClaimTerms,
    ) -> Result<Option<RegistryError>, RegistryError> {
        for r in put {
            if let Some(existing) = self.get(&r.stage, &r.variable).await? {
                let key = existing.owner.key();
                if key != r.owner.key() && terms.takeover.as_ref() != Some(&key) {
                    return Ok(Some(RegistryError::Owned {
                        variable: r.variable.clone(),
                        stage: r.stage.to_string(),
                        owner: existing.owner,
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
    /// One transaction per [`MAX_TRANSACTION`] - 1 records, each with the check of the owner's
    /// cancellation marker. A binding has at most 100 variables (API Gateway's limit per stage),
    /// so a claim is one transaction but for a binding of exactly 100; were a later transaction
    /// to fail, the caller releases what the call claimed anew.
    #[instrument(skip_all, fields(put = put.len()))]
    async fn claim(&self, put: &[Record], terms: &ClaimTerms) -> Result<(), RegistryError> {
        let Some(first) = put.first() else {
            return Ok(());
        };
        let owner_key = first.owner.key();
        for chunk in put.chunks(MAX_TRANSACTION - 1) {
            let mut actions = Vec::with_capacity(chunk.len() + 1);
            actions.push(
                TransactWriteItem::builder()
                    .condition_check(self.not_cancelled(&owner_key, terms.started_ms)?)
                    .build(),
            );
            for r in chunk {
                actions.push(
                    TransactWriteItem::builder()
                        .update(self.claim_update(r, terms.takeover.as_deref())?)
                        .build(),
                );
            }
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await;
            let Err(err) = res else { continue };
            let reasons: Vec<Option<String>> = err
                .as_service_error()
                .and_then(|e| match e {
                    TransactWriteItemsError::TransactionCanceledException(c) => Some(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .unwrap_or_default();
            let mut e = sdk_error(SERVICE, "TransactWriteItems", err);
            match cancellation(&reasons) {
                Cancellation::Marker => return Err(RegistryError::Cancelled { owner_key }),
                Cancellation::Condition => {
                    if let Some(conflict) = self.find_conflict(put, terms).await? {
                        return Err(conflict);
                    }
                }
                // Another transaction touched the same items: worth another try.
                Cancellation::Conflict => e.kind = ErrorKind::Conflict,
                Cancellation::Other => {}
            }
            return Err(e.into());
        }
        Ok(())
    }

    #[instrument(skip(self))]
    async fn cancel(&self, owner_key: &str, at_ms: i64) -> Result<(), RegistryError> {
        let [(at, at_v), (expires, expires_v)] = marker::values(at_ms);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(marker::key(owner_key)))
            .update_expression("SET #at = :at, #expires = :expires")
            .condition_expression("attribute_not_exists(#at) OR #at < :at")
            .expression_attribute_names("#at", marker::CANCELLED_AT)
            .expression_attribute_names("#expires", marker::EXPIRES_AT)
            .expression_attribute_values(at, at_v)
            .expression_attribute_values(expires, expires_v)
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                let e = sdk_error(SERVICE, "UpdateItem", e);
                // A later cancellation is already recorded.
                if e.is(ErrorKind::ConditionFailed) {
                    Ok(())
                } else {
                    Err(e.into())
                }
            })
    }

    #[instrument(skip(self))]
    async fn cancelled(&self, owner_key: &str) -> Result<Option<i64>, RegistryError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(marker::key(owner_key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "GetItem", e))?;
        Ok(out
            .item()
            .and_then(|i| i.get(marker::CANCELLED_AT))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()))
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

    async fn by_stack(&self, stack_id: &str) -> Result<Vec<Record>, RegistryError> {
        self.query(Some("by-stack"), Attr::StackId, stack_id).await
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
            for item in page.items().iter().filter(|i| item::is_record(i)) {
                out.push(decode(item)?);
            }
        }
        Ok(out)
    }

    /// One page of the table's keys (Scan, keys only); items that are not records (the
    /// cancellation markers) are skipped.
    #[instrument(skip(self))]
    async fn stage_page(&self, after: Option<&PageKey>) -> Result<StagePage, RegistryError> {
        let start = after.map(|k| {
            HashMap::from([
                (Attr::Pk.name().to_string(), s(&k.pk)),
                (Attr::Sk.name().to_string(), s(&k.sk)),
            ])
        });
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .projection_expression("#pk, #sk")
            .expression_attribute_names("#pk", Attr::Pk.name())
            .expression_attribute_names("#sk", Attr::Sk.name())
            .set_exclusive_start_key(start)
            .limit(PAGE_KEYS as i32)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "Scan", e))?;
        let text = |i: &item::Item, a: Attr| {
            i.get(a.name())
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let mut page = StagePage::default();
        for stage in out
            .items()
            .iter()
            .filter_map(|i| parse_stage_pk(&text(i, Attr::Pk)))
        {
            if page.stages.last() != Some(&stage) {
                page.stages.push(stage);
            }
        }
        page.next = out.last_evaluated_key().map(|k| PageKey {
            pk: text(k, Attr::Pk),
            sk: text(k, Attr::Sk),
        });
        Ok(page)
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

/// Why a claim's transaction was cancelled, from its cancellation reasons (one per action, the
/// marker check first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancellation {
    /// The owner's Creates were cancelled after the claim started.
    Marker,
    /// A variable is held by another owner.
    Condition,
    /// A concurrent transaction touched the same items (`TransactionConflict`).
    Conflict,
    Other,
}

fn cancellation(reasons: &[Option<String>]) -> Cancellation {
    let code = |i: usize| reasons.get(i).and_then(|c| c.as_deref());
    if code(0) == Some("ConditionalCheckFailed") {
        return Cancellation::Marker;
    }
    let codes: Vec<&str> = reasons.iter().flatten().map(String::as_str).collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Cancellation::Condition
    } else if codes.contains(&"TransactionConflict") {
        Cancellation::Conflict
    } else if reasons.is_empty() {
        // No reasons parsed: look for the holder.
        Cancellation::Condition
    } else {
        Cancellation::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<Option<String>> {
        codes
            .iter()
            .map(|c| (*c != "None").then(|| c.to_string()))
            .collect()
    }

    #[test]
    fn cancellation_reasons() {
        assert_eq!(
            cancellation(&reasons(&["ConditionalCheckFailed", "None"])),
            Cancellation::Marker
        );
        assert_eq!(
            cancellation(&reasons(&["None", "None", "ConditionalCheckFailed"])),
            Cancellation::Condition
        );
        assert_eq!(
            cancellation(&reasons(&["None", "TransactionConflict"])),
            Cancellation::Conflict
        );
        assert_eq!(cancellation(&[]), Cancellation::Condition);
        assert_eq!(
            cancellation(&reasons(&["None", "ValidationError"])),
            Cancellation::Other
        );
    }
}
