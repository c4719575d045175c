//! Lookup: the bindings a trigger can affect, from the registry's indexes (by source, or by the
//! load balancer a value currently points at), never by scanning every API.

use std::collections::BTreeSet;

use super::trigger::{Origin, ENDED_STACK_STATUSES};
use super::{Summary, Trigger};
use crate::domain::SourceKey;
use crate::ports::{Record, RegistryError};
use crate::Ports;

/// The bindings a trigger in the hub's own account and region can affect, without duplicates.
pub async fn affected(ports: &Ports, trigger: &Trigger) -> Result<Vec<Record>, RegistryError> {
    affected_from(ports, trigger, &Origin::default()).await
}

/// The bindings a trigger from `origin` can affect (those fed from that account and region),
/// without duplicates.
pub async fn affected_from(
    ports: &Ports,
    trigger: &Trigger,
    origin: &Origin,
) -> Result<Vec<Record>, RegistryError> {
    let at = |key: SourceKey| {
        ports.sources.key_of_event(
            key,
            origin.account.as_deref(),
            origin.region.as_deref(),
            &ports.region,
        )
    };
    let mut records = match trigger {
        Trigger::Stack(name) => {
            ports
                .registry
                .by_source(&at(SourceKey::stack(name)))
                .await?
        }
        Trigger::StackEnded { stack_id, name } => {
            let mut r = ports.registry.by_stack(stack_id).await?;
            r.extend(
                ports
                    .registry
                    .by_source(&at(SourceKey::stack(name)))
                    .await?,
            );
            r
        }
        Trigger::LoadBalancer { name, .. } => {
            let key = at(SourceKey::load_balancer(name));
            let mut r = ports.registry.by_source(&key).await?;
            r.extend(ports.registry.by_via(&key).await?);
            r
        }
        Trigger::EcsService { cluster, service } => {
            ports
                .registry
                .by_source(&at(SourceKey::ecs(cluster, service)))
                .await?
        }
        Trigger::Everything => ports.registry.all().await?,
        Trigger::Ignored(_) => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert((r.stage.clone(), r.variable.clone())));
    Ok(records)
}

/// Whether a stack is a CloudFormation stack that can be asked for (bindings made by the CLI
/// have owners of their own).
fn is_stack_arn(stack_id: &str) -> bool {
    stack_id.starts_with("arn:") && stack_id.contains(":cloudformation:")
}

/// The owning stacks among these records that have ended (deleted, rolled back after a failed
/// create, or unknown to CloudFormation), so that what they own is released even where no
/// Delete ever came. A stack-ended trigger names its stack; the full reconcile asks
/// CloudFormation once per owning stack. A stack that cannot be asked about is kept, and the
/// failure reported.
pub async fn ended_owners(
    ports: &Ports,
    trigger: &Trigger,
    records: &[Record],
    summary: &mut Summary,
) -> BTreeSet<String> {
    match trigger {
        Trigger::StackEnded { stack_id, .. } => BTreeSet::from([stack_id.clone()]),
        Trigger::Everything => {
            let owners: BTreeSet<&str> = records
                .iter()
                .map(|r| r.owner.stack_id.as_str())
                .filter(|s| is_stack_arn(s))
                .collect();
            let mut ended = BTreeSet::new();
            for stack in owners {
                match ports.outputs.stack_status(stack).await {
                    Ok(None) => {
                        ended.insert(stack.to_string());
                    }
                    Ok(Some(status)) if ENDED_STACK_STATUSES.contains(&status.as_str()) => {
                        ended.insert(stack.to_string());
                    }
                    Ok(Some(_)) => {}
                    Err(e) => summary.fail(format!("stack {stack}"), None, &e),
                }
            }
            ended
        }
        _ => BTreeSet::new(),
    }
}
