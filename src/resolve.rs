//! Resolving sources to the values stage variables get, each source at most once per
//! invocation.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{Place, Source, VpcLink};
use crate::plan::stage::{Gate, Observed};
use crate::ports::{EcsLoadBalancer, LbFamily, LoadBalancer, LoadBalancers, Record, SourcePorts};
use crate::Ports;

mod links;

/// What a source resolves to, and why it may not: facts the plan reads, defined with it.
pub use crate::plan::resolved::{ResolveError, Resolved};

/// Resolves sources through the ports, remembering every answer for the invocation.
pub struct Resolver<'a> {
    ports: &'a Ports,
    reached: HashMap<Place, SourcePorts>,
    stacks: HashMap<(Place, String), Option<BTreeMap<String, String>>>,
    done: HashMap<Source, Result<Resolved, ResolveError>>,
    inventory: HashMap<Place, Vec<LoadBalancer>>,
    health: HashMap<String, bool>,
    rest_links: Option<Vec<VpcLink>>,
    v2_links: HashMap<String, Option<VpcLink>>,
}

impl<'a> Resolver<'a> {
    pub fn new(ports: &'a Ports) -> Self {
        Resolver {
            ports,
            reached: HashMap::new(),
            stacks: HashMap::new(),
            done: HashMap::new(),
            inventory: HashMap::new(),
            health: HashMap::new(),
            rest_links: None,
            v2_links: HashMap::new(),
        }
    }

    pub async fn resolve(&mut self, source: &Source) -> Result<Resolved, ResolveError> {
        if let Some(r) = self.done.get(source) {
            return r.clone();
        }
        let at = source.place().cloned().unwrap_or_default();
        let r = self
            .resolve_uncached(source)
            .await
            .map_err(|e| self.elsewhere(&at, e));
        self.done.insert(source.clone(), r.clone());
        r
    }

    /// An error met at `at`, saying where when that is not the hub's own account and region.
    fn elsewhere(&self, at: &Place, error: ResolveError) -> ResolveError {
        if at.is_home() || matches!(error, ResolveError::Untrusted(_)) {
            return error;
        }
        let mut place = format!(
            "account {}, region {}",
            at.account().unwrap_or("(the hub's)"),
            at.region.as_deref().unwrap_or(&self.ports.region)
        );
        if let Some(role) = &at.role_arn {
            place.push_str(&format!(", as role {role}"));
        }
        ResolveError::Elsewhere {
            at: place,
            error: Box::new(error),
        }
    }

    /// The source ports at `at`, reached once per invocation.
    async fn reach(&mut self, at: &Place) -> Result<SourcePorts, ResolveError> {
        if let Some(p) = self.reached.get(at) {
            return Ok(p.clone());
        }
        let p = self.ports.reach(at).await?;
        self.reached.insert(at.clone(), p.clone());
        Ok(p)
    }

    async fn resolve_uncached(&mut self, source: &Source) -> Result<Resolved, ResolveError> {
        match source {
            Source::VpcLinkFor { target } => self.vpc_link_for(target).await,
            direct => self.resolve_direct(direct).await,
        }
    }

    /// A source that wraps no other.
    async fn resolve_direct(&mut self, source: &Source) -> Result<Resolved, ResolveError> {
        match source {
            Source::Literal { value } => Ok(Resolved {
                value: value.clone(),
                load_balancer: None,
                at: Place::default(),
                may_be_link: false,
            }),
            Source::StackOutput {
                stack,
                output_key,
                at,
            } => self.stack_output(at, stack, output_key).await,
            Source::LoadBalancer { name, at } => {
                let lb = self.load_balancer(at, name).await?;
                with_dns(lb, at, || format!("load balancer {name}"))
            }
            Source::EcsService {
                cluster,
                service,
                container_name,
                container_port,
                at,
            } => {
                self.ecs_service(
                    at,
                    cluster,
                    service,
                    container_name.as_deref(),
                    *container_port,
                )
                .await
            }
            // A link of a link's id: no load balancer behind it.
            Source::VpcLinkFor { .. } => Err(ResolveError::NotALoadBalancer {
                what: source.to_string(),
                value: String::new(),
            }),
        }
    }

    /// An output of a stack, from one read of the stack's outputs per invocation.
    async fn stack_output(
        &mut self,
        at: &Place,
        stack: &str,
        output_key: &str,
    ) -> Result<Resolved, ResolveError> {
        let key = (at.clone(), stack.to_string());
        if !self.stacks.contains_key(&key) {
            let outputs = self.reach(at).await?.outputs.outputs(stack).await?;
            self.stacks.insert(key.clone(), outputs);
        }
        let outputs = self.stacks[&key]
            .as_ref()
            .ok_or_else(|| ResolveError::StackNotFound(stack.to_string()))?;
        let value = outputs
            .get(output_key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ResolveError::OutputNotFound {
                stack: stack.to_string(),
                key: output_key.to_string(),
                available: if outputs.is_empty() {
                    "none".into()
                } else {
                    outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })?;
        Ok(Resolved {
            value: value.clone(),
            load_balancer: None,
            at: at.clone(),
            may_be_link: true,
        })
    }

    /// What the re-sync's plan needs to know of a record whose variable holds `current` now:
    /// the resolved value and, when it would change, the load balancers behind both values
    /// (looked up where the source is).
    pub async fn observe(&mut self, record: Record, current: Option<&str>) -> Observed {
        let resolved = self.resolve(&record.source).await;
        let gate = match &resolved {
            Ok(r) if current != Some(r.value.as_str()) => {
                let at = r.at.clone();
                let gate = self.gate(r, current).await;
                gate.map_err(|e| self.elsewhere(&at, e))
            }
            _ => Ok(Gate::default()),
        };
        Observed {
            record,
            resolved,
            gate,
        }
    }

    /// The target (load balancer or VPC link) behind the new value and whether it serves; the
    /// one behind the current value only when the switch rule could hold.
    async fn gate(&mut self, new: &Resolved, current: Option<&str>) -> Result<Gate, ResolveError> {
        let at = &new.at;
        let (known, link) = (new.load_balancer.as_ref(), new.may_be_link);
        let Some(new) = self.target_of(at, &new.value, known, link).await? else {
            return Ok(Gate::default());
        };
        let new = Some(new);
        let current = match current {
            Some(value) if crate::plan::switch::may_hold(new.as_ref()) => {
                self.target_of(at, value, None, link).await?
            }
            _ => None,
        };
        Ok(Gate { new, current })
    }

    /// The DNS name of the load balancer in front of an ECS service: the service's one
    /// attachment that matches the container given, then the load balancer it names.
    async fn ecs_service(
        &mut self,
        at: &Place,
        cluster: &str,
        service: &str,
        container_name: Option<&str>,
        container_port: Option<u16>,
    ) -> Result<Resolved, ResolveError> {
        let ports = self.reach(at).await?;
        let attachments = ports
            .ecs
            .load_balancers(cluster, service)
            .await?
            .ok_or_else(|| ResolveError::ServiceNotFound {
                cluster: cluster.to_string(),
                service: service.to_string(),
            })?;
        let without = || ResolveError::ServiceWithoutLoadBalancer {
            cluster: cluster.to_string(),
            service: service.to_string(),
        };
        let chosen = match matching(&attachments, container_name, container_port).as_slice() {
            [] if attachments.is_empty() => return Err(without()),
            [one] => *one,
            _ => {
                return Err(ResolveError::AmbiguousService {
                    cluster: cluster.to_string(),
                    service: service.to_string(),
                    candidates: attachments
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join("; "),
                })
            }
        };
        let lb = attached(ports.elb.as_ref(), chosen)
            .await?
            .ok_or_else(without)?;
        with_dns(lb, at, || {
            format!("load balancer of ECS service {service} in cluster {cluster}")
        })
    }

    /// An ELBv2 load balancer by name or ARN, else a classic one by name.
    async fn load_balancer(
        &mut self,
        at: &Place,
        name: &str,
    ) -> Result<LoadBalancer, ResolveError> {
        let elb = self.reach(at).await?.elb;
        if let Some(lb) = elb.v2(name).await? {
            return Ok(lb);
        }
        if !name.starts_with("arn:") {
            if let Some(lb) = elb.classic(name).await? {
                return Ok(lb);
            }
        }
        Err(ResolveError::LoadBalancerNotFound(name.to_string()))
    }

    /// The load balancer of the hub's account and region whose DNS name is `dns`, from one
    /// listing of its load balancers per invocation.
    pub async fn load_balancer_by_dns(
        &mut self,
        dns: &str,
    ) -> Result<Option<LoadBalancer>, ResolveError> {
        self.load_balancer_by_dns_at(&Place::default(), dns).await
    }

    /// As [`Resolver::load_balancer_by_dns`], among the load balancers at `at`.
    pub async fn load_balancer_by_dns_at(
        &mut self,
        at: &Place,
        dns: &str,
    ) -> Result<Option<LoadBalancer>, ResolveError> {
        if !self.inventory.contains_key(at) {
            let all = self.reach(at).await?.elb.all().await?;
            self.inventory.insert(at.clone(), all);
        }
        Ok(self.inventory[at]
            .iter()
            .find(|lb| {
                lb.dns_name
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(dns))
            })
            .cloned())
    }

    /// Whether an ELBv2 load balancer of the hub's account and region has at least one
    /// healthy target (classic: assumed yes).
    pub async fn has_healthy_targets(&mut self, lb: &LoadBalancer) -> Result<bool, ResolveError> {
        self.has_healthy_targets_at(&Place::default(), lb).await
    }

    /// As [`Resolver::has_healthy_targets`], for a load balancer at `at`.
    pub async fn has_healthy_targets_at(
        &mut self,
        at: &Place,
        lb: &LoadBalancer,
    ) -> Result<bool, ResolveError> {
        match (lb.family, &lb.arn) {
            (LbFamily::V2, Some(arn)) => {
                if let Some(h) = self.health.get(arn) {
                    return Ok(*h);
                }
                let healthy = self.reach(at).await?.elb.target_health(arn).await?.healthy > 0;
                self.health.insert(arn.clone(), healthy);
                Ok(healthy)
            }
            _ => Ok(true),
        }
    }
}

/// The attachments of an ECS service that match the container name and port, when given.
fn matching<'a>(
    attachments: &'a [EcsLoadBalancer],
    container_name: Option<&str>,
    container_port: Option<u16>,
) -> Vec<&'a EcsLoadBalancer> {
    attachments
        .iter()
        .filter(|a| {
            container_name.is_none_or(|c| a.container_name.as_deref() == Some(c))
                && container_port.is_none_or(|p| a.container_port == Some(p))
        })
        .collect()
}

/// An attachment as a candidate is listed: `container:port -> target group or load balancer`.
fn describe(a: &EcsLoadBalancer) -> String {
    format!(
        "{}:{} -> {}",
        a.container_name.as_deref().unwrap_or("?"),
        a.container_port.map(|p| p.to_string()).unwrap_or_default(),
        a.target_group_arn
            .as_deref()
            .or(a.load_balancer_name.as_deref())
            .unwrap_or("?")
    )
}

/// The load balancer an attachment names: through its target group (ELBv2), or by name
/// (classic); `None` when it names neither.
async fn attached(
    elb: &dyn LoadBalancers,
    attachment: &EcsLoadBalancer,
) -> Result<Option<LoadBalancer>, ResolveError> {
    if let Some(tg) = &attachment.target_group_arn {
        let lb_arns = elb
            .target_group_load_balancers(tg)
            .await?
            .ok_or_else(|| ResolveError::TargetGroupNotFound(tg.clone()))?;
        let arn = lb_arns
            .first()
            .ok_or_else(|| ResolveError::TargetGroupUnattached(tg.clone()))?;
        let lb = elb.v2(arn).await?;
        lb.ok_or_else(|| ResolveError::LoadBalancerNotFound(arn.clone()))
            .map(Some)
    } else if let Some(name) = &attachment.load_balancer_name {
        let lb = elb.classic(name).await?;
        lb.ok_or_else(|| ResolveError::LoadBalancerNotFound(name.clone()))
            .map(Some)
    } else {
        Ok(None)
    }
}

fn with_dns(
    lb: LoadBalancer,
    at: &Place,
    what: impl FnOnce() -> String,
) -> Result<Resolved, ResolveError> {
    match lb.dns_name.clone() {
        Some(dns) => Ok(Resolved {
            value: dns,
            load_balancer: Some(lb),
            at: at.clone(),
            may_be_link: false,
        }),
        None => Err(ResolveError::NoDnsName(what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::World;
    use crate::plan::stage::Serving;

    fn attachment(tg_of: &str, port: u16) -> EcsLoadBalancer {
        EcsLoadBalancer {
            target_group_arn: Some(format!(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/{tg_of}/1"
            )),
            load_balancer_name: None,
            container_name: Some("web".into()),
            container_port: Some(port),
        }
    }

    fn service(port: Option<u16>) -> Source {
        Source::EcsService {
            cluster: "prod".into(),
            service: "orders".into(),
            container_name: None,
            container_port: port,
            at: Default::default(),
        }
    }

    #[tokio::test]
    async fn an_ecs_service_resolves_through_its_target_group_once() {
        let world = World::new();
        let lb = world.state().add_load_balancer("orders", 1);
        world.state().services.insert(
            ("prod".into(), "orders".into()),
            vec![attachment("orders", 80)],
        );
        let ports = world.ports();
        let mut resolver = Resolver::new(&ports);
        let r = resolver.resolve(&service(None)).await.unwrap();
        assert_eq!(Some(r.value), lb.dns_name);
        assert_eq!(r.load_balancer.map(|l| l.name).as_deref(), Some("orders"));
        resolver.resolve(&service(None)).await.unwrap();
        assert_eq!(
            world
                .state()
                .count(crate::ports::op::SERVICE_LOAD_BALANCERS),
            1,
            "answers are remembered"
        );
    }

    #[tokio::test]
    async fn several_load_balancers_need_a_container_port() {
        let world = World::new();
        world.state().add_load_balancer("a", 1);
        let b = world.state().add_load_balancer("b", 1);
        world.state().services.insert(
            ("prod".into(), "orders".into()),
            vec![attachment("a", 80), attachment("b", 8080)],
        );
        let ports = world.ports();
        let mut resolver = Resolver::new(&ports);
        let err = resolver.resolve(&service(None)).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("set ContainerName and/or ContainerPort"),
            "{err}"
        );
        let r = resolver.resolve(&service(Some(8080))).await.unwrap();
        assert_eq!(Some(r.value), b.dns_name);
    }

    #[tokio::test]
    async fn observing_an_unchanged_value_checks_no_load_balancer() {
        let world = World::new();
        let lb = world.state().add_load_balancer("a", 0);
        let dns = lb.dns_name.clone().unwrap();
        world.state().stacks.insert(
            "S".into(),
            BTreeMap::from([("Dns".to_string(), dns.clone())]),
        );
        let ports = world.ports();
        let source = Source::StackOutput {
            stack: "S".into(),
            output_key: "Dns".into(),
            at: Default::default(),
        };
        let stage = crate::domain::StageRef::new(crate::domain::ApiKind::Rest, "api", "prod");
        let record = crate::memory::record(stage, "v", source);
        let mut resolver = Resolver::new(&ports);
        let same = resolver.observe(record.clone(), Some(&dns)).await;
        assert_eq!(same.gate.unwrap(), Gate::default());
        assert_eq!(world.state().count(crate::ports::op::TARGET_HEALTH), 0);

        let old = world.state().add_load_balancer("old", 1).dns_name.unwrap();
        let changing = resolver.observe(record, Some(&old)).await;
        let gate = changing.gate.unwrap();
        assert_eq!(gate.new, Some(Serving::new("a", false)));
        assert_eq!(gate.current, Some(Serving::new("old", true)));
    }

    fn link_of(target: Source) -> Source {
        Source::VpcLinkFor {
            target: Box::new(target),
        }
    }

    #[tokio::test]
    async fn a_vpc_link_resolves_from_its_load_balancer_however_named() {
        use crate::domain::LinkStatus;
        let world = World::new();
        let nlb = world.state().add_load_balancer("nlb", 1);
        let arn = nlb.arn.clone().unwrap();
        world
            .state()
            .add_rest_link("other", "arn:aws:x", LinkStatus::Available);
        world.state().add_rest_link("l1", &arn, LinkStatus::Pending);
        world.state().stacks.insert(
            "S".into(),
            BTreeMap::from([
                ("Dns".to_string(), nlb.dns_name.clone().unwrap()),
                ("Arn".to_string(), arn.clone()),
                ("Text".to_string(), "not a load balancer".to_string()),
            ]),
        );
        let ports = world.ports();
        let mut resolver = Resolver::new(&ports);
        let output = |key: &str| Source::StackOutput {
            stack: "S".into(),
            output_key: key.into(),
            at: Default::default(),
        };
        for target in [
            output("Dns"),
            output("Arn"),
            Source::LoadBalancer {
                name: "nlb".into(),
                at: Default::default(),
            },
        ] {
            let r = resolver.resolve(&link_of(target.clone())).await;
            assert_eq!(r.unwrap().value, "l1", "{target}");
        }
        assert_eq!(world.state().count(crate::ports::op::REST_VPC_LINKS), 1);
        let e = resolver
            .resolve(&link_of(output("Text")))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "output Text of stack S resolves to \"not a load balancer\", which is neither the DNS name nor the ARN of a load balancer in the account"
        );
    }

    #[tokio::test]
    async fn no_link_says_how_to_make_one_and_several_are_listed() {
        use crate::domain::LinkStatus;
        let world = World::new();
        let nlb = world.state().add_load_balancer("nlb", 1);
        let arn = nlb.arn.clone().unwrap();
        let source = link_of(Source::LoadBalancer {
            name: "nlb".into(),
            at: Default::default(),
        });
        let ports = world.ports();
        let e = Resolver::new(&ports).resolve(&source).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no REST VPC link targets load balancer nlb: create one, an AWS::ApiGateway::VpcLink with TargetArns: [{arn}], and bind its id once it is AVAILABLE")
        );
        world
            .state()
            .add_rest_link("l1", &arn, LinkStatus::Available);
        world.state().add_rest_link("l2", &arn, LinkStatus::Failed);
        let e = Resolver::new(&ports).resolve(&source).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "several REST VPC links target load balancer nlb (l1 (l1-name), l2 (l2-name)): keep one, or bind the one you mean by its id"
        );
    }

    #[tokio::test]
    async fn observing_a_changed_link_id_reads_the_link_and_its_load_balancer() {
        use crate::domain::LinkStatus;
        let world = World::new();
        let old = world.state().add_load_balancer("old", 1);
        let new = world.state().add_load_balancer("new", 0);
        world
            .state()
            .add_rest_link("lold", old.arn.as_ref().unwrap(), LinkStatus::Available);
        world
            .state()
            .add_rest_link("lnew", new.arn.as_ref().unwrap(), LinkStatus::Pending);
        let source = link_of(Source::LoadBalancer {
            name: "new".into(),
            at: Default::default(),
        });
        let stage = crate::domain::StageRef::new(crate::domain::ApiKind::Rest, "api", "prod");
        let record = crate::memory::record(stage, "vpcLinkId", source);
        let ports = world.ports();
        let gate = Resolver::new(&ports)
            .observe(record, Some("lold"))
            .await
            .gate
            .unwrap();
        let (new, current) = (gate.new.unwrap(), gate.current.unwrap());
        assert_eq!(
            (new.name.as_str(), new.healthy, new.serves()),
            ("lnew", false, false)
        );
        assert_eq!(new.link.unwrap().status, LinkStatus::Pending);
        assert_eq!((current.name.as_str(), current.serves()), ("lold", true));
    }
}
