//! The test world: a moto server reached through the real AWS SDK, a registry table created
//! from `template.yaml`, fixtures for APIs, stacks, load balancers and ECS services, and a
//! stand-in for CloudFormation that sends custom-resource events and receives the response.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use futures::future::LocalBoxFuture;
use serde_json::{json, Value};
use stagewire::cfn::{Handler, Report, Sender, Undelivered};
use stagewire::domain::{Authorization, SourceAccess};
use stagewire::ports::Record;
use stagewire::Ports;
use stagewire_devkit::fault_proxy::{Fault, Gate, Rule};
use stagewire_devkit::receiver::{Received, ResponseReceiver};
pub use stagewire_devkit::records::written;
use stagewire_devkit::sequences::{Player, Sequence};
pub use stagewire_devkit::ElbStack;
use stagewire_devkit::{CfnEvents, FaultProxy, Function, MotoServer};
use tokio::time::Instant;

pub const ACCOUNT: &str = "123456789012";

/// The member accounts (spokes) the multi-account tests play beside the hub ([`ACCOUNT`]).
pub mod spoke {
    /// Account B: its sources live in [`B_REGION`].
    pub const B: &str = "222222222222";
    /// Account C: its sources live in the hub's region.
    pub const C: &str = "333333333333";
    /// The hub's region.
    pub const HUB_REGION: &str = "us-east-1";
    /// Account B's region.
    pub const B_REGION: &str = "eu-west-1";
    /// The name of the read-only role a spoke creates (`spoke.yaml`).
    pub const ROLE_NAME: &str = "stagewire-source";

    /// The read-only role a spoke creates in `account`.
    pub fn role(account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{ROLE_NAME}")
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique within this test run: letters, digits and hyphens, short enough for a load
/// balancer name.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000)
        .unwrap_or(0);
    format!("{prefix}-{t}{n}")
}

pub struct World {
    /// Where this world's AWS calls go: a proxy in front of moto that also plays
    /// CloudFormation's `DescribeStackResource` for the bindings the tests' requests made.
    pub endpoint: String,
    /// The proxy in front of moto (shared with the worlds [`World::member`] makes).
    proxy: Arc<FaultProxy>,
    /// A moto server of the world's own, kept alive with it.
    _moto: Option<Arc<MotoServer>>,
    /// The authorization rule of [`World::handler`] and of `ports`: `Open` (the single-team
    /// account the lifecycle scenarios play) unless the builder says otherwise.
    pub authorization: Authorization,
    pub sdk: SdkConfig,
    pub ports: Ports,
    pub table: String,
    pub apigw: aws_sdk_apigateway::Client,
    pub apigw2: aws_sdk_apigatewayv2::Client,
    pub cfn: aws_sdk_cloudformation::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub elb: aws_sdk_elasticloadbalancing::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ddb: aws_sdk_dynamodb::Client,
}

/// How a [`World`] is made ([`World::builder`]): by default on the shared moto server, through
/// a proxy of its own, with a registry table of its own, under `Open`.
#[derive(Default)]
pub struct WorldBuilder {
    moto: Option<MotoServer>,
    seed: Option<u64>,
    http_api_stages: bool,
    function_retries: bool,
    authorization: Option<Authorization>,
    sources: Option<SourceAccess>,
    table: Option<String>,
}

impl WorldBuilder {
    /// On a moto server of its own instead of the shared one.
    pub fn own_moto(mut self, moto: MotoServer) -> Self {
        self.moto = Some(moto);
        self
    }

    /// The proxy draws its rules' probabilities from `seed` (else the devkit's default seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The proxy plays HTTP API stages as API Gateway does (`play_http_api_stages`).
    pub fn http_api_stages(mut self) -> Self {
        self.http_api_stages = true;
        self
    }

    /// stagewire's ports retry as the functions do (6 attempts per call), with short backoffs
    /// so that the tests stay quick. The fixture clients keep the devkit's 3 attempts.
    pub fn function_retries(mut self) -> Self {
        self.function_retries = true;
        self
    }

    /// The authorization rule of the world's handler and ports.
    pub fn authorization(mut self, rule: Authorization) -> Self {
        self.authorization = Some(rule);
        self
    }

    /// The accounts and roles the world's ports read sources through.
    pub fn sources(mut self, sources: SourceAccess) -> Self {
        self.sources = Some(sources);
        self
    }

    /// The registry table of `other` (another sandbox's clients, through a proxy of their own),
    /// under `other`'s authorization rule.
    pub fn table_of(mut self, other: &World) -> Self {
        self.table = Some(other.table.clone());
        self.authorization = self.authorization.or(Some(other.authorization));
        self
    }

    pub async fn build(self) -> World {
        let moto = self.moto.map(Arc::new);
        let upstream = match &moto {
            Some(own) => own.endpoint(),
            None => stagewire_devkit::moto::shared().await.endpoint(),
        };
        let seed = self
            .seed
            .unwrap_or(stagewire_devkit::fault_proxy::DEFAULT_SEED);
        let proxy = FaultProxy::start_with_seed(&upstream, seed)
            .await
            .expect("proxy in front of moto");
        if self.http_api_stages {
            proxy.play_http_api_stages();
        }
        let endpoint = proxy.endpoint();
        let sdk = stagewire_devkit::moto::sdk_config(&endpoint).await;
        let table = match self.table {
            Some(table) => table,
            None => {
                let table = unique("registry");
                let ddb = aws_sdk_dynamodb::Client::new(&sdk);
                stagewire_devkit::registry::create_registry_table(&ddb, &table)
                    .await
                    .expect("registry table from template.yaml");
                table
            }
        };
        let mut w = World::with_table(&endpoint, Arc::new(proxy), sdk, table);
        w._moto = moto;
        if let Some(rule) = self.authorization {
            w.authorization = rule;
        }
        let ports_sdk = match self.function_retries {
            false => w.sdk.clone(),
            true => w
                .sdk
                .to_builder()
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(6)
                        .with_initial_backoff(Duration::from_millis(10))
                        .with_max_backoff(Duration::from_millis(200)),
                )
                .build(),
        };
        w.ports = Ports {
            authorization: w.authorization,
            sources: self.sources.unwrap_or(w.ports.sources.clone()),
            ..Ports::aws(&ports_sdk, &w.table).expect("a region")
        };
        w
    }
}

impl World {
    /// A world on the shared moto server, through a proxy of its own.
    pub async fn new() -> World {
        World::builder().build().await
    }

    /// A world made to measure.
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    fn with_table(endpoint: &str, proxy: Arc<FaultProxy>, sdk: SdkConfig, table: String) -> World {
        World {
            endpoint: endpoint.to_string(),
            proxy,
            _moto: None,
            authorization: Authorization::Open,
            ports: Ports {
                authorization: Authorization::Open,
                ..Ports::aws(&sdk, &table).expect("a region")
            },
            apigw: aws_sdk_apigateway::Client::new(&sdk),
            apigw2: aws_sdk_apigatewayv2::Client::new(&sdk),
            cfn: aws_sdk_cloudformation::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            elb: aws_sdk_elasticloadbalancing::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            table,
            sdk,
        }
    }

    /// The proxy in front of moto: its records, counts and fault rules.
    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    /// Hold the next `times` calls to API Gateway whose operation contains `operation` at a
    /// gate of their own, until the test opens it.
    pub fn hold(&self, operation: String, times: u64) -> Gate {
        let gate = Gate::new();
        self.proxy.add_rule(
            Rule::new(Fault::Hold(gate.clone()))
                .service("apigateway")
                .operation(operation)
                .times(times),
        );
        gate
    }

    /// This world's moto server as another account in `region`: fixtures made through the
    /// returned world live there (moto maps an assumed role's credentials to the role's
    /// account). Its calls go through this world's proxy with the session name `fixtures`; it
    /// shares this world's registry table, which only the hub uses.
    pub async fn member(&self, account: &str, region: &str) -> World {
        use aws_config::sts::AssumeRoleProvider;
        use aws_config::Region;
        let role = format!("arn:aws:iam::{account}:role/fixtures");
        let provider = AssumeRoleProvider::builder(role)
            .session_name("fixtures")
            .region(Region::new(region.to_string()))
            .configure(&self.sdk)
            .build()
            .await;
        let sdk = self
            .sdk
            .to_builder()
            .region(Region::new(region.to_string()))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        let mut member =
            World::with_table(&self.endpoint, self.proxy.clone(), sdk, self.table.clone());
        member._moto = self._moto.clone();
        member
    }

    /// The stage-binding handler over this world, answering with short retry delays.
    /// Responses may go to the local receivers (127.0.0.1).
    pub fn handler(&self) -> Handler {
        self.handler_over(self.ports.clone())
    }

    /// As [`World::handler`], over other ports (another sandbox's clients).
    pub fn handler_over(&self, mut ports: Ports) -> Handler {
        ports.authorization = self.authorization;
        let mut h = Handler::new(ports).allowing_response_hosts(local_response_hosts());
        h.sender = Sender::new(4, Duration::from_millis(20), Duration::from_secs(3));
        h
    }

    /// The environment of a function process over this world: its AWS calls to this world's
    /// endpoint, its registry table, this world's authorization rule, and `more`.
    pub fn function_env(&self, more: &[(&str, &str)]) -> Vec<(String, String)> {
        use stagewire::config::{AUTHORIZATION_VAR, TABLE_VAR};
        let rule = match self.authorization {
            Authorization::Open => "Open",
            Authorization::ApiTags => "ApiTags",
        };
        let mut env = stagewire_devkit::moto::process_env(&self.endpoint);
        let own = [(TABLE_VAR, self.table.as_str()), (AUTHORIZATION_VAR, rule)];
        env.extend(
            own.iter()
                .chain(more)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// The `stage-binding` binary started as Lambda starts it (under the Runtime API stand-in),
    /// its AWS calls going to this world's endpoint, under this world's authorization rule.
    pub async fn stage_binding_process(&self) -> Function {
        launch("stage-binding", &self.function_env(&[])).await
    }

    /// CloudFormation's side for a stack that exists (moto cannot hold custom resources, so
    /// the stack holds a placeholder): what a re-sync asks about the bindings' owner is true.
    pub async fn owning_stack(&self) -> Cloudformation {
        let name = unique("ApiStack");
        let stack_id = stagewire_devkit::examples::placeholder_stack(&self.cfn, &name)
            .await
            .unwrap();
        Cloudformation::for_stack(&stack_id).await
    }

    /// An HTTP API (API Gateway v2): its id.
    pub async fn http_api(&self) -> String {
        let api = self
            .apigw2
            .create_api()
            .name(unique("http"))
            .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
            .send()
            .await
            .unwrap();
        api.api_id().unwrap().to_string()
    }

    /// `EcsDemoAPI`-like REST API: `GET /helloworld` proxied to
    /// `http://${stageVariables.helloworldElb}`.
    pub async fn rest_api(&self) -> String {
        stagewire_devkit::seed::helloworld_rest_api(&self.apigw, &unique("EcsDemoAPI"))
            .await
            .unwrap()
    }

    /// A new REST API ([`World::rest_api`]) with `stage` created outside stagewire, with
    /// variables: its id.
    pub async fn rest_api_with_stage(&self, stage: &str, vars: &[(&str, &str)]) -> String {
        let api = self.rest_api().await;
        self.deploy_stage(&api, stage, vars).await;
        api
    }

    /// A stage created outside stagewire, with variables.
    pub async fn deploy_stage(&self, api: &str, stage: &str, vars: &[(&str, &str)]) {
        self.apigw
            .create_deployment()
            .rest_api_id(api)
            .stage_name(stage)
            .set_variables(Some(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
    }

    /// Set a variable by hand (as an operator would in the console).
    pub async fn set_var(&self, api: &str, stage: &str, name: &str, value: &str) {
        self.apigw
            .update_stage()
            .rest_api_id(api)
            .stage_name(stage)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path(format!("/variables/{name}"))
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The variables of a REST API stage, `None` when the stage does not exist (or cannot be
    /// read).
    pub async fn stage_vars(&self, api: &str, stage: &str) -> Option<BTreeMap<String, String>> {
        stagewire_devkit::stages::rest_stage_variables(&self.apigw, api, stage)
            .await
            .ok()
            .flatten()
    }

    pub async fn var(&self, api: &str, stage: &str, name: &str) -> Option<String> {
        self.stage_vars(api, stage).await?.get(name).cloned()
    }

    /// `name` on `stage` of the REST API `api` holds `expected`.
    pub async fn assert_var(&self, api: &str, stage: &str, name: &str, expected: &str) {
        let value = self.var(api, stage, name).await;
        assert_eq!(value.as_deref(), Some(expected), "{name} on stage {stage}");
    }

    /// Deploy the ELB stack `name` with a fresh load balancer.
    pub async fn elb_stack(&self, name: &str) -> ElbStack {
        stagewire_devkit::deploy_elb_stack(&self.cfn, name, &unique("alb"))
            .await
            .unwrap()
    }

    pub async fn delete_stack(&self, name: &str) {
        self.cfn
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .unwrap();
    }

    /// Replace the stack's load balancer: delete the stack and create it again.
    pub async fn replace_elb_stack(&self, name: &str) -> ElbStack {
        self.delete_stack(name).await;
        self.elb_stack(name).await
    }

    /// Register a (healthy, in moto) target in a target group.
    pub async fn register_target(&self, tg_arn: &str, ip: &str) {
        stagewire_devkit::elb_stack::register_target(&self.elbv2, tg_arn, ip)
            .await
            .unwrap();
    }

    /// A new ELBv2 load balancer with its own target group in the stack's subnets.
    pub async fn new_alb(&self, stack: &ElbStack) -> (String, String, String) {
        let name = unique("alb");
        let lb = self
            .elbv2
            .create_load_balancer()
            .name(&name)
            .set_subnets(Some(stack.subnets.clone()))
            .send()
            .await
            .unwrap();
        let lb = &lb.load_balancers()[0];
        let tg = self
            .elbv2
            .create_target_group()
            .name(unique("tg"))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&stack.vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .send()
            .await
            .unwrap();
        let tg_arn = tg.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        self.elbv2
            .create_listener()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .port(80)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        (
            lb.load_balancer_arn().unwrap().to_string(),
            lb.dns_name().unwrap().to_string(),
            tg_arn,
        )
    }

    pub async fn delete_alb(&self, arn: &str) {
        self.elbv2
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap();
    }

    /// A classic ELB; answers its DNS name.
    pub async fn classic_elb(&self, name: &str) -> String {
        let out = self
            .elb
            .create_load_balancer()
            .load_balancer_name(name)
            .availability_zones("us-east-1a")
            .listeners(
                aws_sdk_elasticloadbalancing::types::Listener::builder()
                    .protocol("HTTP")
                    .load_balancer_port(80)
                    .instance_port(80)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        out.dns_name().unwrap().to_string()
    }

    pub async fn delete_classic_elb(&self, name: &str) {
        self.elb
            .delete_load_balancer()
            .load_balancer_name(name)
            .send()
            .await
            .unwrap();
    }

    /// An ECS service attached to load balancers: `(container, port, target group ARN or
    /// classic ELB name)`.
    pub async fn ecs_service(&self, cluster: &str, service: &str, lbs: &[(&str, i32, &str)]) {
        self.ecs
            .create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .unwrap();
        let family = unique("helloworld");
        self.ecs
            .register_task_definition()
            .family(&family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("helloworld")
                    .image("httpd:2.4")
                    .memory(256)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let balancers = lbs
            .iter()
            .map(|(container, port, target)| {
                let b = aws_sdk_ecs::types::LoadBalancer::builder()
                    .container_name(*container)
                    .container_port(*port);
                if target.starts_with("arn:") {
                    b.target_group_arn(*target).build()
                } else {
                    b.load_balancer_name(*target).build()
                }
            })
            .collect();
        self.ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(&family)
            .desired_count(2)
            .set_load_balancers(Some(balancers))
            .send()
            .await
            .unwrap();
    }

    /// Point an ECS service at a different target group.
    pub async fn move_service(&self, cluster: &str, service: &str, container: &str, tg_arn: &str) {
        self.ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .load_balancers(
                aws_sdk_ecs::types::LoadBalancer::builder()
                    .container_name(container)
                    .container_port(80)
                    .target_group_arn(tg_arn)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Write records straight into the registry table, 25 per BatchWriteItem.
    pub async fn load_records(&self, records: &[Record]) {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in records.chunks(25) {
            let writes = chunk
                .iter()
                .map(|r| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(stagewire::aws::dynamodb::item::encode(r)))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect();
            let out = self
                .ddb
                .batch_write_item()
                .request_items(&self.table, writes)
                .send()
                .await
                .unwrap();
            assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
        }
    }

    /// Registry items, as the table holds them.
    pub async fn registry_items(&self) -> Vec<stagewire::ports::Record> {
        self.ports.registry.all().await.unwrap()
    }
}

/// The function binary `name` started as Lambda starts it, under the Runtime API stand-in,
/// with exactly the environment `env`.
pub async fn launch(name: &str, env: &[(String, String)]) -> Function {
    let binary = crate::custom_resource::function_binary(name);
    Function::launch(&binary, env, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// The hosts the local response receivers listen on.
pub fn local_response_hosts() -> Vec<String> {
    vec!["127.0.0.1".to_string()]
}

/// CloudFormation's side of a custom resource: a stack id, a response receiver, and the
/// events it sends. Each event it builds and each answer the receiver accepts moves its
/// resource in CloudFormation's view, which the proxies' `DescribeStackResource` answers from
/// ([`stagewire_devkit::stack_resources`]), as CloudFormation would move it.
pub struct Cloudformation {
    pub receiver: ResponseReceiver,
    pub stack_id: String,
    events: CfnEvents,
}

impl Cloudformation {
    pub async fn new() -> Cloudformation {
        Cloudformation::with_receiver(ResponseReceiver::start(vec![]).await.unwrap())
    }

    pub fn with_receiver(receiver: ResponseReceiver) -> Cloudformation {
        let name = unique("EcsDemoApiStack");
        let stack_id = format!(
            "arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{name}/{}",
            unique("id")
        );
        Cloudformation::of(receiver, stack_id)
    }

    /// CloudFormation's side for the stack `stack_id`, with a response receiver of its own.
    pub async fn for_stack(stack_id: &str) -> Cloudformation {
        let receiver = ResponseReceiver::start(vec![]).await.unwrap();
        Cloudformation::of(receiver, stack_id.to_string())
    }

    fn of(receiver: ResponseReceiver, stack_id: String) -> Cloudformation {
        Cloudformation {
            receiver,
            events: CfnEvents::new(
                &stack_id,
                format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
            ),
            stack_id,
        }
    }

    /// A player of a named sequence of this stack's requests.
    pub fn player<'a>(&'a self, sequence: &'a Sequence) -> Player<'a> {
        Player::new(sequence, &self.events, &self.receiver)
    }

    pub fn create(&self, logical: &str, props: Value) -> Value {
        self.events.create(&self.receiver, logical, props)
    }

    pub fn update(&self, logical: &str, physical: &str, props: Value, old: Value) -> Value {
        self.events
            .update(&self.receiver, logical, physical, props, old)
    }

    pub fn delete(&self, logical: &str, physical: &str, props: Value) -> Value {
        self.events.delete(&self.receiver, logical, physical, props)
    }

    /// CloudFormation gives up on the Create of `logical` (cancelled, or answered too late).
    pub fn give_up(&self, logical: &str) {
        self.events.give_up(logical);
    }

    /// `logical` as CloudFormation describes it now: its status and physical id.
    pub fn described(&self, logical: &str) -> Option<(String, Option<String>)> {
        let d = stagewire_devkit::stack_resources::describe(&self.stack_id, logical).ok()?;
        Some((d.status, d.physical_id))
    }

    /// The stack's name (the middle of its id).
    pub fn stack_name(&self) -> String {
        stagewire::domain::rights::stack_name(&self.stack_id).to_string()
    }

    /// Send one event through the handler and return the one response CloudFormation got,
    /// after checking it as S3 would.
    pub async fn send(&self, handler: &Handler, event: Value) -> Received {
        let (report, received) = self.send_raw(handler, event, Duration::from_secs(60)).await;
        report.expect("response delivered");
        assert_eq!(received.len(), 1, "exactly one response: {received:?}");
        let r = received.into_iter().next().unwrap();
        assert!(
            r.violations.is_empty(),
            "response violations: {:?}",
            r.violations
        );
        r
    }

    /// CloudFormation's Create of `logical` with `props`, sent through the handler: the one
    /// response, checked as [`Cloudformation::send`] checks it.
    pub async fn send_create(&self, handler: &Handler, logical: &str, props: Value) -> Received {
        self.send(handler, self.create(logical, props)).await
    }

    /// Send one event with a given Lambda time budget; the handler's result and every request
    /// the receiver got for it.
    pub async fn send_raw(
        &self,
        handler: &Handler,
        event: Value,
        budget: Duration,
    ) -> (Result<Report, Undelivered>, Vec<Received>) {
        let before = self.receiver.received().await.len();
        let report = handler.handle(event, Instant::now() + budget).await;
        let all = self.receiver.received().await;
        (report, all[before..].to_vec())
    }
}

/// What most tests start from: a world, an ELB stack whose output `EcsElbDnsName` is the
/// bindings' source, a REST API, and CloudFormation's side of a stack holding the bindings.
pub struct Scene {
    pub w: World,
    pub stack: ElbStack,
    pub api: String,
    pub cfn: Cloudformation,
}

impl Scene {
    /// On a world of its own; the ELB stack's name starts with `prefix`.
    pub async fn new(prefix: &str) -> Scene {
        Scene::on(World::new().await, prefix).await
    }

    /// On `w`.
    pub async fn on(w: World, prefix: &str) -> Scene {
        let stack = w.elb_stack(&unique(prefix)).await;
        let api = w.rest_api().await;
        Scene {
            w,
            stack,
            api,
            cfn: Cloudformation::new().await,
        }
    }

    /// [`seed_props`] of `stage`: its `helloworldElb` bound to the stack's output.
    pub fn props(&self, stage: &str) -> Value {
        seed_props(&self.api, stage, &self.stack.name)
    }

    /// `event` answered by the world's handler: the one response.
    pub async fn send(&self, event: Value) -> Received {
        self.cfn.send(&self.w.handler(), event).await
    }

    /// CloudFormation's Create of `logical` binding `stage` ([`Scene::props`]), answered by the
    /// world's handler: the one response.
    pub async fn create(&self, logical: &str, stage: &str) -> Received {
        self.send(self.cfn.create(logical, self.props(stage))).await
    }

    /// As [`Scene::create`], which must succeed: the physical id it answered.
    pub async fn created(&self, logical: &str, stage: &str) -> String {
        let r = self.create(logical, stage).await;
        assert_success(&r);
        r.field("PhysicalResourceId").unwrap().to_string()
    }

    /// As [`Scene::create`], within a Lambda time budget: the handler's result and every
    /// request the receiver got.
    pub async fn create_within(
        &self,
        logical: &str,
        stage: &str,
        budget: Duration,
    ) -> (Result<Report, Undelivered>, Vec<Received>) {
        let event = self.cfn.create(logical, self.props(stage));
        self.cfn.send_raw(&self.w.handler(), event, budget).await
    }
}

/// Delivers step `n` of a sequence to handler `n` modulo their number (each a Lambda sandbox of
/// its own when they have their own ports).
pub fn handlers<'h>(hs: &'h [Handler]) -> impl Fn(usize, Value) -> LocalBoxFuture<'h, ()> + 'h {
    move |n, event| {
        let h = &hs[n % hs.len()];
        Box::pin(async move {
            let _ = h
                .handle(event, Instant::now() + Duration::from_secs(60))
                .await;
        })
    }
}

/// Delivers step `n` of a sequence to function process `n` modulo their number, through its
/// Runtime API, and waits for the function's answer.
pub fn functions<'f>(fs: &'f [Function]) -> impl Fn(usize, Value) -> LocalBoxFuture<'f, ()> + 'f {
    move |n, event| {
        let f = &fs[n % fs.len()];
        Box::pin(async move {
            if let Err(e) = f.api.invoke(event, Duration::from_secs(60)).await {
                panic!("step {n}: {e}\n{}", f.process.log_text());
            }
        })
    }
}

/// Plays `seq`, two sibling Creates, each in a `stage-binding` process of its own, their calls
/// held at `gate` until both arrived: both answer SUCCESS and both were held.
pub async fn play_siblings_in_two_processes(
    w: &World,
    cfn: &Cloudformation,
    seq: &Sequence,
    gate: &Gate,
) {
    let processes = [
        w.stage_binding_process().await,
        w.stage_binding_process().await,
    ];
    let mut player = cfn.player(seq).holding(gate.clone());
    let answers = player.play(functions(&processes)).await.unwrap();
    assert_success(&answers[0]);
    assert_success(&answers[1]);
    assert_eq!(gate.arrived(), 2, "both were held");
}

/// Stage variables as a map, from `(name, value)` pairs.
pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Properties of a binding of `helloworldElb` on `stage` to a stack output.
pub fn seed_props(api: &str, stage: &str, stack: &str) -> Value {
    json!({
        "ServiceToken": format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stage-binding"),
        "ServiceTimeout": "300",
        "RestApiId": api,
        "StageName": stage,
        "Variables": {
            "helloworldElb": {"StackName": stack, "OutputKey": "EcsElbDnsName"}
        }
    })
}

/// Exactly one response, well-formed, FAILED with a Reason that contains every needle: that
/// response.
pub fn assert_one_failed<'r>(received: &'r [Received], needles: &[&str]) -> &'r Received {
    assert_eq!(received.len(), 1, "exactly one response: {received:?}");
    let r = &received[0];
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_failed(r, needles);
    r
}

/// `props` with the variable `name` bound to the literal `value` too.
pub fn plus_literal(mut props: Value, name: &str, value: &str) -> Value {
    props["Variables"][name] = json!({ "Value": value });
    props
}

pub fn assert_success(r: &Received) {
    assert_eq!(r.status(), Some("SUCCESS"), "{}", r.body);
}

/// Assert a FAILED response whose Reason contains every needle.
pub fn assert_failed(r: &Received, needles: &[&str]) {
    assert_eq!(r.status(), Some("FAILED"), "{}", r.body);
    let reason = r.field("Reason").unwrap_or_default();
    for n in needles {
        assert!(reason.contains(n), "Reason {reason:?} lacks {n:?}");
    }
}

/// `count` registry records over `stages` stages of fictitious APIs, owned by another stack
/// and bound to 100 other stacks: the crowd a targeted lookup must not touch.
pub fn filler_records(count: usize, stages: usize) -> Vec<stagewire::ports::Record> {
    let owner_stack = format!("arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/Filler/1");
    (0..count)
        .map(|i| stagewire_devkit::records::filler(i, stages, &owner_stack))
        .collect()
}

/// A binding's owner: its stack, logical and physical id.
pub fn owner_of(stack_id: &str, logical_id: &str, physical_id: &str) -> stagewire::domain::Owner {
    stagewire::domain::Owner {
        stack_id: stack_id.into(),
        logical_id: logical_id.into(),
        physical_id: physical_id.into(),
    }
}
