//! The registry claim of a binding's variables.

use std::time::Duration;

use super::BindingError;
use crate::domain::Owner;
use crate::ports::{ClaimTerms, ErrorKind, Record, RegistryError};
use crate::Ports;

/// The most variables one claim transaction holds (DynamoDB's 100 actions, one of them the
/// cancellation check).
const MAX_ONE_TRANSACTION: usize = 99;

/// Attempts at a claim that concurrent transactions keep cancelling.
const CLAIM_ATTEMPTS: u32 = 4;

/// Claim the records' variables. Another owner's claim fails the call with a Reason naming it,
/// unless that owner is this resource under a logical id that left its stack's template (a
/// rename: CloudFormation creates the new logical id during the update and deletes the old one
/// only in cleanup). Transient transaction conflicts are tried again.
///
/// A claim of more than one transaction (100 variables) that fails may have partly landed: what
/// it claimed anew (not in `prior`) is released (nothing was written to the stage).
pub(super) async fn claim(
    ports: &Ports,
    owner: &Owner,
    records: &[Record],
    prior: &[Record],
    started_ms: i64,
) -> Result<(), BindingError> {
    let claimed = claim_once(ports, owner, records, started_ms).await;
    if claimed.is_err() && records.len() > MAX_ONE_TRANSACTION {
        let new: Vec<Record> = records
            .iter()
            .filter(|r| !prior.iter().any(|p| p.variable == r.variable))
            .cloned()
            .collect();
        if let Err(e) = ports.registry.release(&new).await {
            tracing::warn!(error = %e, "could not release a partly landed claim");
        }
    }
    claimed
}

/// One claim, tried again while concurrent transactions cancel it.
async fn claim_once(
    ports: &Ports,
    owner: &Owner,
    records: &[Record],
    started_ms: i64,
) -> Result<(), BindingError> {
    let mut terms = ClaimTerms {
        started_ms,
        takeover: None,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ports.registry.claim(records, &terms).await {
            Ok(()) => return Ok(()),
            Err(RegistryError::Owned {
                variable,
                stage,
                owner: holder,
            }) => {
                if terms.takeover.is_none() && renamed(ports, owner, &holder).await? {
                    tracing::info!(from = %holder, to = %owner, "taking over the variables of a renamed binding");
                    terms.takeover = Some(holder.key());
                    continue;
                }
                return Err(RegistryError::Owned {
                    variable,
                    stage,
                    owner: holder,
                }
                .into());
            }
            Err(RegistryError::Aws(e)) if e.is(ErrorKind::Conflict) && attempt < CLAIM_ATTEMPTS => {
                let wait = Duration::from_millis(fastrand::u64(50..200) * u64::from(attempt));
                tracing::info!(
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "claim conflicted with a concurrent transaction: trying again"
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `holder` is `owner`'s resource under a former logical id: same stack, and that
/// logical id is no longer in the stack's template.
async fn renamed(ports: &Ports, owner: &Owner, holder: &Owner) -> Result<bool, BindingError> {
    if holder.stack_id != owner.stack_id || holder.logical_id == owner.logical_id {
        return Ok(false);
    }
    let resources = ports
        .outputs
        .template_resources(&owner.stack_id)
        .await
        .map_err(|e| BindingError::Registry(e.into()))?;
    Ok(resources.is_some_and(|r| !r.contains(&holder.logical_id)))
}
