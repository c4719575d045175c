//! The registry: claims conditional on the owner, releases on the physical id, re-sync
//! writes on the version.

use async_trait::async_trait;

use super::World;
use crate::domain::{Owner, Source, SourceKey, StageRef};
use crate::ports::{op, ClaimTerms, Record, Registry, RegistryError, SyncUpdate};

fn key(r: &Record) -> (StageRef, String) {
    (r.stage.clone(), r.variable.clone())
}

fn owned_error(held: &Record, r: &Record) -> RegistryError {
    RegistryError::Owned {
        variable: r.variable.clone(),
        stage: r.stage.to_string(),
        owner: held.owner.clone(),
    }
}

#[async_trait]
impl Registry for World {
    async fn claim(&self, put: &[Record], terms: &ClaimTerms) -> Result<(), RegistryError> {
        let mut s = self.call(op::CLAIM)?;
        for r in put {
            if let Some(at) = s.cancelled.get(&r.owner.key()) {
                if *at > terms.started_ms {
                    return Err(RegistryError::Cancelled {
                        owner_key: r.owner.key(),
                    });
                }
            }
            if let Some(held) = s.registry.get(&key(r)) {
                let key = held.owner.key();
                if key != r.owner.key() && terms.takeover.as_ref() != Some(&key) {
                    return Err(owned_error(held, r));
                }
            }
        }
        for r in put {
            let old = s.registry.get(&key(r));
            let record = Record {
                version: old.map_or(r.version, |o| o.version) + 1,
                checked_at: old.and_then(|o| o.checked_at),
                last_error: None,
                ..r.clone()
            };
            s.registry.insert(key(r), record);
        }
        Ok(())
    }

    async fn cancel(&self, owner_key: &str, at_ms: i64) -> Result<(), RegistryError> {
        let mut s = self.call(op::CANCEL)?;
        let at = s.cancelled.entry(owner_key.to_string()).or_insert(at_ms);
        *at = (*at).max(at_ms);
        Ok(())
    }

    async fn cancelled(&self, owner_key: &str) -> Result<Option<i64>, RegistryError> {
        Ok(self.call(op::CANCELLED)?.cancelled.get(owner_key).copied())
    }

    async fn release(&self, records: &[Record]) -> Result<usize, RegistryError> {
        let mut s = self.call(op::RELEASE)?;
        let mut removed = 0;
        for r in records {
            if s.registry.get(&key(r)).map(|h| &h.owner.physical_id) == Some(&r.owner.physical_id) {
                s.registry.remove(&key(r));
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn get(&self, stage: &StageRef, variable: &str) -> Result<Option<Record>, RegistryError> {
        let s = self.call(op::GET_RECORD)?;
        Ok(s.registry
            .get(&(stage.clone(), variable.to_string()))
            .cloned())
    }

    async fn by_owner(&self, owner_key: &str) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_OWNER, |r| r.owner.key() == owner_key)
    }

    async fn by_source(&self, source_key: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_SOURCE, |r| r.source.key() == *source_key)
    }

    async fn by_via(&self, via: &SourceKey) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_VIA, |r| r.via.as_ref() == Some(via))
    }

    async fn by_stage(&self, stage: &StageRef) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_STAGE, |r| &r.stage == stage)
    }

    async fn by_stack(&self, stack_id: &str) -> Result<Vec<Record>, RegistryError> {
        self.select(op::BY_STACK, |r| r.owner.stack_id == stack_id)
    }

    async fn all(&self) -> Result<Vec<Record>, RegistryError> {
        self.select(op::ALL_RECORDS, |_| true)
    }

    /// Pages in an order like Scan's: a stage's records together, stages in the order of a
    /// hash of their names, so that the stages of one API are spread over the pages.
    async fn stage_page(
        &self,
        after: Option<&crate::ports::PageKey>,
    ) -> Result<crate::ports::StagePage, RegistryError> {
        let s = self.call(op::STAGE_PAGE)?;
        let scan_key = |stage: &str, variable: &str| {
            let hash = stage.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (hash, stage.to_string(), variable.to_string())
        };
        let mut keys: Vec<_> = s
            .registry
            .keys()
            .map(|(stage, variable)| (scan_key(&stage.to_string(), variable), stage))
            .collect();
        keys.sort();
        let from = after.map(|k| scan_key(&k.pk, &k.sk));
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|(k, _)| from.as_ref().is_none_or(|from| k > from))
            .take(crate::ports::PAGE_KEYS + 1)
            .collect();
        let more = keys.len() > crate::ports::PAGE_KEYS;
        let keys = &keys[..keys.len().min(crate::ports::PAGE_KEYS)];
        let mut page = crate::ports::StagePage::default();
        for (_, stage) in keys {
            if page.stages.last() != Some(*stage) {
                page.stages.push((*stage).clone());
            }
        }
        page.next = more.then(|| {
            let ((_, pk, sk), _) = &keys[keys.len() - 1];
            crate::ports::PageKey {
                pk: pk.clone(),
                sk: sk.clone(),
            }
        });
        Ok(page)
    }

    async fn record_sync(
        &self,
        record: &Record,
        update: &SyncUpdate,
    ) -> Result<bool, RegistryError> {
        let mut s = self.call(op::RECORD_SYNC)?;
        let Some(held) = s.registry.get_mut(&key(record)) else {
            return Ok(false);
        };
        if held.version != record.version {
            return Ok(false);
        }
        held.version += 1;
        held.checked_at = Some(update.at);
        if let Some(v) = &update.value {
            held.value = Some(v.clone());
            held.written_at = Some(update.at);
        }
        if let Some(via) = &update.via {
            held.via = Some(via.clone());
        }
        held.last_error = update.error.clone();
        Ok(true)
    }
}

impl World {
    fn select(
        &self,
        operation: &'static str,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Vec<Record>, RegistryError> {
        let s = self.call(operation)?;
        Ok(s.registry.values().filter(|r| keep(r)).cloned().collect())
    }
}

/// A record of `variable` on `stage`, fed by `source`, as a first claim stores it: owned by
/// resource `l` of stack `s` (physical id `p`), nothing written or checked yet.
pub fn record(stage: StageRef, variable: &str, source: Source) -> Record {
    Record {
        stage,
        variable: variable.into(),
        owner: Owner {
            stack_id: "s".into(),
            logical_id: "l".into(),
            physical_id: "p".into(),
        },
        source,
        value: None,
        written_at: None,
        via: None,
        created_stage: false,
        last_error: None,
        checked_at: None,
        version: 1,
    }
}
