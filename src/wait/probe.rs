//! What a wait reads again of the targets it holds a switch on, each round: a load
//! balancer's health and existence, a VPC link's state (and its load balancer's health).

use super::WaitError;
use crate::domain::{LinkFamily, LinkStatus, Place, VpcLink};
use crate::plan::switch::{self, Decision, LinkState, Target};
use crate::ports::{AwsError, LbFamily, LoadBalancer};
use crate::resolve::{ResolveError, Resolver};
use crate::Ports;

/// What a wait reads again of a target each round: a load balancer, or a VPC link (and the
/// load balancer a REST link targets).
#[derive(Debug, Clone)]
pub(super) enum Probe {
    Lb(LoadBalancer),
    Link(VpcLink),
}

impl Probe {
    pub(super) fn name(&self) -> &str {
        match self {
            Probe::Lb(lb) => &lb.name,
            Probe::Link(link) => &link.id,
        }
    }
}

/// What to read again of the target behind `value`: the VPC link, or the load balancer.
pub(super) async fn probe(
    resolver: &mut Resolver<'_>,
    at: &Place,
    value: &str,
    known: Option<LoadBalancer>,
    is_link: bool,
) -> Result<Option<Probe>, ResolveError> {
    if is_link {
        return Ok(resolver.vpc_link(value).await?.map(Probe::Link));
    }
    let lb = match known {
        Some(lb) => Some(lb),
        None => resolver.load_balancer_by_dns_at(at, value).await?,
    };
    Ok(lb.map(Probe::Lb))
}

/// The current target as the switch rule needs it: looked at only when the rule could hold,
/// and taken as serving when it cannot be read (the wait goes on, as it would without the
/// check).
pub(super) async fn current_now(
    ports: &Ports,
    at: &Place,
    current: &Probe,
    new: &Target,
) -> Option<Target> {
    if !switch::may_hold(Some(new)) {
        return None;
    }
    match look(ports, at, current).await {
        Ok(target) => Some(target),
        Err(_) => Some(Target::new(current.name(), true)),
    }
}

/// Whether the target still exists: one describe call by ARN (ELBv2) or name (classic), or
/// one read of the link. A failed call counts as existing: the wait goes on, as it would
/// without the check.
pub(super) async fn exists(ports: &Ports, at: &Place, probe: &Probe) -> bool {
    let found = match probe {
        Probe::Link(link) => read_link(ports, link).await.map(|l| l.is_some()),
        Probe::Lb(lb) => {
            let Ok(reached) = ports.reach(at).await else {
                return true;
            };
            let found = match (lb.family, &lb.arn) {
                (LbFamily::V2, Some(arn)) => reached.elb.v2(arn).await,
                (LbFamily::V2, None) => reached.elb.v2(&lb.name).await,
                (LbFamily::Classic, _) => reached.elb.classic(&lb.name).await,
            };
            found.map(|f| f.is_some())
        }
    };
    match found {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(target = %probe.name(), error = %error, "could not check that the target still exists");
            true
        }
    }
}

/// A fresh read of a VPC link.
async fn read_link(ports: &Ports, link: &VpcLink) -> Result<Option<VpcLink>, AwsError> {
    match link.family {
        LinkFamily::Rest => ports.links.rest_link(&link.id).await,
        LinkFamily::V2 => ports.links.v2_link(&link.id).await,
    }
}

/// A fresh look at a target (the resolver remembers answers; a wait must not): a load
/// balancer's health, or a VPC link's state and its load balancer's health. A link gone is
/// one that can never serve.
pub(super) async fn look(ports: &Ports, at: &Place, probe: &Probe) -> Result<Target, ResolveError> {
    let link = match probe {
        Probe::Lb(lb) => return Ok(Target::new(lb.name.clone(), serves(ports, at, lb).await?)),
        Probe::Link(link) => read_link(ports, link).await?,
    };
    let Some(link) = link else {
        let id = probe.name().to_string();
        let state = LinkState {
            status: LinkStatus::Other("DELETED".into()),
            message: Some(format!("VPC link {id} no longer exists")),
            load_balancer: None,
        };
        return Ok(Target::link(id, state, false));
    };
    let home = Place::default();
    let healthy = match (link.family, link.target_arns.first()) {
        (LinkFamily::Rest, Some(arn)) => {
            let health = ports.reach(&home).await?.elb.target_health(arn).await;
            health.map(|h| h.healthy > 0).unwrap_or(false)
        }
        (LinkFamily::Rest, None) => false,
        (LinkFamily::V2, _) => true,
    };
    let state = LinkState {
        status: link.status.clone(),
        message: link.status_message.clone(),
        load_balancer: link.target_arns.first().cloned(),
    };
    Ok(Target::link(link.id, state, healthy))
}

/// A fresh health check (the resolver remembers answers; a wait must not).
pub(super) async fn serves(
    ports: &Ports,
    at: &Place,
    lb: &LoadBalancer,
) -> Result<bool, ResolveError> {
    match (lb.family, &lb.arn) {
        (LbFamily::V2, Some(arn)) => {
            Ok(ports.reach(at).await?.elb.target_health(arn).await?.healthy > 0)
        }
        _ => Ok(true),
    }
}

/// Fail when `value` is the id of a VPC link that cannot serve.
pub(super) async fn refuse_broken(
    resolver: &mut Resolver<'_>,
    variable: &str,
    value: &str,
    link: bool,
) -> Result<(), WaitError> {
    if !link || !crate::domain::link::may_be_link_id(value) {
        return Ok(());
    }
    let check = |source| WaitError::Check {
        load_balancer: format!("VPC link {value}"),
        source,
    };
    let here = Place::default();
    let target = resolver.target_of(&here, value, None, true).await;
    match switch::decide(None, target.map_err(check)?.as_ref()) {
        Decision::Refuse(broken) => Err(WaitError::Refused {
            variable: variable.to_string(),
            broken,
        }),
        _ => Ok(()),
    }
}

/// The target behind `value` as the resolver finds it, a failure naming the load balancer
/// (or the value, when none is known).
pub(super) async fn target(
    resolver: &mut Resolver<'_>,
    at: &Place,
    value: &str,
    known: Option<LoadBalancer>,
    link: bool,
) -> Result<Option<Target>, WaitError> {
    let check = |what: &str| {
        let what = what.to_string();
        move |source| WaitError::Check {
            load_balancer: what,
            source,
        }
    };
    let known = match known {
        Some(lb) => Some(lb),
        None => (resolver.load_balancer_by_dns_at(at, value).await).map_err(check(value))?,
    };
    let name = known.as_ref().map_or(value, |lb| lb.name.as_str());
    let found = resolver.target_of(at, value, known.as_ref(), link).await;
    found.map_err(check(name))
}
