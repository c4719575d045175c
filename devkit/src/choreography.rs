//! CloudFormation's order of events for a stack update that replaces a load balancer, played
//! against moto and the local load balancers ([`crate::lbs`]):
//!
//! 1. `UPDATE_IN_PROGRESS`: the new load balancer is created (moto: `update_stack` with a
//!    template holding both, the outputs naming the new one; moto cannot replace a resource in
//!    place). It has no healthy target until the ECS service's tasks register with it,
//!    `targets_healthy_after` later.
//! 2. Dependents are updated: a binding in the same stack gets its Update (`LoadBalancer:` the new
//!    ARN) and CloudFormation waits for the answer; the ECS service update waits for its tasks.
//!    A FAILED answer rolls the update back: the binding gets an Update with the old properties,
//!    then `UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS` deletes the new load balancer.
//! 3. `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`: outputs are final; `cleanup_delete_delay` later the
//!    replaced load balancer is deleted.
//! 4. `UPDATE_COMPLETE`.
//!
//! Each status change goes to EventBridge, which delivers it `eventbridge_latency` later. Who
//! acts on what depends on the [`Placement`] of the binding.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::Value;
use tokio::time::Instant;

use crate::lbs::LocalLoadBalancers;
use crate::DevkitError;

/// A boxed future, for the [`Parties`] callbacks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the binding of the variable lives, and so who re-points it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the ECS stack (`LoadBalancer: !Ref LB`): CloudFormation updates it before cleanup.
    SameStack,
    /// In another stack, fed by the output: the re-sync acts on the stack-status events,
    /// `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS` first.
    Output,
    /// Fed by the output, by a re-sync that acts only on `UPDATE_COMPLETE`.
    OutputOnComplete,
    /// A static variable an operator sets by hand, this long after `UPDATE_COMPLETE`.
    ByHand {
        /// How long the operator takes.
        after: Duration,
    },
}

/// The timing of a replacement.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// From a status change to its delivery to the re-sync.
    pub eventbridge_latency: Duration,
    /// From `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS` to the deletion of the replaced load balancer.
    pub cleanup_delete_delay: Duration,
    /// From the new load balancer's creation until it has a healthy target; `None`: never.
    pub targets_healthy_after: Option<Duration>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            eventbridge_latency: Duration::from_millis(500),
            cleanup_delete_delay: Duration::from_secs(2),
            targets_healthy_after: Some(Duration::from_secs(2)),
        }
    }
}

/// What CloudFormation and EventBridge talk to.
pub trait Parties: Send + Sync {
    /// CloudFormation's Update of the binding in the ECS stack, its `LoadBalancer` property
    /// `lb_arn`; answers whether it was SUCCESS. `rollback`: the Update of a rollback.
    fn update_binding<'a>(&'a self, lb_arn: &'a str, rollback: bool) -> BoxFuture<'a, bool>;
    /// EventBridge delivers an event to the re-sync.
    fn deliver(&self, event: Value) -> BoxFuture<'_, ()>;
}

/// One generation of the ECS stack's load balancer.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The logical id suffix in the stack's template.
    pub tag: String,
    /// The load balancer's name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its DNS name.
    pub dns: String,
    /// Its target group.
    pub target_group: String,
}

/// Builds the ECS stack's template from its generations, oldest first, each as (tag, load
/// balancer name). The template must hold, for every generation, the outputs `Arn<tag>`,
/// `Dns<tag>` and `Tg<tag>` (its load balancer's ARN and DNS name, its target group's ARN), and
/// `EcsElbDnsName` naming the newest generation's DNS name.
pub type TemplateFn = Arc<dyn Fn(&[(String, String)]) -> String + Send + Sync>;

/// The ECS stack (`EcsHelloworldProd`) in moto: a VPC and the load balancers of its generations,
/// the output `EcsElbDnsName` naming the newest.
pub struct EcsStack {
    /// The stack name.
    pub name: String,
    /// The stack id.
    pub stack_id: String,
    /// Live generations, oldest first.
    pub generations: Vec<Generation>,
    cfn: aws_sdk_cloudformation::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    template: TemplateFn,
    /// The stack's parameters, given again with every update.
    parameters: Vec<(String, String)>,
}

fn template(tags: &[(String, String)]) -> String {
    let mut t = String::from(
        r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.1.0/24
      AvailabilityZone: us-east-1a
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties:
      VpcId: !Ref Vpc
      CidrBlock: 10.0.2.0/24
      AvailabilityZone: us-east-1b
"#,
    );
    for (tag, name) in tags {
        t.push_str(&format!(
            r#"  LoadBalancer{tag}:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties:
      Name: {name}
      Subnets: [!Ref SubnetA, !Ref SubnetB]
  TargetGroup{tag}:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      Port: 80
      Protocol: HTTP
      TargetType: ip
      VpcId: !Ref Vpc
  Listener{tag}:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref LoadBalancer{tag}
      Port: 80
      Protocol: HTTP
      DefaultActions:
        - Type: forward
          TargetGroupArn: !Ref TargetGroup{tag}
"#
        ));
    }
    let newest = &tags.last().map(|(t, _)| t.clone()).unwrap_or_default();
    t.push_str("Outputs:\n");
    for (tag, _) in tags {
        t.push_str(&format!(
            "  Dns{tag}:\n    Value: !GetAtt LoadBalancer{tag}.DNSName\n  Arn{tag}:\n    Value: !Ref LoadBalancer{tag}\n  Tg{tag}:\n    Value: !Ref TargetGroup{tag}\n"
        ));
    }
    t.push_str(&format!(
        "  EcsElbDnsName:\n    Value: !GetAtt LoadBalancer{newest}.DNSName\n"
    ));
    t
}

impl EcsStack {
    /// Create the stack with one load balancer named `lb_name`.
    pub async fn create(sdk: &SdkConfig, name: &str, lb_name: &str) -> Result<Self, DevkitError> {
        let cfn = aws_sdk_cloudformation::Client::new(sdk);
        let tags = vec![("A".to_string(), lb_name.to_string())];
        let out = cfn
            .create_stack()
            .stack_name(name)
            .template_body(template(&tags))
            .send()
            .await
            .map_err(|e| DevkitError::aws("CreateStack", e))?;
        let mut stack = EcsStack {
            name: name.to_string(),
            stack_id: out.stack_id().unwrap_or(name).to_string(),
            generations: Vec::new(),
            cfn,
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            template: Arc::new(template),
            parameters: Vec::new(),
        };
        stack.generations = stack.read(&tags).await?;
        Ok(stack)
    }

    /// A stack deployed by the caller, holding one load balancer `first`; its updates use
    /// `template` and the stack's `parameters`.
    pub fn adopt(
        sdk: &SdkConfig,
        name: &str,
        stack_id: &str,
        first: Generation,
        template: TemplateFn,
        parameters: Vec<(String, String)>,
    ) -> Self {
        EcsStack {
            name: name.to_string(),
            stack_id: stack_id.to_string(),
            generations: vec![first],
            cfn: aws_sdk_cloudformation::Client::new(sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            template,
            parameters,
        }
    }

    async fn read(&self, tags: &[(String, String)]) -> Result<Vec<Generation>, DevkitError> {
        let out = self
            .cfn
            .describe_stacks()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| DevkitError::aws("DescribeStacks", e))?;
        let outputs: std::collections::BTreeMap<String, String> = out
            .stacks()
            .first()
            .map(|s| s.outputs())
            .unwrap_or_default()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect();
        let get = |k: String| {
            outputs.get(&k).cloned().ok_or_else(|| {
                DevkitError::Invalid(format!("stack {} has no output {k}", self.name))
            })
        };
        tags.iter()
            .map(|(tag, name)| {
                Ok(Generation {
                    tag: tag.clone(),
                    name: name.clone(),
                    arn: get(format!("Arn{tag}"))?,
                    dns: get(format!("Dns{tag}"))?,
                    target_group: get(format!("Tg{tag}"))?,
                })
            })
            .collect()
    }

    /// The newest load balancer (the one `EcsElbDnsName` names).
    pub fn current(&self) -> &Generation {
        self.generations
            .last()
            .expect("a stack has a load balancer")
    }

    /// Update the stack to hold a new load balancer named `lb_name` besides the current ones,
    /// the output naming the new one.
    pub async fn add_generation(&mut self, lb_name: &str) -> Result<Generation, DevkitError> {
        let mut tags: Vec<(String, String)> = self
            .generations
            .iter()
            .map(|g| (g.tag.clone(), g.name.clone()))
            .collect();
        let tag = ((b'A' + tags.len() as u8) as char).to_string();
        tags.push((tag, lb_name.to_string()));
        let parameters = self.parameters.iter().map(|(k, v)| {
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        });
        self.cfn
            .update_stack()
            .stack_name(&self.name)
            .template_body((self.template)(&tags))
            .set_parameters(Some(parameters.collect()))
            .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
            .send()
            .await
            .map_err(|e| DevkitError::aws("UpdateStack", e))?;
        self.generations = self.read(&tags).await?;
        Ok(self.current().clone())
    }

    /// Register a target (healthy, in moto) with a generation's target group.
    pub async fn register_target(&self, g: &Generation) -> Result<(), DevkitError> {
        register_target(&self.elbv2, g).await
    }

    /// Delete a generation's load balancer (the resource deleted by cleanup).
    pub async fn delete_load_balancer(&self, g: &Generation) -> Result<(), DevkitError> {
        self.elbv2
            .delete_load_balancer()
            .load_balancer_arn(&g.arn)
            .send()
            .await
            .map_err(|e| DevkitError::aws("DeleteLoadBalancer", e))?;
        Ok(())
    }
}

/// Register a target (healthy, in moto) with a generation's target group.
async fn register_target(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    g: &Generation,
) -> Result<(), DevkitError> {
    crate::elb_stack::register_target(elbv2, &g.target_group, "10.0.1.10").await
}

/// What happened during a replacement, each step with its time from the start.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Steps in order: seconds from the start, and what.
    pub steps: Vec<(f64, String)>,
    /// The answer to the binding's Update (same-stack placement).
    pub binding_succeeded: Option<bool>,
    /// Whether the update was rolled back.
    pub rolled_back: bool,
}

impl Replayed {
    /// The steps as lines of text.
    pub fn lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|(t, s)| format!("{t:>6.2}s  {s}"))
            .collect()
    }
}

/// The stage's variable an operator sets by hand.
pub struct ByHandTarget {
    /// A client of API Gateway.
    pub apigw: aws_sdk_apigateway::Client,
    /// The REST API.
    pub api_id: String,
    /// The stage.
    pub stage: String,
    /// The variable.
    pub variable: String,
}

/// Replace the ECS stack's load balancer the CloudFormation way, with the binding in
/// `placement`. The local load balancer of the current generation must be running; the new one
/// is started without a healthy target.
#[allow(clippy::too_many_arguments)]
pub async fn replace_load_balancer(
    stack: &mut EcsStack,
    new_lb_name: &str,
    lbs: &LocalLoadBalancers,
    parties: Arc<dyn Parties>,
    placement: Placement,
    timeline: Timeline,
    by_hand: Option<&ByHandTarget>,
    account_region: (&str, &str),
) -> Result<Replayed, DevkitError> {
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Replayed::default()));
    let note = {
        let log = log.clone();
        move |what: String| {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .steps
                .push((start.elapsed().as_secs_f64(), what));
        }
    };
    let (account, region) = (account_region.0.to_string(), account_region.1.to_string());
    let stack_id = stack.stack_id.clone();
    let mut deliveries = tokio::task::JoinSet::new();
    let emit = |status: &'static str, deliveries: &mut tokio::task::JoinSet<()>| {
        note(status.to_string());
        let wanted = match placement {
            Placement::Output => true,
            Placement::OutputOnComplete => status == "UPDATE_COMPLETE",
            _ => false,
        };
        if wanted {
            let event = crate::seed::stack_status_event(&account, &region, &stack_id, status);
            let parties = parties.clone();
            let note = note.clone();
            let latency = timeline.eventbridge_latency;
            deliveries.spawn(async move {
                tokio::time::sleep(latency).await;
                note(format!("EventBridge delivers {status} to the re-sync"));
                parties.deliver(event).await;
                note(format!("re-sync done with {status}"));
            });
        }
    };

    // 1. The new load balancer, without healthy targets.
    note("UPDATE_IN_PROGRESS".into());
    let old = stack.current().clone();
    let new = stack.add_generation(new_lb_name).await?;
    lbs.start(&new.dns, false).await?;
    note(format!("created {} (no healthy target)", new.name));
    let healthy = {
        let (lbs, dns, note) = (lbs.clone(), new.dns.clone(), note.clone());
        let elbv2 = stack.elbv2.clone();
        let g = new.clone();
        let after = timeline.targets_healthy_after;
        tokio::spawn(async move {
            let Some(after) = after else {
                return false;
            };
            tokio::time::sleep(after).await;
            let registered = register_target(&elbv2, &g).await.is_ok();
            lbs.set_healthy(&dns, true);
            note(format!("{} has a healthy target", g.name));
            registered
        })
    };

    // 2. Dependents.
    let succeeded = match placement {
        Placement::SameStack => {
            note("CloudFormation updates the binding".into());
            let ok = parties.update_binding(&new.arn, false).await;
            note(format!(
                "the binding answers {}",
                if ok { "SUCCESS" } else { "FAILED" }
            ));
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .binding_succeeded = Some(ok);
            ok
        }
        _ => {
            // The ECS service's update waits for its tasks to be healthy behind the new one.
            match timeline.targets_healthy_after {
                Some(_) => healthy.await.unwrap_or(false),
                None => false,
            }
        }
    };
    if !succeeded {
        note("UPDATE_ROLLBACK_IN_PROGRESS".into());
        if placement == Placement::SameStack {
            let ok = parties.update_binding(&old.arn, true).await;
            note(format!(
                "the binding's rollback answers {}",
                if ok { "SUCCESS" } else { "FAILED" }
            ));
        }
        emit(
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            &mut deliveries,
        );
        stack.delete_load_balancer(&new).await?;
        lbs.delete(&new.dns);
        stack.generations.retain(|g| g.arn != new.arn);
        note(format!("deleted {}", new.name));
        emit("UPDATE_ROLLBACK_COMPLETE", &mut deliveries);
        while deliveries.join_next().await.is_some() {}
        let mut out = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out.rolled_back = true;
        return Ok(out);
    }

    // 3. Cleanup.
    emit("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", &mut deliveries);
    tokio::time::sleep(timeline.cleanup_delete_delay).await;
    stack.delete_load_balancer(&old).await?;
    lbs.delete(&old.dns);
    stack.generations.retain(|g| g.arn != old.arn);
    note(format!("cleanup deleted {}", old.name));

    // 4. Done.
    emit("UPDATE_COMPLETE", &mut deliveries);
    if let (Placement::ByHand { after }, Some(target)) = (placement, by_hand) {
        tokio::time::sleep(after).await;
        crate::choreography::set_variable(target, &new.dns).await?;
        note(format!("an operator sets {} by hand", target.variable));
    }
    while deliveries.join_next().await.is_some() {}
    let out = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(out)
}

/// Set a stage variable (UpdateStage `replace`), as an operator does in the console.
pub async fn set_variable(target: &ByHandTarget, value: &str) -> Result<(), DevkitError> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    target
        .apigw
        .update_stage()
        .rest_api_id(&target.api_id)
        .stage_name(&target.stage)
        .patch_operations(
            PatchOperation::builder()
                .op(Op::Replace)
                .path(format!("/variables/{}", target.variable))
                .value(value)
                .build(),
        )
        .send()
        .await
        .map_err(|e| DevkitError::aws("UpdateStage", e))?;
    Ok(())
}
