//! VPC links, for the resolver: the link of a load balancer (`VpcLinkFor`), and the link
//! behind a value that is a link's id, as the switch rule sees it.

use super::{ResolveError, Resolved, Resolver};
use crate::domain::link::may_be_link_id;
use crate::domain::{LinkFamily, Place, Source, VpcLink};
use crate::plan::stage::Serving;
use crate::plan::switch::LinkState;
use crate::ports::LoadBalancer;

impl Resolver<'_> {
    /// The id of the one REST VPC link whose targets hold the load balancer `target` names.
    pub(super) async fn vpc_link_for(&mut self, target: &Source) -> Result<Resolved, ResolveError> {
        let inner = self.resolve_direct(target).await?;
        let at = target.place().cloned().unwrap_or_default();
        let lb = match inner.load_balancer {
            Some(lb) => lb,
            None if inner.value.starts_with("arn:") => {
                self.load_balancer(&at, &inner.value).await?
            }
            None => self
                .load_balancer_by_dns_at(&at, &inner.value)
                .await?
                .ok_or_else(|| ResolveError::NotALoadBalancer {
                    what: target.to_string(),
                    value: inner.value.clone(),
                })?,
        };
        let arn = lb
            .arn
            .clone()
            .ok_or_else(|| ResolveError::ClassicHasNoLink(lb.name.clone()))?;
        let links = self.rest_links().await?;
        let found: Vec<&VpcLink> = links
            .iter()
            .filter(|l| l.target_arns.contains(&arn))
            .collect();
        match found.as_slice() {
            [] => Err(ResolveError::NoVpcLink {
                load_balancer: lb.name,
                arn,
            }),
            [one] => Ok(Resolved {
                value: one.id.clone(),
                load_balancer: None,
                at: Place::default(),
                may_be_link: true,
            }),
            many => Err(ResolveError::SeveralVpcLinks {
                load_balancer: lb.name,
                links: many
                    .iter()
                    .map(|l| l.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The REST VPC links of the hub, listed once per invocation.
    async fn rest_links(&mut self) -> Result<&[VpcLink], ResolveError> {
        if self.rest_links.is_none() {
            self.rest_links = Some(self.ports.links.rest_links().await?);
        }
        Ok(self.rest_links.as_deref().unwrap_or_default())
    }

    /// The VPC link (REST, else v2) whose id is `id`, read once per invocation.
    pub async fn vpc_link(&mut self, id: &str) -> Result<Option<VpcLink>, ResolveError> {
        if let Some(link) = self.rest_links().await?.iter().find(|l| l.id == id) {
            return Ok(Some(link.clone()));
        }
        if !self.v2_links.contains_key(id) {
            let link = self.ports.links.v2_link(id).await?;
            self.v2_links.insert(id.to_string(), link);
        }
        Ok(self.v2_links[id].clone())
    }

    /// The target behind a value: the load balancer it is the DNS name of (`known` when the
    /// source resolved through it), else, when the value `may_be_link`, the VPC link it is the
    /// id of; `None` when neither.
    pub async fn target_of(
        &mut self,
        at: &Place,
        value: &str,
        known: Option<&LoadBalancer>,
        may_be_link: bool,
    ) -> Result<Option<Serving>, ResolveError> {
        let lb = match known {
            Some(lb) => Some(lb.clone()),
            None => self.load_balancer_by_dns_at(at, value).await?,
        };
        if let Some(lb) = lb {
            let healthy = self.has_healthy_targets_at(at, &lb).await?;
            return Ok(Some(Serving::new(lb.name, healthy)));
        }
        if !may_be_link || !may_be_link_id(value) {
            return Ok(None);
        }
        match self.vpc_link(value).await? {
            Some(link) => Ok(Some(self.link_target(&link).await?)),
            None => Ok(None),
        }
    }

    /// A VPC link as the switch rule sees it: its state and, for a REST link, whether its
    /// load balancer (in the hub's account and region) has a healthy target.
    async fn link_target(&mut self, link: &VpcLink) -> Result<Serving, ResolveError> {
        let home = Place::default();
        let (load_balancer, healthy) = match (link.family, link.target_arns.first()) {
            (LinkFamily::Rest, Some(arn)) => match self.reach(&home).await?.elb.v2(arn).await? {
                Some(lb) => {
                    let healthy = self.has_healthy_targets_at(&home, &lb).await?;
                    (Some(lb.name), healthy)
                }
                None => (Some(arn.clone()), false),
            },
            (LinkFamily::Rest, None) => (None, false),
            (LinkFamily::V2, _) => (None, true),
        };
        let state = LinkState {
            status: link.status.clone(),
            message: link.status_message.clone(),
            load_balancer,
        };
        Ok(Serving::link(link.id.clone(), state, healthy))
    }
}
