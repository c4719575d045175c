//! Lookup: the bindings a trigger can affect, from the registry's indexes (by source, or by the
//! load balancer or VPC link a value currently points at), never by scanning every API.

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
        Trigger::VpcLinkDeleted { id } => {
            ports
                .registry
                .by_via(&at(SourceKey::VpcLink(id.clone())))
                .await?
        }
        Trigger::EcsService { cluster, service } => {
            ports
                .registry
                .by_source(&at(SourceKey::ecs(cluster, service)))
                .await?
        }
        Trigger::Everything => ports.registry.all().await?,
        Trigger::Ignored(_) | Trigger::Refused(_) => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert((r.stage.clone(), r.variable.clone())));
    Ok(records)
}

/// What CloudFormation says of a stack whose bindings a trigger would release.
#[derive(Debug)]
enum Verdict {
    /// `DELETE_COMPLETE`, `ROLLBACK_COMPLETE`, or no such stack: what it owned may go.
    Ended,
    /// The stack lives, in this status: everything it owns stays.
    Live(String),
    /// Not a stack of the hub's account and region (or not a stack ARN at all): bindings are
    /// owned only by the stacks whose requests the binding function verified here, so nothing
    /// of it is released.
    NotHere,
    /// CloudFormation could not be asked: kept, and the failure reported.
    Unknown(crate::ports::AwsError),
}

/// Ask CloudFormation, in the hub's account and region, whether `stack_id` has ended.
async fn verdict(ports: &Ports, stack_id: &str) -> Verdict {
    let place = Origin::of_stack(stack_id);
    let here = place.region.as_deref() == Some(ports.region.as_str())
        && match &ports.sources.account {
            Some(hub) => place.account.as_ref() == Some(hub),
            None => place.account.is_some(),
        };
    if !here {
        return Verdict::NotHere;
    }
    match ports.outputs.stack_status(stack_id).await {
        Ok(None) => Verdict::Ended,
        Ok(Some(status)) if ENDED_STACK_STATUSES.contains(&status.as_str()) => Verdict::Ended,
        Ok(Some(status)) => Verdict::Live(status),
        Err(e) => Verdict::Unknown(e),
    }
}

/// The owning stacks among these records that have ended (deleted, rolled back after a failed
/// create, or unknown to CloudFormation), so that what they own is released even where no
/// Delete ever came. An event saying a stack ended is a claim: CloudFormation is asked, once
/// per owning stack, whatever the trigger, and a live stack keeps everything (refused as a
/// security event when an event claimed otherwise). A stack that cannot be asked about is kept,
/// and the failure reported.
pub async fn ended_owners(
    ports: &Ports,
    trigger: &Trigger,
    records: &[Record],
    summary: &mut Summary,
) -> BTreeSet<String> {
    let claimed = match trigger {
        Trigger::StackEnded { stack_id, .. } => Some(stack_id.as_str()),
        Trigger::Everything => None,
        _ => return BTreeSet::new(),
    };
    let owners: BTreeSet<&str> = records
        .iter()
        .map(|r| r.owner.stack_id.as_str())
        .filter(|s| claimed.is_none_or(|c| c == *s))
        .collect();
    let mut ended = BTreeSet::new();
    for stack in owners {
        match verdict(ports, stack).await {
            Verdict::Ended => {
                ended.insert(stack.to_string());
            }
            Verdict::Live(status) if claimed.is_some() => summary.refuse(
                "ForgedStackEnded",
                format!("stack {stack}"),
                format!("the event says the stack ended, CloudFormation says {status}: nothing released"),
            ),
            Verdict::Live(_) | Verdict::NotHere => {}
            Verdict::Unknown(e) => summary.fail(format!("stack {stack}"), None, &e),
        }
    }
    ended
}
