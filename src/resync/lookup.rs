//! Lookup: the bindings a trigger can affect, from the registry's indexes (by source, or by the
//! load balancer a value currently points at), never by scanning every API.

use std::collections::BTreeSet;

use super::Trigger;
use crate::domain::SourceKey;
use crate::ports::{Record, RegistryError};
use crate::Ports;

/// The bindings a trigger can affect, without duplicates.
pub async fn affected(ports: &Ports, trigger: &Trigger) -> Result<Vec<Record>, RegistryError> {
    let mut records = match trigger {
        Trigger::Stack(name) => ports.registry.by_source(&SourceKey::stack(name)).await?,
        Trigger::LoadBalancer { name, .. } => {
            let key = SourceKey::load_balancer(name);
            let mut r = ports.registry.by_source(&key).await?;
            r.extend(ports.registry.by_via(&key).await?);
            r
        }
        Trigger::EcsService { cluster, service } => {
            ports
                .registry
                .by_source(&SourceKey::ecs(cluster, service))
                .await?
        }
        Trigger::Everything => ports.registry.all().await?,
        Trigger::Ignored(_) => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert((r.stage.clone(), r.variable.clone())));
    Ok(records)
}
