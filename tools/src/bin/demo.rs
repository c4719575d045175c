//! `demo`: the seed scenario end to end on this machine, with no AWS account.
//!
//! It starts moto, deploys the example ECS stacks and the API stack `EcsDemoApi` (its REST API
//! `EcsDemoAPI` tagged as `examples/ecs-demo-api.yaml` tags it), runs the real
//! `stage-binding` and `stage-resync` binaries under a local Lambda Runtime API, plays
//! CloudFormation's side of the custom resource (the binding in each ECS stack,
//! `LoadBalancer: !Ref LoadBalancer`), calls `GET /prod/helloworld` through the devkit's stand-in
//! for the deployed API and local load-balancer servers, and replaces the prod load balancer the
//! way a stack update does (the new one created, the binding's Update waiting for its healthy
//! target, cleanup deleting the old one) while requests run: not one may fail. Every step is narrated with its timing and checked; the first
//! check that does not hold prints what was expected and what was found, everything the demo
//! started is stopped, and the exit status is 1.
//!
//! The function binaries are taken from the directory of this executable (`target/debug` after
//! `cargo build --bin stage-binding --bin stage-resync --bin stagewire --bin demo`);
//! `scripts/demo.sh` builds them and runs the demo. Options run other builds of the functions,
//! for example the arm64 Lambda packages of `sam build` under qemu user-mode emulation
//! (`scripts/package-test.sh`):
//!
//! ```text
//! demo [--keep] [--stage-binding PATH] [--stage-resync PATH] [--launcher "PROGRAM ARGS..."]
//! demo --stage-binding .aws-sam/build/StageBindingFunction/bootstrap \
//!      --stage-resync .aws-sam/build/StageResyncFunction/bootstrap \
//!      --launcher "qemu-aarch64 -L /usr/aarch64-linux-gnu"
//! ```
//!
//! The launcher (split on whitespace) is put before each function binary. The operator CLI is
//! always `stagewire` from this executable's directory. The functions run with `template.yaml`'s
//! default `BindingAuthorization` (`ApiTags`): the API's tag `stagewire:allowed-stacks` is what
//! allows the ECS stacks' bindings. `--keep` leaves everything running after the story (the
//! environment for the CLI is printed) until Ctrl-C.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Stack, StackStatus};
use serde_json::{json, Value};
use stagewire_devkit::choreography::{
    self, BoxFuture, Generation, Parties, Placement, TemplateFn, Timeline,
};
use stagewire_devkit::elb_stack::register_target;
use stagewire_devkit::examples::{self, ALLOWED_STACKS_TAG, API_STACK, API_TEMPLATE};
use stagewire_devkit::gateway::Gateway;
use stagewire_devkit::lbs::{LocalLoadBalancers, HELLO};
use stagewire_devkit::load::Load;
use stagewire_devkit::seed::{self, INTEGRATION_URI};
use stagewire_devkit::stages::rest_stage_variables;
use stagewire_devkit::{
    error_chain, CfnEvents, DevkitError, LambdaProcess, LocalAws, Outcome, Received,
    ResponseReceiver, RuntimeApi,
};
use stagewire_tools::{ACCOUNT, OUTPUT_KEY, REGION, SERVICE_TOKEN, VARIABLE};

/// Number of narrated steps.
const STEPS: usize = 10;
/// The registry table the functions use.
const TABLE: &str = "stagewire-demo-registry";
const PROD_STACK: &str = "EcsHelloworldProd";
const DEV_STACK: &str = "EcsHelloworldDev";
const API_NAME: &str = "EcsDemoAPI";
const ECS_TEMPLATE: &str = "examples/ecs-helloworld.yaml";
/// How long one function invocation may take.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stack may take to reach a final status.
const STACK_TIMEOUT: Duration = Duration::from_secs(120);
/// Indentation of the details under a step.
const INDENT: &str = "      ";
/// The address of the helloworld task registered behind each load balancer.
const TASK_IP: &str = "10.0.0.10";
/// The logical id of the binding in each ECS stack (`examples/ecs-helloworld.yaml`).
const BINDING: &str = "StageBinding";
/// The name of the load balancer that replaces prod's.
const NEW_LB_NAME: &str = "helloworld-prod-b";
/// How often the API Gateway stand-in reads the stage variables from moto.
const GATEWAY_REFRESH: Duration = Duration::from_millis(100);
/// Requests per second sent to `GET /prod/helloworld` while the load balancer is replaced.
const RATE: u32 = 50;
/// CloudFormation's timing of the replacement: the new load balancer's target is healthy 1 s
/// after its creation; cleanup deletes the old one 1 s after the update's answer.
const REPLACEMENT: Timeline = Timeline {
    eventbridge_latency: Duration::from_millis(500),
    cleanup_delete_delay: Duration::from_secs(1),
    targets_healthy_after: Some(Duration::from_secs(1)),
};
/// The failure message of a run stopped with Ctrl-C.
const INTERRUPTED: &str = "interrupted";

// ---------------------------------------------------------------------------------------------
// Narration and failures

/// A check that did not hold, or an operation that failed.
#[derive(Debug)]
struct Failure {
    message: String,
    expected: Option<String>,
    found: Option<String>,
    /// Extra lines (for example a function's last log lines).
    context: Vec<String>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            expected: None,
            found: None,
            context: Vec::new(),
        }
    }

    fn mismatch(what: impl Into<String>, expected: impl Display, found: impl Display) -> Failure {
        Failure {
            message: what.into(),
            expected: Some(expected.to_string()),
            found: Some(found.to_string()),
            context: Vec::new(),
        }
    }

    fn with_context(mut self, lines: Vec<String>) -> Failure {
        self.context.extend(lines);
        self
    }
}

type Step<T> = Result<T, Failure>;

/// Maps an error to a [`Failure`] saying what was being done.
fn failed<E: StdError + 'static>(doing: impl Display) -> impl FnOnce(E) -> Failure {
    move |e| Failure::new(format!("{doing} failed: {}", error_chain(&e)))
}

/// Fails unless `found == expected`.
fn expect_eq(what: &str, expected: &str, found: Option<&str>) -> Step<()> {
    if found == Some(expected) {
        Ok(())
    } else {
        Err(Failure::mismatch(
            what,
            expected,
            found.unwrap_or("(nothing)"),
        ))
    }
}

/// Prints the steps as they run: `[n/9] Title ... ok (0.21 s)` and indented details.
struct Narrator {
    step: usize,
    started: Instant,
    step_started: Instant,
    details: Vec<String>,
}

impl Narrator {
    fn new() -> Narrator {
        Narrator {
            step: 0,
            started: Instant::now(),
            step_started: Instant::now(),
            details: Vec::new(),
        }
    }

    fn begin(&mut self, title: &str) {
        self.step += 1;
        self.details.clear();
        self.step_started = Instant::now();
        print!("[{}/{STEPS}] {title} ... ", self.step);
        let _ = std::io::stdout().flush();
    }

    /// A detail line (or several, for multi-line text) printed under the current step.
    fn detail(&mut self, text: impl Display) {
        for line in text.to_string().lines() {
            self.details.push(line.to_string());
        }
    }

    fn end<T>(&mut self, result: Step<T>) -> Step<T> {
        let secs = self.step_started.elapsed().as_secs_f64();
        match &result {
            Ok(_) => println!("ok ({secs:.2} s)"),
            Err(_) => println!("FAILED ({secs:.2} s)"),
        }
        for line in self.details.drain(..) {
            println!("{INDENT}{line}");
        }
        if let Err(f) = &result {
            println!("{INDENT}{}", f.message);
            if let Some(expected) = &f.expected {
                println!("{INDENT}  expected: {expected}");
            }
            if let Some(found) = &f.found {
                println!("{INDENT}  found:    {found}");
            }
            for line in &f.context {
                println!("{INDENT}  {line}");
            }
        }
        let _ = std::io::stdout().flush();
        result
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn indent_json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// The bench: everything the demo starts

/// A function binary running under its own Runtime API.
struct Function {
    name: &'static str,
    api: RuntimeApi,
    process: LambdaProcess,
}

impl Function {
    /// The last `n` lines of the function's output.
    fn log_tail(&self, n: usize) -> Vec<String> {
        let logs = self.process.logs();
        let tail: Vec<String> = logs[logs.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("{} | {l}", self.name))
            .collect();
        if tail.is_empty() {
            vec![format!("{} printed nothing", self.name)]
        } else {
            tail
        }
    }
}

/// Everything the demo started, stopped by [`stop`].
struct Bench {
    /// moto, the registry table, and the functions' AWS endpoint: moto behind the devkit's
    /// proxy, which answers CloudFormation's DescribeStackResource for the bindings the demo's
    /// requests made.
    aws: LocalAws,
    cfn: aws_sdk_cloudformation::Client,
    apigw: aws_sdk_apigateway::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    receiver: Option<ResponseReceiver>,
    binding: Option<Function>,
    resync: Option<Function>,
    /// The local load balancers, one per DNS name.
    lbs: Option<LocalLoadBalancers>,
    /// The local stand-in for EcsDemoAPI's deployed stages.
    gateway: Option<Gateway>,
    /// The functions' `BindingAuthorization`: `template.yaml`'s default.
    authorization: String,
}

impl Bench {
    /// The environment the functions and the CLI run with.
    fn function_env(&self) -> Vec<(String, String)> {
        let mut env = self.aws.function_env();
        // As the template sets it for the deployed functions (its parameter's default).
        env.push((
            stagewire::config::AUTHORIZATION_VAR.to_string(),
            self.authorization.clone(),
        ));
        env
    }

    /// The variables of a REST API stage; `None` when the stage does not exist.
    async fn stage_vars(
        &self,
        api_id: &str,
        stage: &str,
    ) -> Step<Option<BTreeMap<String, String>>> {
        rest_stage_variables(&self.apigw, api_id, stage)
            .await
            .map_err(failed(format!("GetStage {stage}")))
    }

    /// The value of `helloworldElb` on `stage`, `None` when the variable or the stage is missing.
    async fn stage_var(&self, api_id: &str, stage: &str) -> Step<Option<String>> {
        Ok(self
            .stage_vars(api_id, stage)
            .await?
            .and_then(|vars| vars.get(VARIABLE).cloned()))
    }

    /// `helloworldElb` on `stage` holds `expected`; `when` says at what point.
    async fn expect_var(&self, api_id: &str, stage: &str, expected: &str, when: &str) -> Step<()> {
        let live = self.stage_var(api_id, stage).await?;
        expect_eq(
            &format!("stage {stage} variable {VARIABLE}{when}"),
            expected,
            live.as_deref(),
        )
    }

    /// Stage dev still holds its own load balancer's name, and the narration says so.
    async fn expect_dev_untouched(
        &self,
        out: &mut Narrator,
        api_id: &str,
        dev: &EcsStack,
    ) -> Step<()> {
        self.expect_var(api_id, "dev", &dev.dns, " (untouched)")
            .await?;
        out.detail(format!("stage dev:  {VARIABLE} = {} (untouched)", dev.dns));
        Ok(())
    }

    /// The last log lines of every running function, for failure reports.
    fn function_logs(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for f in [&self.binding, &self.resync].into_iter().flatten() {
            lines.push(format!("last output of {}:", f.name));
            lines.extend(f.log_tail(15));
        }
        lines
    }
}

/// Stops the functions, the servers and moto, checking that each process is gone.
async fn stop(bench: Bench, out: &mut Narrator) -> Step<()> {
    let Bench {
        aws,
        binding,
        resync,
        receiver,
        lbs,
        gateway,
        ..
    } = bench;
    let mut problems = Vec::new();
    if gateway.is_some() || lbs.is_some() {
        drop(gateway);
        drop(lbs);
        out.detail("API Gateway stand-in and load-balancer servers closed");
    }
    for function in [binding, resync].into_iter().flatten() {
        let Function {
            name,
            api,
            mut process,
        } = function;
        let pid = process.pid().map_or("?".to_string(), |p| p.to_string());
        let killed = process.kill().await;
        match (killed, process.try_wait()) {
            (Ok(()), Ok(Some(_))) => out.detail(format!("{name} (pid {pid}) stopped")),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(format!("{name} (pid {pid}): {}", error_chain(&e)))
            }
            (Ok(()), Ok(None)) => problems.push(format!("{name} (pid {pid}) is still running")),
        }
        drop(api);
    }
    if receiver.is_some() {
        drop(receiver);
        out.detail("response receiver and Runtime API servers closed");
    }
    let pid = aws.moto.pid();
    let log = aws.moto.log_path().cloned();
    drop(aws);
    if let Some(pid) = pid {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            out.detail(format!("moto (pid {pid}) stopped"));
        } else {
            problems.push(format!("moto (pid {pid}) is still running"));
        }
    }
    if let Some(log) = log {
        let _ = std::fs::remove_file(log);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::mismatch(
            "not everything stopped",
            "every process the demo started has exited",
            problems.join("; "),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Steps

/// The default of `template.yaml`'s parameter `BindingAuthorization`, which the deployed
/// functions get as `STAGEWIRE_BINDING_AUTHORIZATION`.
fn template_authorization(root: &Path) -> Step<String> {
    let path = root.join("template.yaml");
    let template =
        examples::Template::load(&path).map_err(failed(format!("reading {}", path.display())))?;
    template
        .parameter_default("BindingAuthorization")
        .ok_or_else(|| Failure::new("template.yaml has no default for BindingAuthorization"))
}

/// Step 1: moto and the registry table.
async fn start_bench(out: &mut Narrator, root: &Path) -> Step<Bench> {
    let authorization = template_authorization(root)?;
    let aws = LocalAws::start(TABLE).await.map_err(failed(
        "starting moto with the registry table from template.yaml",
    ))?;
    out.detail(format!(
        "moto listening on {} (pid {})",
        aws.moto.endpoint(),
        aws.moto.pid().map_or("?".into(), |p| p.to_string())
    ));
    let sdk = aws.sdk.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let described = ddb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .map_err(failed(format!("DescribeTable {TABLE}")))?;
    let table = described
        .table()
        .ok_or_else(|| Failure::new("DescribeTable returned no table"))?;
    let key: Vec<String> = table
        .key_schema()
        .iter()
        .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
        .collect();
    let indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    expect_eq(
        "the registry table is not active",
        "ACTIVE",
        table.table_status().map(|s| s.as_str()),
    )?;
    out.detail(format!(
        "registry table {TABLE} created from the AWS::DynamoDB::Table in template.yaml"
    ));
    out.detail(format!(
        "  key ({}); indexes: {}",
        key.join(", "),
        if indexes.is_empty() {
            "none".to_string()
        } else {
            indexes.join(", ")
        }
    ));
    Ok(Bench {
        cfn: aws_sdk_cloudformation::Client::new(&sdk),
        apigw: aws_sdk_apigateway::Client::new(&sdk),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        aws,
        receiver: None,
        binding: None,
        resync: None,
        lbs: None,
        gateway: None,
        authorization,
    })
}

/// A deployed ECS stack.
#[derive(Debug, Clone)]
struct EcsStack {
    name: String,
    id: String,
    dns: String,
    lb_arn: String,
    tg_arn: String,
    resources: usize,
    /// The helloworld task registered in the stack's target group, and its health.
    task: (String, String),
}

async fn describe_stack(bench: &Bench, name_or_id: &str) -> Step<Option<Stack>> {
    match bench
        .cfn
        .describe_stacks()
        .stack_name(name_or_id)
        .send()
        .await
    {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) if error_chain(&e).contains("does not exist") => Ok(None),
        Err(e) => Err(failed(format!("DescribeStacks {name_or_id}"))(e)),
    }
}

/// Creates `name` from the example template and waits for CREATE_COMPLETE.
async fn deploy_ecs_stack(bench: &Bench, template: &str, name: &str, env: &str) -> Step<EcsStack> {
    let id = examples::create_ecs_stack(&bench.cfn, template, name, env)
        .await
        .map_err(failed(format!("CreateStack {name}")))?;
    let deadline = Instant::now() + STACK_TIMEOUT;
    let stack = loop {
        let stack = describe_stack(bench, &id)
            .await?
            .ok_or_else(|| Failure::new(format!("stack {name} vanished after CreateStack")))?;
        match stack.stack_status() {
            Some(StackStatus::CreateComplete) => break stack,
            Some(StackStatus::CreateInProgress) | None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            status => {
                return Err(Failure::mismatch(
                    format!("stack {name} did not deploy"),
                    "CREATE_COMPLETE",
                    format!(
                        "{} ({})",
                        status.map_or("no status", |s| s.as_str()),
                        stack.stack_status_reason().unwrap_or("no reason given")
                    ),
                ))
            }
        }
    };
    let dns = stack
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(OUTPUT_KEY))
        .and_then(|o| o.output_value())
        .map(str::to_string);
    let Some(dns) = dns else {
        return Err(Failure::mismatch(
            format!("stack {name} lacks its output"),
            format!("an output {OUTPUT_KEY}"),
            format!(
                "outputs {:?}",
                stack
                    .outputs()
                    .iter()
                    .filter_map(|o| o.output_key())
                    .collect::<Vec<_>>()
            ),
        ));
    };
    let resources = bench
        .cfn
        .describe_stack_resources()
        .stack_name(&id)
        .send()
        .await
        .map_err(failed(format!("DescribeStackResources {name}")))?;
    // The physical id of the stack's resource of type `kind` (`what` in a failure).
    let physical_of = |kind: &str, what: &str| {
        let found = resources
            .stack_resources()
            .iter()
            .find(|r| r.resource_type() == Some(kind));
        found
            .and_then(|r| r.physical_resource_id())
            .map(str::to_string)
            .ok_or_else(|| Failure::new(format!("stack {name} holds no {what}")))
    };
    let lb_arn = physical_of("AWS::ElasticLoadBalancingV2::LoadBalancer", "load balancer")?;
    let tg_arn = physical_of("AWS::ElasticLoadBalancingV2::TargetGroup", "target group")?;
    let task = register_task(bench, &tg_arn).await?;
    Ok(EcsStack {
        name: name.to_string(),
        id,
        dns,
        lb_arn,
        tg_arn,
        resources: resources.stack_resources().len(),
        task,
    })
}

/// Registers a helloworld task's address in the target group, as ECS does for a service's
/// tasks, and returns it with the health the load balancer reports for it.
async fn register_task(bench: &Bench, tg_arn: &str) -> Step<(String, String)> {
    let ip = TASK_IP;
    register_target(&bench.elbv2, tg_arn, ip)
        .await
        .map_err(failed("registering the task"))?;
    let health = bench
        .elbv2
        .describe_target_health()
        .target_group_arn(tg_arn)
        .send()
        .await
        .map_err(failed("DescribeTargetHealth"))?;
    let state = health
        .target_health_descriptions()
        .iter()
        .find(|d| d.target().and_then(|t| t.id()) == Some(ip))
        .and_then(|d| d.target_health())
        .and_then(|h| h.state())
        .map_or("unknown".to_string(), |s| s.as_str().to_string());
    Ok((ip.to_string(), state))
}

fn describe_ecs_stack(out: &mut Narrator, stack: &EcsStack) {
    out.detail(format!(
        "{}: CREATE_COMPLETE, {} resources, {}",
        stack.name, stack.resources, stack.id
    ));
    out.detail(format!("  {OUTPUT_KEY} = {}", stack.dns));
    out.detail(format!(
        "  helloworld task {}:80 registered in the target group ({})",
        stack.task.0, stack.task.1
    ));
}

/// Step 2: the prod and dev ECS stacks.
async fn deploy_ecs_stacks(
    bench: &Bench,
    out: &mut Narrator,
    template: &str,
) -> Step<(EcsStack, EcsStack)> {
    let prod = deploy_ecs_stack(bench, template, PROD_STACK, "prod").await?;
    describe_ecs_stack(out, &prod);
    let dev = deploy_ecs_stack(bench, template, DEV_STACK, "dev").await?;
    describe_ecs_stack(out, &dev);
    if prod.dns == dev.dns {
        return Err(Failure::mismatch(
            "prod and dev share a load balancer",
            "two different DNS names",
            &prod.dns,
        ));
    }
    Ok((prod, dev))
}

/// The `GET /helloworld` integration of an API: (resource id, integration type, URI).
async fn helloworld_integration(bench: &Bench, api_id: &str) -> Step<Option<(String, String)>> {
    let resources = seed::resources(&bench.apigw, api_id)
        .await
        .map_err(failed("reading the API's resources"))?;
    let Some(resource) = resources.iter().find(|r| r.path() == Some("/helloworld")) else {
        return Ok(None);
    };
    let resource_id = resource.id().unwrap_or_default();
    match bench
        .apigw
        .get_integration()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method("GET")
        .send()
        .await
    {
        Ok(i) => Ok(Some((
            i.r#type()
                .map(|t| t.as_str().to_ascii_uppercase())
                .unwrap_or_default(),
            i.uri().unwrap_or_default().to_string(),
        ))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(failed("GetIntegration GET /helloworld")(e)),
    }
}

/// Step 3: the API stack `EcsDemoApi` from `examples/ecs-demo-api.yaml`, its REST API created
/// as CloudFormation creates it: with the template's tags (the consent tag
/// `stagewire:allowed-stacks`) and the OpenAPI definition the template names.
async fn create_api(bench: &Bench, out: &mut Narrator, root: &Path) -> Step<String> {
    let sdk = bench.aws.sdk.clone();
    let api = examples::deploy_api_stack(&sdk, &root.join(API_TEMPLATE), API_STACK, &[])
        .await
        .map_err(failed(format!(
            "creating stack {API_STACK} from {API_TEMPLATE}"
        )))?;
    expect_eq("the REST API's name", API_NAME, Some(&api.name))?;
    let allowed = api.tags.get(ALLOWED_STACKS_TAG).cloned();
    let body = api.body_path.strip_prefix(root).unwrap_or(&api.body_path);
    out.detail(format!(
        "stack {API_STACK} from {API_TEMPLATE}: CreateRestApi with the template's Tags, PutRestApi with {}",
        body.display()
    ));
    let api_id = api.id.clone();
    let (kind, uri) = helloworld_integration(bench, &api_id)
        .await?
        .ok_or_else(|| Failure::new("the API has no GET /helloworld integration"))?;
    expect_eq(
        "the GET /helloworld integration",
        INTEGRATION_URI,
        Some(&uri),
    )?;
    expect_eq(
        "the GET /helloworld integration type",
        "HTTP_PROXY",
        Some(&kind),
    )?;
    let stages = bench
        .apigw
        .get_stages()
        .rest_api_id(&api_id)
        .send()
        .await
        .map_err(failed("GetStages"))?;
    if !stages.item().is_empty() {
        let names: Vec<&str> = stages
            .item()
            .iter()
            .filter_map(|s| s.stage_name())
            .collect();
        return Err(Failure::mismatch(
            "the new API already has stages",
            "no stages",
            names.join(", "),
        ));
    }
    out.detail(format!("REST API {API_NAME}, id {api_id}"));
    out.detail(format!("  GET /helloworld -> {kind} {uri}"));
    out.detail(format!(
        "  tag {ALLOWED_STACKS_TAG} = {} (parameter AllowedStacks)",
        allowed.as_deref().unwrap_or("(none)")
    ));
    out.detail("  no stages yet: the bindings create prod and dev");
    Ok(api_id)
}

/// Starts `name` (as `programs` says where it is) under a fresh Runtime API and waits for its
/// first poll.
async fn start_function(
    bench: &Bench,
    programs: &Programs,
    name: &'static str,
    out: &mut Narrator,
) -> Step<Function> {
    let path = programs.function(name);
    if !path.is_file() {
        return Err(Failure::mismatch(
            format!("the {name} binary is missing"),
            format!(
                "{} (cargo build --bin {name}, or sam build for the Lambda package)",
                path.display()
            ),
            "no such file",
        ));
    }
    let launched = stagewire_devkit::Function::launch_with(
        &programs.launcher,
        path,
        &bench.function_env(),
        Duration::from_secs(15),
    )
    .await;
    let launched = match launched {
        Ok(launched) => launched,
        Err(DevkitError::NotStarted { after, output, .. }) => {
            let tail = output[output.len().saturating_sub(15)..]
                .iter()
                .map(|l| format!("{name} | {l}"))
                .collect();
            return Err(Failure::mismatch(
                format!("{name} did not start"),
                format!(
                    "a poll of /runtime/invocation/next within {} s",
                    after.as_secs()
                ),
                "no poll",
            )
            .with_context(tail));
        }
        Err(e) => {
            return Err(failed(format!("starting {}", programs.command_line(name)))(
                e,
            ))
        }
    };
    let init = launched.init;
    let function = Function {
        name,
        api: launched.api,
        process: launched.process,
    };
    if let Some(error) = function.api.init_error() {
        return Err(Failure::mismatch(
            format!("{name} reported an init error"),
            "no init error",
            error,
        ));
    }
    out.detail(format!(
        "{name} started (pid {}), polling the Runtime API at {} after {}",
        function
            .process
            .pid()
            .map_or("?".to_string(), |p| p.to_string()),
        function.api.address(),
        secs(init)
    ));
    Ok(function)
}

/// CloudFormation's side of the bindings in `stack` (the binding lives in the ECS stack, as
/// `examples/ecs-helloworld.yaml` places it).
fn binding_events(stack: &EcsStack) -> CfnEvents {
    CfnEvents::new(stack.id.clone(), SERVICE_TOKEN)
}

/// The properties of a binding of `stage`'s `helloworldElb` to the load balancer `lb_arn`
/// (`LoadBalancer: !Ref LoadBalancer` in the ECS stack).
fn binding_properties(api_id: &str, stage: &str, lb_arn: &str) -> Value {
    json!({
        "ServiceToken": SERVICE_TOKEN,
        "ServiceTimeout": "300",
        "RestApiId": api_id,
        "StageName": stage,
        "CreateStage": "true",
        "Variables": {
            VARIABLE: { "LoadBalancer": lb_arn }
        }
    })
}

/// Sends one custom-resource event to `stage-binding`; returns the one response it PUT and a
/// line describing the invocation. The response may be SUCCESS or FAILED.
async fn invoke_binding(
    function: &Function,
    receiver: &ResponseReceiver,
    event: Value,
) -> Step<(Received, String)> {
    let before = receiver.received().await.len();
    let invocation = function
        .api
        .invoke(event, INVOKE_TIMEOUT)
        .await
        .map_err(|e| failed("invoking stage-binding")(e).with_context(function.log_tail(15)))?;
    if let Outcome::Error(error) = &invocation.outcome {
        return Err(Failure::mismatch(
            "stage-binding answered Lambda with an error",
            "a report of the response it sent",
            error,
        )
        .with_context(function.log_tail(15)));
    }
    let received = receiver.wait_for(before + 1, Duration::from_secs(5)).await;
    let new: Vec<Received> = received[before..].to_vec();
    if new.len() != 1 {
        return Err(Failure::mismatch(
            "CloudFormation's response URL",
            "exactly one response",
            format!("{} responses", new.len()),
        )
        .with_context(function.log_tail(15)));
    }
    let response = new.into_iter().next().unwrap_or_else(|| unreachable!());
    if !response.violations.is_empty() {
        return Err(Failure::mismatch(
            "the response is not one CloudFormation accepts",
            "a well-formed PUT",
            response.violations.join("; "),
        ));
    }
    let report = invocation.response().cloned().unwrap_or(Value::Null);
    let line = format!(
        "{} {} answered in {}: one {} to the ResponseURL, {} bytes, empty Content-Type",
        function.name,
        report
            .get("request_type")
            .and_then(Value::as_str)
            .unwrap_or("request"),
        secs(invocation.duration),
        response.method,
        response.raw.len()
    );
    if function.process.log_text().contains(receiver.secret()) {
        return Err(Failure::mismatch(
            "the ResponseURL leaked into the function's logs",
            "no trace of the URL's signature in the logs",
            "the signature appears in the logs",
        ));
    }
    Ok((response, line))
}

/// Fails unless CloudFormation would mark the resource done.
fn expect_success(function: &Function, response: &Received) -> Step<()> {
    if response.status() == Some("SUCCESS") {
        return Ok(());
    }
    Err(Failure::mismatch(
        "CloudFormation would mark the resource failed",
        "Status SUCCESS",
        format!(
            "Status {} with Reason {:?}",
            response.status().unwrap_or("(none)"),
            response.field("Reason").unwrap_or_default()
        ),
    )
    .with_context(function.log_tail(15)))
}

/// Sends one custom-resource event to `stage-binding`; returns the one response it PUT, which
/// must be SUCCESS.
async fn send_custom_resource(bench: &Bench, event: Value, out: &mut Narrator) -> Step<Received> {
    let (Some(function), Some(receiver)) = (&bench.binding, &bench.receiver) else {
        return Err(Failure::new("stage-binding is not running"));
    };
    let (response, line) = invoke_binding(function, receiver, event).await?;
    out.detail(line);
    expect_success(function, &response)?;
    Ok(response)
}

fn show_response(out: &mut Narrator, response: &Received) {
    out.detail(format!(
        "  Status {}, PhysicalResourceId {}",
        response.status().unwrap_or("(none)"),
        response.field("PhysicalResourceId").unwrap_or("(none)")
    ));
    match response.body.get("Data") {
        Some(data) => out.detail(format!("  Data {data}")),
        None => out.detail("  no Data"),
    }
}

/// One Create for `stage`, bound to `stack`'s output; returns the PhysicalResourceId.
async fn create_binding(
    bench: &Bench,
    cfn: &CfnEvents,
    out: &mut Narrator,
    api_id: &str,
    logical_id: &str,
    stage: &str,
    stack: &EcsStack,
) -> Step<String> {
    let receiver = bench
        .receiver
        .as_ref()
        .ok_or_else(|| Failure::new("the response receiver is not running"))?;
    let properties = binding_properties(api_id, stage, &stack.lb_arn);
    let event = cfn.create(receiver, logical_id, properties);
    out.detail(format!(
        "Create {logical_id} in {}: stage {stage}, {VARIABLE} from LoadBalancer: !Ref LoadBalancer",
        stack.name
    ));
    let response = send_custom_resource(bench, event, out).await?;
    show_response(out, &response);
    let physical_id = response
        .field("PhysicalResourceId")
        .unwrap_or_default()
        .to_string();
    expect_data("response", &response, &stack.dns)?;
    bench.expect_var(api_id, stage, &stack.dns, "").await?;
    out.detail(format!("  stage {stage}: {VARIABLE} = {}", stack.dns));
    Ok(physical_id)
}

/// The response's `Data.helloworldElb` is `expected`; `what` names the response.
fn expect_data(what: &str, response: &Received, expected: &str) -> Step<()> {
    let data = response.body.get("Data").and_then(|d| d.get(VARIABLE));
    expect_eq(
        &format!("the {what}'s Data.{VARIABLE}"),
        expected,
        data.and_then(Value::as_str),
    )
}

/// What allowed the bindings, under the functions' `BindingAuthorization`.
fn consent_line(authorization: &str) -> String {
    if authorization == "Open" {
        return "BindingAuthorization Open (template.yaml's default): any API may be bound".into();
    }
    format!(
        "BindingAuthorization {authorization} (template.yaml's default): the API belongs to stack {API_STACK}; its tag {ALLOWED_STACKS_TAG} allowed the bindings of {PROD_STACK} and {DEV_STACK}"
    )
}

/// Step 5: the operator CLI's view of the bindings. Never fails the demo.
async fn cli_status(
    bench: &Bench,
    programs: &Programs,
    out: &mut Narrator,
    prod_dns: &str,
    dev_dns: &str,
) -> Step<()> {
    let path = &programs.cli;
    if !path.is_file() {
        out.detail(format!(
            "note: {} is not built (cargo build --bin stagewire); skipped",
            path.display()
        ));
        return Ok(());
    }
    out.detail("$ stagewire status");
    let child = tokio::process::Command::new(path)
        .arg("status")
        .envs(bench.function_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            out.detail(format!("note: cannot run {}: {e}", path.display()));
            return Ok(());
        }
    };
    let output = match tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await
    {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            out.detail(format!("note: stagewire status failed to run: {e}"));
            return Ok(());
        }
        Err(_) => {
            out.detail("note: stagewire status did not finish within 30 s; stopped");
            return Ok(());
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout.lines() {
        out.detail(format!("  {line}"));
    }
    let code = output.status.code();
    let printed = !stdout.trim().is_empty();
    match code {
        Some(0) if printed => out.detail("exit status 0: every variable is in sync"),
        Some(2) if printed => out.detail("exit status 2: at least one variable needs attention"),
        _ => {
            for line in stderr
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                out.detail(format!("  {line}"));
            }
            out.detail(format!(
                "note: this build's stagewire CLI gave no status ({}, {} bytes of output)",
                output.status,
                stdout.len()
            ));
            return Ok(());
        }
    }
    for (stage, dns) in [("prod", prod_dns), ("dev", dev_dns)] {
        // The status table may shorten long values (`…`): a prefix counts.
        let prefix: String = dns.chars().take(20).collect();
        if !stdout.contains(&prefix) {
            out.detail(format!(
                "note: the status output does not mention stage {stage}'s value {dns}"
            ));
        }
    }
    Ok(())
}

/// `GET /<stage>/helloworld` through the API Gateway stand-in; fails unless it answers `200` with
/// the helloworld service's body.
async fn call_helloworld(gateway: &Gateway, out: &mut Narrator, stage: &str) -> Step<()> {
    let path = format!("/{stage}/helloworld");
    let (status, body) = gateway
        .get(&path)
        .await
        .map_err(failed(format!("GET {path}")))?;
    let body = String::from_utf8_lossy(&body).to_string();
    out.detail(format!("GET {path} -> {status} {body}"));
    if status != 200 || body != HELLO {
        return Err(Failure::mismatch(
            format!("the answer of GET {path}"),
            format!("200 {HELLO}"),
            format!("{status} {body}"),
        ));
    }
    Ok(())
}

/// Step 6: the seed's request `GET /prod/helloworld`, through the stand-in for the deployed
/// API's HTTP_PROXY integration to the stand-in for each load balancer.
async fn call_api(
    bench: &mut Bench,
    out: &mut Narrator,
    api_id: &str,
    prod: &EcsStack,
    dev: &EcsStack,
) -> Step<()> {
    let lbs = LocalLoadBalancers::new();
    bench.lbs = Some(lbs.clone());
    for stack in [prod, dev] {
        let addr = lbs
            .start(&stack.dns, true)
            .await
            .map_err(failed(format!("starting the load balancer {}", stack.dns)))?;
        out.detail(format!(
            "load balancer {} answers on {addr} (its helloworld task is healthy)",
            stack.dns
        ));
    }
    let gateway = Gateway::start(bench.apigw.clone(), api_id, lbs.clone(), GATEWAY_REFRESH)
        .await
        .map_err(failed("starting the API Gateway stand-in"))?;
    out.detail(format!(
        "{API_NAME} deployed at {} (HTTP_PROXY to http://${{stageVariables.{VARIABLE}}}, stage variables read from moto every {})",
        gateway.endpoint(),
        secs(GATEWAY_REFRESH)
    ));
    let gateway = bench.gateway.insert(gateway);
    call_helloworld(gateway, out, "prod").await?;
    call_helloworld(gateway, out, "dev").await?;
    for stack in [prod, dev] {
        if lbs.served(&stack.dns) != 1 {
            return Err(Failure::mismatch(
                format!("requests served by {}", stack.dns),
                1,
                lbs.served(&stack.dns),
            ));
        }
    }
    out.detail("each stage's request was served by its own load balancer");
    Ok(())
}

/// The load balancer's name, from its ARN (`...:loadbalancer/app/<name>/<id>`).
fn lb_name(arn: &str) -> String {
    arn.split('/').nth(2).unwrap_or(arn).to_string()
}

/// The logical id of a generation's resource: the template's own for the first generation.
fn generation_id(kind: &str, tag: &str) -> String {
    if tag == "A" {
        kind.to_string()
    } else {
        format!("{kind}{tag}")
    }
}

/// What the ECS template's update changes: the output naming the load balancer `LoadBalancer`.
const OUTPUT_LINE: &str = "Value: !GetAtt LoadBalancer.DNSName";
/// The start of the binding's resource in the ECS template.
const BINDING_BLOCK: &str = "\n  StageBinding:\n";

/// The example ECS template (without the binding) holding the load balancers of `generations`
/// (tag, name), oldest first: the first is the template's own `LoadBalancer`; each later one
/// comes with its target group and listener; `EcsElbDnsName` names the newest. moto cannot
/// replace a load balancer in place, so the update adds the new one beside the old, and cleanup
/// deletes the old.
fn generations_template(base: &str, generations: &[(String, String)]) -> String {
    let newest = generations
        .last()
        .map_or("A".to_string(), |(tag, _)| tag.clone());
    let lb = generation_id("LoadBalancer", &newest);
    let mut t = examples::without_binding(base)
        .replace(OUTPUT_LINE, &format!("Value: !GetAtt {lb}.DNSName"));
    let mut resources = String::new();
    for (tag, name) in generations.iter().skip(1) {
        resources.push_str(&format!(
            r#"
  LoadBalancer{tag}:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    DependsOn: PublicDefaultRoute
    Properties:
      Name: {name}
      Type: application
      Scheme: internet-facing
      Subnets: [!Ref PublicSubnetA, !Ref PublicSubnetB]
      SecurityGroups: [!Ref LoadBalancerSecurityGroup]

  TargetGroup{tag}:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      VpcId: !Ref Vpc
      TargetType: ip
      Protocol: HTTP
      Port: 80

  Listener{tag}:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref LoadBalancer{tag}
      Protocol: HTTP
      Port: 80
      DefaultActions:
        - Type: forward
          TargetGroupArn: !Ref TargetGroup{tag}
"#
        ));
    }
    if let Some(at) = t.find("\nOutputs:\n") {
        t.insert_str(at, &resources);
    }
    if !t.ends_with('\n') {
        t.push('\n');
    }
    for (tag, _) in generations {
        let (lb, tg) = (
            generation_id("LoadBalancer", tag),
            generation_id("TargetGroup", tag),
        );
        t.push_str(&format!(
            "  Arn{tag}:\n    Value: !Ref {lb}\n  Dns{tag}:\n    Value: !GetAtt {lb}.DNSName\n  Tg{tag}:\n    Value: !Ref {tg}\n"
        ));
    }
    t
}

/// A custom-resource response and the line describing its invocation, or why there was none.
type Answer = Step<(Received, String)>;

/// CloudFormation's side of the prod `StageBinding` in the ECS stack while the stack is updated:
/// the binding's Update, its `LoadBalancer` property now the new load balancer's ARN, sent to
/// the running `stage-binding`.
struct StackUpdate {
    function: Function,
    receiver: ResponseReceiver,
    cfn: Arc<CfnEvents>,
    api_id: String,
    physical_id: String,
    /// The load balancer the binding's properties name.
    current_arn: Mutex<String>,
    /// Each Update's response (or why there was none) and how long it took.
    answers: Mutex<Vec<(Answer, Duration)>>,
}

impl Parties for StackUpdate {
    fn update_binding<'a>(&'a self, lb_arn: &'a str, _rollback: bool) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let current = self
                .current_arn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let old = binding_properties(&self.api_id, "prod", &current);
            let new = binding_properties(&self.api_id, "prod", lb_arn);
            let event = self
                .cfn
                .update(&self.receiver, BINDING, &self.physical_id, new, old);
            let started = Instant::now();
            let answer = invoke_binding(&self.function, &self.receiver, event).await;
            let ok = matches!(&answer, Ok((r, _)) if r.status() == Some("SUCCESS"));
            if ok {
                *self.current_arn.lock().unwrap_or_else(|e| e.into_inner()) = lb_arn.to_string();
            }
            self.answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((answer, started.elapsed()));
            ok
        })
    }

    fn deliver(&self, _event: Value) -> BoxFuture<'_, ()> {
        // The binding lives in the ECS stack: CloudFormation updates it, no event is needed.
        Box::pin(async {})
    }
}

/// Step 7: replace the prod load balancer the way CloudFormation does, with `GET
/// /prod/helloworld` sent throughout; returns the prod stack with its new load balancer.
#[allow(clippy::too_many_arguments)]
async fn replace_under_traffic(
    bench: &mut Bench,
    out: &mut Narrator,
    template: &str,
    old: &EcsStack,
    dev: &EcsStack,
    api_id: &str,
    cfn: &Arc<CfnEvents>,
    physical_id: &str,
) -> Step<EcsStack> {
    for needle in [OUTPUT_LINE, BINDING_BLOCK, "\nOutputs:\n"] {
        if !template.contains(needle) {
            return Err(Failure::mismatch(
                format!("{ECS_TEMPLATE} cannot be updated with a new load balancer"),
                format!("a template holding {needle:?}"),
                "no such text",
            ));
        }
    }
    let (Some(lbs), Some(gateway)) = (bench.lbs.clone(), bench.gateway.as_ref()) else {
        return Err(Failure::new("the API Gateway stand-in is not running"));
    };
    let url = format!("{}/helloworld", gateway.stage_url("prod"));
    let (Some(function), Some(receiver)) = (bench.binding.take(), bench.receiver.take()) else {
        return Err(Failure::new("stage-binding is not running"));
    };
    let parties = Arc::new(StackUpdate {
        function,
        receiver,
        cfn: cfn.clone(),
        api_id: api_id.to_string(),
        physical_id: physical_id.to_string(),
        current_arn: Mutex::new(old.lb_arn.clone()),
        answers: Mutex::new(Vec::new()),
    });
    let base = template.to_string();
    let template_fn: TemplateFn =
        Arc::new(move |generations| generations_template(&base, generations));
    let sdk = bench.aws.sdk.clone();
    let mut stack = choreography::EcsStack::adopt(
        &sdk,
        &old.name,
        &old.id,
        Generation {
            tag: "A".into(),
            name: lb_name(&old.lb_arn),
            arn: old.lb_arn.clone(),
            dns: old.dns.clone(),
            target_group: old.tg_arn.clone(),
        },
        template_fn,
        vec![("EnvironmentName".into(), "prod".into())],
    );
    out.detail(format!(
        "{RATE} requests/s to GET /prod/helloworld through the API Gateway stand-in"
    ));
    let load = Load::start(&url, RATE, HELLO, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replayed = choreography::replace_load_balancer(
        &mut stack,
        NEW_LB_NAME,
        &lbs,
        parties.clone(),
        Placement::SameStack,
        REPLACEMENT,
        None,
        (ACCOUNT, REGION),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    let parties = Arc::try_unwrap(parties)
        .map_err(|_| Failure::new("the binding's Update is still running"))?;
    bench.binding = Some(parties.function);
    bench.receiver = Some(parties.receiver);
    let replayed = replayed.map_err(failed(format!("UpdateStack {}", old.name)))?;
    out.detail(format!("UpdateStack {}:", old.name));
    for line in replayed.lines() {
        out.detail(format!("  {line}"));
    }
    let answers = parties
        .answers
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let function = bench
        .binding
        .as_ref()
        .ok_or_else(|| Failure::new("stage-binding is not running"))?;
    let [(answer, took)] = <[_; 1]>::try_from(answers).map_err(|a: Vec<_>| {
        Failure::mismatch("the binding's Updates", "exactly one Update", a.len())
    })?;
    let (response, line) = answer?;
    out.detail(format!(
        "Update {BINDING}: LoadBalancer: !Ref LoadBalancer is now {NEW_LB_NAME}"
    ));
    out.detail(format!("  {line}"));
    show_response(out, &response);
    expect_success(function, &response)?;
    let new = stack.current().clone();
    expect_data("Update response", &response, &new.dns)?;
    let position = |what: &str| replayed.steps.iter().position(|(_, s)| s.contains(what));
    match (position("has a healthy target"), position("the binding answers")) {
        (Some(healthy), Some(answered)) if healthy < answered => out.detail(format!(
            "  the Update switched and answered after {}, once {NEW_LB_NAME} had a healthy target (target health checked every 5 s)",
            secs(took)
        )),
        _ => {
            return Err(Failure::mismatch(
                "the order of the replacement",
                "the new load balancer has a healthy target before the binding answers",
                replayed.lines().join("; "),
            ))
        }
    }
    bench
        .expect_var(api_id, "prod", &new.dns, " after the update")
        .await?;
    let found = bench
        .elbv2
        .describe_load_balancers()
        .load_balancer_arns(&old.lb_arn)
        .send()
        .await;
    if let Ok(found) = found {
        if !found.load_balancers().is_empty() {
            return Err(Failure::mismatch(
                "the old load balancer after cleanup",
                "no load balancer with the old ARN",
                &old.lb_arn,
            ));
        }
    }
    out.detail(format!(
        "stage prod: {VARIABLE} = {} (was {})",
        new.dns, old.dns
    ));
    bench.expect_dev_untouched(out, api_id, dev).await?;
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, n)| format!("{n} x {status}"))
        .collect();
    out.detail(format!(
        "traffic: {} requests sent, {} failed ({}); old load balancer served {}, new one {}",
        report.sent,
        report.failed,
        statuses.join(", "),
        lbs.served(&old.dns),
        lbs.served(&new.dns)
    ));
    if report.failed != 0 {
        return Err(Failure::mismatch(
            "failed requests while the load balancer was replaced",
            0,
            format!(
                "{} of {} (failing for {:.2} s)",
                report.failed,
                report.sent,
                report.window_secs()
            ),
        ));
    }
    if report.sent < u64::from(RATE) || lbs.served(&new.dns) == 0 {
        return Err(Failure::mismatch(
            "traffic during the replacement",
            format!("at least {RATE} requests, some served by the new load balancer"),
            format!(
                "{} sent, {} served by the new one",
                report.sent,
                lbs.served(&new.dns)
            ),
        ));
    }
    if lbs.is_running(&old.dns) {
        return Err(Failure::new(
            "the old load balancer's server still runs after cleanup",
        ));
    }
    let gateway = bench
        .gateway
        .as_ref()
        .ok_or_else(|| Failure::new("the API Gateway stand-in is not running"))?;
    call_helloworld(gateway, out, "prod").await?;
    Ok(EcsStack {
        name: old.name.clone(),
        id: old.id.clone(),
        dns: new.dns.clone(),
        lb_arn: new.arn.clone(),
        tg_arn: new.target_group.clone(),
        resources: old.resources,
        task: ("10.0.1.10".to_string(), "healthy".to_string()),
    })
}

/// Step 8: `stage-resync` reacts to the stack's status change.
async fn resync(
    bench: &Bench,
    out: &mut Narrator,
    api_id: &str,
    old: &EcsStack,
    new: &EcsStack,
    dev: &EcsStack,
) -> Step<()> {
    let Some(function) = &bench.resync else {
        return Err(Failure::new("stage-resync is not running"));
    };
    let event = seed::stack_status_event(ACCOUNT, REGION, &new.id, "UPDATE_COMPLETE");
    out.detail(format!(
        "event: \"CloudFormation Stack Status Change\", {} UPDATE_COMPLETE",
        new.name
    ));
    let started = Instant::now();
    let invocation = function
        .api
        .invoke(event.clone(), INVOKE_TIMEOUT)
        .await
        .map_err(failed("invoking stage-resync"))?;
    let summary = match &invocation.outcome {
        Outcome::Response(summary) => summary.clone(),
        Outcome::Error(error) => {
            return Err(Failure::mismatch(
                "stage-resync reported an error",
                "a summary of the changes",
                error,
            ))
        }
    };
    let live = bench.stage_var(api_id, "prod").await?;
    let repointed = started.elapsed();
    out.detail(format!(
        "stage-resync answered in {}:",
        secs(invocation.duration)
    ));
    out.detail(indent_json(&summary));
    let changed = summary
        .get("changed")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !changed.is_empty() {
        return Err(Failure::mismatch(
            "the re-sync summary",
            format!(
                "no change: the binding's Update already moved {VARIABLE} from {} to {}",
                old.dns, new.dns
            ),
            Value::Array(changed),
        ));
    }
    expect_eq(
        "stage prod variable helloworldElb after the re-sync",
        &new.dns,
        live.as_deref(),
    )?;
    out.detail(format!(
        "stage prod: {VARIABLE} = {} already; nothing to re-point ({} from event to answer)",
        new.dns,
        secs(repointed)
    ));
    bench.expect_dev_untouched(out, api_id, dev).await?;
    let again = function
        .api
        .invoke(event, INVOKE_TIMEOUT)
        .await
        .map_err(failed("invoking stage-resync a second time"))?;
    let changed_again = again
        .response()
        .and_then(|s| s.get("changed"))
        .and_then(Value::as_array)
        .map(Vec::len);
    if changed_again != Some(0) {
        return Err(Failure::mismatch(
            "a duplicate delivery of the same event",
            "no change",
            format!("{:?}", again.outcome),
        ));
    }
    out.detail(format!(
        "the same event delivered again changes nothing ({})",
        secs(again.duration)
    ));
    Ok(())
}

/// Step 9: the prod binding's Delete.
async fn delete_binding(
    bench: &Bench,
    cfn: &CfnEvents,
    out: &mut Narrator,
    api_id: &str,
    physical_id: &str,
    prod: &EcsStack,
    dev: &EcsStack,
) -> Step<()> {
    let receiver = bench
        .receiver
        .as_ref()
        .ok_or_else(|| Failure::new("the response receiver is not running"))?;
    let properties = binding_properties(api_id, "prod", &prod.lb_arn);
    let event = cfn.delete(receiver, BINDING, physical_id, properties);
    out.detail(format!("Delete {BINDING} ({physical_id})"));
    let response = send_custom_resource(bench, event, out).await?;
    show_response(out, &response);
    expect_eq(
        "the Delete response's PhysicalResourceId",
        physical_id,
        response.field("PhysicalResourceId"),
    )?;
    let prod = bench.stage_vars(api_id, "prod").await?;
    if let Some(vars) = prod {
        return Err(Failure::mismatch(
            "stage prod after the Delete",
            "no stage prod (the binding created it and nothing else lives there)",
            format!("stage prod with variables {vars:?}"),
        ));
    }
    out.detail(format!(
        "stage prod and its {VARIABLE} are gone (the binding had created the stage)"
    ));
    bench.expect_dev_untouched(out, api_id, dev).await
}

// ---------------------------------------------------------------------------------------------
// The story

/// Steps 1 to 9; the bench goes into `slot` as soon as it exists, so that it is always stopped.
async fn run(
    out: &mut Narrator,
    slot: &mut Option<Bench>,
    root: &Path,
    programs: &Programs,
) -> Step<()> {
    out.begin("Starting moto and creating the registry table");
    let started = start_bench(out, root).await;
    let bench = slot.insert(out.end(started)?);

    out.begin("Deploying the ECS stacks EcsHelloworldProd and EcsHelloworldDev");
    let template_path = root.join(ECS_TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .map_err(|e| Failure::new(format!("reading {}: {e}", template_path.display())));
    let deployed = match template {
        Ok(template) => deploy_ecs_stacks(bench, out, &template)
            .await
            .map(|(prod, dev)| (template, prod, dev)),
        Err(e) => Err(e),
    };
    let (template, prod, dev) = out.end(deployed)?;

    out.begin("Deploying the API stack EcsDemoApi (the REST API EcsDemoAPI)");
    let created = create_api(bench, out, root).await;
    let api_id = out.end(created)?;

    out.begin("Binding stages prod and dev with the stage-binding function");
    let bound = async {
        let receiver = ResponseReceiver::start(vec![])
            .await
            .map_err(failed("starting the response receiver"))?;
        out.detail(format!(
            "CloudFormation's response URLs point at {}",
            receiver.url("").split('?').next().unwrap_or_default()
        ));
        bench.receiver = Some(receiver);
        bench.binding = Some(start_function(bench, programs, "stage-binding", out).await?);
        let cfn = Arc::new(binding_events(&prod));
        let prod_id = create_binding(bench, &cfn, out, &api_id, BINDING, "prod", &prod).await?;
        let dev_cfn = binding_events(&dev);
        create_binding(bench, &dev_cfn, out, &api_id, BINDING, "dev", &dev).await?;
        out.detail(consent_line(&bench.authorization));
        Ok((cfn, prod_id))
    }
    .await;
    let (cfn, prod_physical_id) = out.end(bound)?;

    out.begin("Asking the stagewire CLI for the bindings' status");
    let status = cli_status(bench, programs, out, &prod.dns, &dev.dns).await;
    out.end(status)?;

    out.begin("Calling GET /prod/helloworld through the API Gateway stand-in");
    let called = call_api(bench, out, &api_id, &prod, &dev).await;
    out.end(called)?;

    out.begin(
        "Replacing the prod load balancer with an update of EcsHelloworldProd, under traffic",
    );
    let replaced = replace_under_traffic(
        bench,
        out,
        &template,
        &prod,
        &dev,
        &api_id,
        &cfn,
        &prod_physical_id,
    )
    .await;
    let replaced = replaced.map_err(|f| f.with_context(bench.function_logs()));
    let new_prod = out.end(replaced)?;

    out.begin("Re-syncing with the stage-resync function");
    let synced = async {
        bench.resync = Some(start_function(bench, programs, "stage-resync", out).await?);
        resync(bench, out, &api_id, &prod, &new_prod, &dev).await
    }
    .await;
    let synced = synced.map_err(|f| f.with_context(bench.function_logs()));
    out.end(synced)?;

    out.begin("Deleting the prod binding");
    let deleted = delete_binding(
        bench,
        &cfn,
        out,
        &api_id,
        &prod_physical_id,
        &new_prod,
        &dev,
    )
    .await;
    out.end(deleted)?;
    Ok(())
}

/// The directory holding the function binaries: this executable's.
fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| {
            stagewire_devkit::workspace_root()
                .join("target")
                .join("debug")
        })
}

const USAGE: &str = "usage: demo [--keep] [--stage-binding PATH] [--stage-resync PATH] [--launcher \"PROGRAM ARGS...\"]
  --keep  after the story, leave moto, the functions and the API Gateway stand-in running and
          print the environment to point the CLI at them; Ctrl-C stops everything";

/// `--keep` and the other arguments.
fn split_keep(args: &[String]) -> (bool, Vec<String>) {
    let keep = args.iter().any(|a| a == "--keep");
    (
        keep,
        args.iter().filter(|a| *a != "--keep").cloned().collect(),
    )
}

/// `--keep`: prints how to reach the local world, then waits for Ctrl-C.
async fn keep_running(bench: &Bench, programs: &Programs) {
    let exports: Vec<String> = bench
        .function_env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("STAGEWIRE_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!();
    println!("The local world keeps running (--keep). In another shell:");
    println!("  export {}", exports.join(" "));
    println!("  {} status", programs.cli.display());
    if let Some(gateway) = &bench.gateway {
        println!(
            "  curl {}/helloworld    # stage dev (step 9 deleted prod's binding and its stage)",
            gateway.stage_url("dev")
        );
    }
    for f in [&bench.binding, &bench.resync].into_iter().flatten() {
        println!(
            "{} (pid {}) waits for invocations on its Runtime API at {}",
            f.name,
            f.process.pid().map_or("?".to_string(), |p| p.to_string()),
            f.api.address()
        );
    }
    println!("Press Ctrl-C to stop everything.");
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    println!();
}

/// The programs the demo runs.
#[derive(Debug, Clone, PartialEq)]
struct Programs {
    /// Put before each function binary (program and arguments); empty runs the binary itself.
    launcher: Vec<String>,
    stage_binding: PathBuf,
    stage_resync: PathBuf,
    /// The operator CLI, run directly.
    cli: PathBuf,
}

impl Programs {
    /// The binaries in `bin_dir`, changed by the command-line `args` (without the program name).
    fn from_args(bin_dir: &Path, args: &[String]) -> Result<Programs, String> {
        let mut programs = Programs {
            launcher: Vec::new(),
            stage_binding: bin_dir.join("stage-binding"),
            stage_resync: bin_dir.join("stage-resync"),
            cli: bin_dir.join("stagewire"),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--stage-binding" => programs.stage_binding = PathBuf::from(value()?),
                "--stage-resync" => programs.stage_resync = PathBuf::from(value()?),
                "--launcher" => {
                    programs.launcher = value()?.split_whitespace().map(str::to_string).collect()
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(programs)
    }

    /// The binary of function `name`.
    fn function(&self, name: &str) -> &Path {
        if name == "stage-resync" {
            &self.stage_resync
        } else {
            &self.stage_binding
        }
    }

    /// How function `name` is started, as a shell would show it.
    fn command_line(&self, name: &str) -> String {
        self.launcher
            .iter()
            .cloned()
            .chain([self.function(name).display().to_string()])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let root = stagewire_devkit::workspace_root();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (keep, args) = split_keep(&args);
    let programs = match Programs::from_args(&bin_dir(), &args) {
        Ok(programs) => programs,
        Err(e) => {
            eprintln!("demo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("stagewire demo: the seed scenario on this machine, against moto (no AWS account)");
    for name in ["stage-binding", "stage-resync"] {
        println!("{name}: {}", programs.command_line(name));
    }
    println!();
    let mut out = Narrator::new();
    let mut slot = None;
    let outcome = tokio::select! {
        result = run(&mut out, &mut slot, &root, &programs) => result,
        _ = tokio::signal::ctrl_c() => {
            println!("{INTERRUPTED}");
            Err(Failure::new(INTERRUPTED))
        }
    };
    if let (true, Ok(()), Some(bench)) = (keep, &outcome, &slot) {
        keep_running(bench, &programs).await;
    }
    let failed_at = outcome.as_ref().err().map(|_| out.step);
    let interrupted = outcome.as_ref().is_err_and(|f| f.message == INTERRUPTED);
    let stopped = match slot.take() {
        Some(bench) => {
            if failed_at.is_some() {
                // Jump to the last step: stopping is always narrated as step 9.
                out.step = STEPS - 1;
            }
            out.begin("Stopping moto, the functions and the servers");
            let stopped = stop(bench, &mut out).await;
            out.end(stopped).is_ok()
        }
        None => true,
    };
    println!();
    let total = secs(out.started.elapsed());
    match failed_at {
        None if stopped => {
            println!("Demo complete: all {STEPS} steps held, in {total}.");
            ExitCode::SUCCESS
        }
        None => {
            println!("Demo FAILED while stopping, after {total}.");
            ExitCode::FAILURE
        }
        Some(step) => {
            let what = if interrupted { "interrupted" } else { "FAILED" };
            println!(
                "Demo {what} at step {step}/{STEPS} after {total}; everything it started has been stopped."
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn without_options_the_functions_come_from_the_demo_directory() {
        let programs = Programs::from_args(Path::new("/t/debug"), &[]).unwrap();
        assert!(programs.launcher.is_empty());
        assert_eq!(programs.stage_binding, Path::new("/t/debug/stage-binding"));
        assert_eq!(programs.stage_resync, Path::new("/t/debug/stage-resync"));
        assert_eq!(programs.cli, Path::new("/t/debug/stagewire"));
        assert_eq!(
            programs.command_line("stage-resync"),
            "/t/debug/stage-resync"
        );
    }

    #[test]
    fn packages_run_through_the_launcher() {
        let programs = Programs::from_args(
            Path::new("/t/debug"),
            &args(&[
                "--stage-binding",
                ".aws-sam/build/StageBindingFunction/bootstrap",
                "--launcher",
                " qemu-aarch64  -L /usr/aarch64-linux-gnu ",
                "--stage-resync",
                ".aws-sam/build/StageResyncFunction/bootstrap",
            ]),
        )
        .unwrap();
        assert_eq!(
            programs.launcher,
            args(&["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"])
        );
        assert_eq!(
            programs.command_line("stage-binding"),
            "qemu-aarch64 -L /usr/aarch64-linux-gnu .aws-sam/build/StageBindingFunction/bootstrap"
        );
        assert_eq!(
            programs.function("stage-resync"),
            Path::new(".aws-sam/build/StageResyncFunction/bootstrap")
        );
        assert_eq!(programs.cli, Path::new("/t/debug/stagewire"));
    }

    #[test]
    fn keep_is_taken_out_of_the_arguments() {
        let (keep, rest) = split_keep(&args(&["--keep", "--launcher", "qemu"]));
        assert!(keep);
        assert_eq!(rest, args(&["--launcher", "qemu"]));
        assert!(!split_keep(&args(&[])).0);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let dir = Path::new("/t/debug");
        assert!(Programs::from_args(dir, &args(&["--launcher"]))
            .unwrap_err()
            .contains("--launcher needs a value"));
        assert!(Programs::from_args(dir, &args(&["--bin-dir", "x"]))
            .unwrap_err()
            .contains("unknown argument"));
    }
}
