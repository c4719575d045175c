//! `bench`: measures the stagewire functions on one moto server and prints the markdown tables
//! of the README's "Performance" section (memory and sizes in MiB, goals in the same unit).
//!
//! Measured in one run:
//! - cold init of `stage-binding` and `stage-resync` (spawn to the first Runtime API poll, median
//!   of several spawns), and of `stage-binding` without `STAGEWIRE_TABLE` (it then answers every
//!   request FAILED without loading the AWS configuration or building clients);
//! - the seed Create (one stack-output variable) through the real `stage-binding`: wall time from
//!   the invoke to the response PUT, and the AWS calls counted by a [`stagewire_devkit::FaultProxy`] placed as the
//!   function's `AWS_ENDPOINT_URL`, and the response PUTs counted by the receiver;
//! - one stack event affecting 3 bindings, with no other binding in the registry and then
//!   among 10,000 bindings over 1,000 stages (calls per operation, registry queries), and two
//!   full reconciles (`{"resync":"all"}`) of the same registry, the writes of each counted;
//! - 30 Creates of new REST stages at once, each by a `stage-binding` process of its own, behind
//!   the proxy's API Gateway account quotas: wall time, SUCCESS answers, throttled calls;
//! - peak RSS of each function after its invocations, binary sizes and zipped `bootstrap` sizes;
//! - the same seed Create done by a Python crhelper + boto3 function (`bench/crhelper_binding`)
//!   under the same Runtime API through `awslambdaric`, when `bench/.venv` provides it.
//!
//! Usage: `bench [--bin-dir DIR] [--python PATH] [--spawns N] [--bindings N] [--stages N]`.
//! `--bin-dir` defaults to the directory of this executable.
//!
//! `bench --fanout [--bin-dir DIR] [--sizes N,N] [--stages N] [--workers N,N]` measures the full reconcile
//! fanned out over SQS instead (see [`fanout`]): for each size (default 10,000 and 100,000
//! bindings over 1,000 stages, their sources stack outputs in 10 accounts and 2 regions), wall
//! time with 1, 4 and 16 workers (`--workers`), the highest API Gateway request rate in any
//! second, peak RSS per worker and AWS calls per binding (`AssumeRole` among them).
//!
//! `bench --private` prints only the row of a private stage whose network load
//! balancer and VPC link are replaced under traffic (see [`private_swap`]), which the full run
//! prints too.
//!
//! `bench --idle [--before REV]` prints how many times an idle account invokes `stage-resync` in
//! a day under the EventBridge rules of `REV:template.yaml` (default c96b1c6, before the rules
//! were narrowed) and of the current template (see [`idle`]); it needs no moto and no build.

#[path = "../bench_fanout.rs"]
mod fanout;
#[path = "../bench_idle.rs"]
mod idle;
#[path = "../bench_private.rs"]
mod private_swap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use serde_json::{json, Value};
use stagewire::aws::dynamodb::item;
use stagewire::ports::Record;
use stagewire_devkit::elb_stack::register_target;
use stagewire_devkit::stages::rest_stage_variables;
use stagewire_devkit::{
    deploy_elb_stack, error_chain, CfnEvents, Function, LocalAws, Outcome, ResponseReceiver,
};
use stagewire_devkit::{records, seed};
use stagewire_tools::{ACCOUNT, OUTPUT_KEY, REGION, SERVICE_TOKEN, VARIABLE};

const TABLE: &str = "stagewire-bench-registry";
const ELB_STACK: &str = "BenchElbStack";
/// The stages the three real bindings create; the first Create is the measured seed Create.
const REAL_STAGES: [&str; 3] = ["prod", "dev", "qa"];
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(1_800);
/// The registry of the bindings created at once.
const BURST_TABLE: &str = "stagewire-bench-burst";
/// Bindings created at once behind the account's quotas.
const BURST: usize = 30;
/// Peak RSS goal per function, MiB.
const RSS_GOAL_MIB: f64 = 30.0;
/// Zipped package goal per function, MiB.
const ZIP_GOAL_MIB: f64 = 8.0;
/// Concurrent BatchWriteItem calls while loading the registry.
const LOAD_PARALLELISM: usize = 4;

type BenchResult<T> = Result<T, String>;

fn err<E: std::error::Error + 'static>(doing: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{doing}: {}", error_chain(&e))
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
    bin_dir: PathBuf,
    python: PathBuf,
    spawns: usize,
    bindings: usize,
    stages: usize,
    /// `--fanout`: the registry sizes of the fan-out measurement.
    fanout: Option<Vec<usize>>,
    /// `--workers`: the fan-out's worker counts.
    workers: Vec<usize>,
}

fn parse_args() -> BenchResult<Options> {
    let root = stagewire_devkit::workspace_root();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root.join("target/debug"));
    let mut options = Options {
        bin_dir: exe_dir,
        python: root.join("bench/.venv/bin/python"),
        spawns: 5,
        bindings: 10_000,
        stages: 1_000,
        fanout: None,
        workers: fanout::WORKERS.to_vec(),
    };
    let mut sizes = vec![10_000, 100_000];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |text: String, name: &str| {
            text.parse::<usize>()
                .map_err(|_| format!("{name} takes a number, not {text:?}"))
        };
        match arg.as_str() {
            "--bin-dir" => options.bin_dir = PathBuf::from(value("--bin-dir")?),
            "--python" => options.python = PathBuf::from(value("--python")?),
            "--spawns" => options.spawns = number(value("--spawns")?, "--spawns")?.max(1),
            "--bindings" => options.bindings = number(value("--bindings")?, "--bindings")?,
            "--stages" => options.stages = number(value("--stages")?, "--stages")?.max(4),
            "--fanout" => options.fanout = Some(Vec::new()),
            "--sizes" => {
                sizes = value("--sizes")?
                    .split(',')
                    .map(|n| number(n.trim().to_string(), "--sizes"))
                    .collect::<Result<_, _>>()?
            }
            "--workers" => {
                options.workers = value("--workers")?
                    .split(',')
                    .map(|n| number(n.trim().to_string(), "--workers").map(|n| n.max(1)))
                    .collect::<Result<_, _>>()?
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [--bin-dir DIR] [--python PATH] [--spawns N] [--bindings N] [--stages N]\n       bench --fanout [--bin-dir DIR] [--sizes N,N] [--stages N] [--workers N,N]\n       bench --private"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.bin_dir.is_relative() {
        options.bin_dir = std::env::current_dir()
            .map(|d| d.join(&options.bin_dir))
            .unwrap_or(options.bin_dir);
    }
    if let Some(f) = &mut options.fanout {
        *f = sizes;
    }
    if options.bindings < options.stages {
        return Err("--bindings must be at least --stages".into());
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1_000.0)
}

/// Bytes in one mebibyte: every memory and size figure of the bench is in MiB.
const MIB: f64 = 1024.0 * 1024.0;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// Peak RSS as the kernel reports it (KiB), in MiB.
fn rss(kib: Option<u64>) -> String {
    kib.map_or("n/a".to_string(), |kib| mib(kib * 1024))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// `GET /restapis/{id}/stages/{id}`: an API Gateway operation with its ids left out.
fn kind(operation: &str) -> String {
    let Some((method, path)) = operation.split_once(' ') else {
        return operation.to_string();
    };
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            let v2 = path.starts_with("/v2/");
            let id_at = if v2 { i >= 2 && i % 2 == 0 } else { i % 2 == 1 };
            if id_at {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    format!("{method} /{path}")
}

/// Whether a call writes: an API Gateway call other than a read, or a DynamoDB write.
fn is_write(service: &str, operation: &str) -> bool {
    match service {
        "apigateway" => !operation.starts_with("GET "),
        "dynamodb" => matches!(
            operation,
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
        ),
        _ => false,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// `service:Operation xN, ...` for the proxy's counts, ids left out of API Gateway paths.
fn breakdown(counts: &BTreeMap<(String, String), u64>) -> String {
    let mut kinds: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((service, op), n) in counts {
        *kinds.entry((service.clone(), kind(op))).or_default() += n;
    }
    kinds
        .iter()
        .map(|((service, op), n)| {
            if *n == 1 {
                format!("{service}:{op}")
            } else {
                format!("{service}:{op} x{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The writes among the proxy's counts: how many, and `service:Operation xN, ...`.
fn writes(counts: &BTreeMap<(String, String), u64>) -> (u64, String) {
    let written: BTreeMap<(String, String), u64> = counts
        .iter()
        .filter(|((service, op), _)| is_write(service, op))
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    (written.values().sum(), breakdown(&written))
}

/// The command that starts a function: a binary, or a wrapper script.
struct Launcher {
    path: PathBuf,
    env: Vec<(String, String)>,
}

impl Launcher {
    async fn start(&self) -> BenchResult<Function> {
        Function::launch(&self.path, &self.env, Duration::from_secs(30))
            .await
            .map_err(err(&format!("starting {}", self.path.display())))
    }

    /// Median time from spawn to the first poll over `n` fresh processes.
    async fn cold_init(&self, n: usize) -> BenchResult<Duration> {
        let mut times = Vec::new();
        for _ in 0..n {
            let mut f = self.start().await?;
            times.push(f.init);
            let _ = f.process.kill().await;
        }
        Ok(median(times))
    }
}

/// moto of the bench's own, its registry table, and the proxy that counts the functions' calls.
async fn local_aws() -> BenchResult<LocalAws> {
    LocalAws::start(TABLE).await.map_err(err(
        "starting moto, the registry table and the counting proxy",
    ))
}

/// Writes `count` filler bindings over `stages` stages.
async fn load_filler(
    ddb: &aws_sdk_dynamodb::Client,
    count: usize,
    stages: usize,
    owner_stack: &str,
) -> BenchResult<()> {
    load_records(ddb, count, |i| records::filler(i, stages, owner_stack)).await
}

/// `count` records into the registry, 25 per BatchWriteItem, a few at once.
async fn load_records(
    ddb: &aws_sdk_dynamodb::Client,
    count: usize,
    record: impl Fn(usize) -> Record,
) -> BenchResult<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut start = 0;
    while start < count || !tasks.is_empty() {
        while tasks.len() < LOAD_PARALLELISM && start < count {
            let mut writes: Vec<WriteRequest> = (start..count.min(start + 25))
                .filter_map(|i| {
                    let put = PutRequest::builder()
                        .set_item(Some(item::encode(&record(i))))
                        .build()
                        .ok()?;
                    Some(WriteRequest::builder().put_request(put).build())
                })
                .collect();
            start += 25;
            let ddb = ddb.clone();
            tasks.spawn(async move {
                for _ in 0..10 {
                    let out = ddb
                        .batch_write_item()
                        .request_items(TABLE, writes)
                        .send()
                        .await
                        .map_err(err("BatchWriteItem"))?;
                    match out.unprocessed_items().and_then(|u| u.get(TABLE)) {
                        Some(left) if !left.is_empty() => writes = left.to_vec(),
                        _ => return Ok(()),
                    }
                }
                Err("BatchWriteItem left items unprocessed".to_string())
            });
        }
        if let Some(joined) = tasks.join_next().await {
            joined.map_err(err("a load task"))??;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The scenario

struct World {
    /// moto, the registry table, and the proxy the functions' calls go through.
    aws: LocalAws,
    receiver: ResponseReceiver,
    cfn: aws_sdk_cloudformation::Client,
    apigw: aws_sdk_apigateway::Client,
    ddb: aws_sdk_dynamodb::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// CloudFormation's side of the stack holding the bindings.
    events: CfnEvents,
    /// Bindings created so far (their logical ids are numbered).
    sent: usize,
}

impl World {
    /// The environment the functions run with: every AWS call goes through the proxy.
    fn env(&self, with_table: bool) -> Vec<(String, String)> {
        let mut env = match with_table {
            true => self.aws.function_env(),
            false => stagewire_devkit::moto::process_env(&self.aws.proxy.endpoint()),
        };
        // One team's account: its APIs carry no stagewire tags.
        env.push((
            "STAGEWIRE_BINDING_AUTHORIZATION".to_string(),
            "Open".to_string(),
        ));
        env
    }

    /// Creates (or re-creates) the ELB stack with load balancer `lb_name`; returns (id, DNS).
    async fn elb_stack(&self, lb_name: &str) -> BenchResult<(String, String)> {
        let stack = deploy_elb_stack(&self.cfn, ELB_STACK, lb_name)
            .await
            .map_err(err("deploying the ELB stack"))?;
        Ok((stack.stack_id, stack.dns))
    }

    /// A REST API with `GET /helloworld` proxied to `http://${stageVariables.helloworldElb}`.
    async fn rest_api(&self) -> BenchResult<String> {
        seed::helloworld_rest_api(&self.apigw, "EcsDemoAPI")
            .await
            .map_err(|e| error_chain(&e))
    }

    async fn stage_var(&self, api_id: &str, stage: &str) -> Option<String> {
        rest_stage_variables(&self.apigw, api_id, stage)
            .await
            .ok()
            .flatten()?
            .get(VARIABLE)
            .cloned()
    }

    /// A Create event for a binding of `stage` to the ELB stack's output.
    fn create_event(&mut self, api_id: &str, stage: &str) -> Value {
        self.sent += 1;
        let logical_id = format!("Binding{}", self.sent);
        let props = binding_props(api_id, stage, ELB_STACK);
        self.events.create(&self.receiver, &logical_id, props)
    }

    /// Stage `stage` of the API, made from a new deployment, with no variables.
    async fn deploy_stage(&self, api_id: &str, stage: &str) -> BenchResult<()> {
        self.apigw
            .create_deployment()
            .rest_api_id(api_id)
            .stage_name(stage)
            .send()
            .await
            .map_err(err("CreateDeployment"))?;
        Ok(())
    }
}

/// The properties of a binding of `helloworldElb` on `stage` to the output of `stack`.
fn binding_props(api_id: &str, stage: &str, stack: &str) -> Value {
    json!({
        "ServiceToken": SERVICE_TOKEN,
        "ServiceTimeout": "300",
        "RestApiId": api_id,
        "StageName": stage,
        "Variables": { VARIABLE: { "StackName": stack, "OutputKey": OUTPUT_KEY } }
    })
}

/// The stacks of the health-gated Update: the binding moves from the first's output to the
/// second's, both load balancers alive.
const GATED_STACKS: [&str; 2] = ["BenchGatedOld", "BenchGatedNew"];

/// How long the health-gated Update's new load balancer stays without a healthy target.
const GATED_HOLD: Duration = Duration::from_secs(3);

/// A binding's Update from a load balancer that serves to one with no healthy target yet, which
/// gets its first one [`GATED_HOLD`] after the Update starts: the time from that target to the
/// answer, and the answer's status.
async fn run_health_gated_update(
    world: &mut World,
    function: &Function,
    api_id: &str,
) -> BenchResult<(Duration, String)> {
    let deploy = |stack: &'static str, lb: &'static str| deploy_elb_stack(&world.cfn, stack, lb);
    let old = deploy(GATED_STACKS[0], "bench-gated-1")
        .await
        .map_err(err("the gated stack"))?;
    register_target(&world.elbv2, &old.tg_arn, "10.0.9.1")
        .await
        .map_err(err("RegisterTargets"))?;
    world.sent += 1;
    let logical_id = format!("Binding{}", world.sent);
    let old_props = binding_props(api_id, "gated", GATED_STACKS[0]);
    let create = world
        .events
        .create(&world.receiver, &logical_id, old_props.clone());
    let created = run_create(world, function, create).await?;
    if created.status != "SUCCESS" {
        return Err(format!("the gated binding's Create: {}", created.status));
    }
    let physical_id = format!("stagewire:rest:{api_id}:gated:{logical_id}");
    let new = deploy(GATED_STACKS[1], "bench-gated-2")
        .await
        .map_err(err("the gated stack"))?;
    let new_props = binding_props(api_id, "gated", GATED_STACKS[1]);
    let update = world.events.update(
        &world.receiver,
        &logical_id,
        &physical_id,
        new_props,
        old_props,
    );
    let before = world.receiver.received().await.len();
    let (invoked, target_at) = tokio::join!(function.api.invoke(update, INVOKE_TIMEOUT), async {
        tokio::time::sleep(GATED_HOLD).await;
        let at = Instant::now();
        register_target(&world.elbv2, &new.tg_arn, "10.0.9.2")
            .await
            .map(|()| at)
    });
    invoked.map_err(err("invoking the Update"))?;
    let target_at = target_at.map_err(err("RegisterTargets"))?;
    let received = world.receiver.received().await;
    let answer = received
        .get(before)
        .ok_or("the health-gated Update was not answered")?;
    let status = answer.status().unwrap_or("no status").to_string();
    Ok((answer.at.saturating_duration_since(target_at), status))
}

/// One Create measured: wall time from the invoke to the response PUT, and AWS calls.
struct CreateRun {
    wall: Duration,
    calls: u64,
    detail: String,
    status: String,
    /// Response PUTs the receiver got for this resource.
    puts: u64,
    /// AWS calls made before the response PUT, and how many round trips they took in sequence.
    before_put: (usize, usize),
}

async fn run_create(world: &World, function: &Function, event: Value) -> BenchResult<CreateRun> {
    let logical_id = event["LogicalResourceId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let before = world.receiver.received().await.len();
    world.aws.proxy.reset_counts();
    let started = Instant::now();
    let (invoked, put_at) = tokio::join!(function.api.invoke(event, INVOKE_TIMEOUT), async {
        let got = world
            .receiver
            .wait_for(before + 1, INVOKE_TIMEOUT + Duration::from_secs(5))
            .await;
        (got.len() > before).then(Instant::now)
    });
    let invocation = invoked.map_err(|e| {
        format!(
            "invoke failed: {e}; output:\n{}",
            function.process.log_text()
        )
    })?;
    let put_at = put_at.ok_or_else(|| {
        format!(
            "no response PUT arrived; outcome {:?}; output:\n{}",
            invocation.outcome,
            function.process.log_text()
        )
    })?;
    let received = world.receiver.received().await;
    let response = &received[before];
    let puts = received[before..]
        .iter()
        .filter(|r| r.field("LogicalResourceId") == Some(logical_id.as_str()))
        .count() as u64;
    let status = match response.status() {
        Some("SUCCESS") => "SUCCESS".to_string(),
        other => format!(
            "{} ({})",
            other.unwrap_or("no status"),
            response.field("Reason").unwrap_or_default()
        ),
    };
    // The receiver's own arrival time: the waiter may see the PUT a little later.
    let put_at = response.at.min(put_at);
    Ok(CreateRun {
        wall: put_at.saturating_duration_since(started),
        calls: world.aws.proxy.total(),
        detail: breakdown(&world.aws.proxy.counts()),
        status,
        puts,
        before_put: world.aws.proxy.round_trips_before(put_at),
    })
}

/// One stage-resync invocation measured: time, AWS calls and the summary's list sizes.
struct ResyncRun {
    time: Duration,
    calls: u64,
    /// Calls per operation.
    detail: String,
    summary: String,
    apigateway: u64,
    queries: u64,
    writes: u64,
    writes_detail: String,
}

async fn run_resync(
    world: &World,
    function: &Function,
    event: Value,
    timeout: Duration,
) -> BenchResult<ResyncRun> {
    world.aws.proxy.reset_counts();
    let started = Instant::now();
    let invocation = function
        .api
        .invoke(event, timeout)
        .await
        .map_err(err("invoking stage-resync"))?;
    let time = started.elapsed();
    let summary = match &invocation.outcome {
        Outcome::Response(v) => summarize(v),
        Outcome::Error(e) => format!("error: {e}"),
    };
    let counts = world.aws.proxy.counts();
    let count_of = |service: &str, op: Option<&str>| -> u64 {
        counts
            .iter()
            .filter(|((s, o), _)| s == service && op.is_none_or(|op| o == op))
            .map(|(_, n)| n)
            .sum()
    };
    let (writes, writes_detail) = writes(&counts);
    Ok(ResyncRun {
        time,
        calls: world.aws.proxy.total(),
        detail: breakdown(&counts),
        summary,
        apigateway: count_of("apigateway", None),
        queries: count_of("dynamodb", Some("Query")),
        writes,
        writes_detail,
    })
}

/// `key: n` for each array (and number) at the top of a re-sync summary.
fn summarize(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    map.iter()
        .filter_map(|(k, v)| match v {
            Value::Array(a) => Some(format!("{k} {}", a.len())),
            Value::Number(n) => Some(format!("{k} {n}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Size of `binary` and of a zip holding it as `bootstrap`.
fn sizes(binary: &Path, scratch: &Path) -> BenchResult<(u64, Option<u64>)> {
    let size = std::fs::metadata(binary)
        .map_err(err(&binary.display().to_string()))?
        .len();
    let dir = scratch.join(binary.file_name().unwrap_or_default());
    std::fs::create_dir_all(&dir).map_err(err("creating a scratch directory"))?;
    std::fs::copy(binary, dir.join("bootstrap")).map_err(err("copying the binary"))?;
    let zip = dir.join("bootstrap.zip");
    let _ = std::fs::remove_file(&zip);
    let zipped = std::process::Command::new("zip")
        .args(["-q", "-9", "bootstrap.zip", "bootstrap"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&zip).ok())
        .map(|m| m.len());
    Ok((size, zipped))
}

/// Writes the launcher script of the Python function; `None` when the venv lacks its packages.
fn python_launcher(python: &Path, scratch: &Path) -> Result<PathBuf, String> {
    if !python.is_file() {
        return Err(format!("{} not found", python.display()));
    }
    let check = std::process::Command::new(python)
        .args(["-c", "import awslambdaric, crhelper, boto3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !check.success() {
        return Err(format!(
            "{} cannot import awslambdaric, crhelper and boto3",
            python.display()
        ));
    }
    let app_dir = stagewire_devkit::workspace_root().join("bench/crhelper_binding");
    let script = scratch.join("crhelper_binding");
    let text = format!(
        "#!/bin/sh\ncd '{}' || exit 1\nexec '{}' -m awslambdaric app.handler\n",
        app_dir.display(),
        python.display()
    );
    std::fs::write(&script, text).map_err(|e| format!("writing {}: {e}", script.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", script.display()))?;
    Ok(script)
}

/// Everything measured, as the README's tables.
struct Table {
    rows: Vec<[String; 3]>,
    comparison: Vec<[String; 4]>,
    notes: Vec<String>,
}

impl Table {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>, note: impl Into<String>) {
        self.rows.push([what.into(), value.into(), note.into()]);
    }

    fn print(&self) {
        println!("| measurement | stagewire | note |");
        println!("|---|---|---|");
        for [a, b, c] in &self.rows {
            println!("| {a} | {b} | {c} |");
        }
        if !self.comparison.is_empty() {
            println!();
            println!("| | crhelper + boto3 | stagewire | ratio |");
            println!("|---|---|---|---|");
            for [a, b, c, d] in &self.comparison {
                println!("| {a} | {b} | {c} | {d} |");
            }
        }
        if !self.notes.is_empty() {
            println!();
            for note in &self.notes {
                println!("- {note}");
            }
        }
    }
}

fn goal_mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` new REST stages created at once by `n` stage-binding processes (separate sandboxes, each
/// with its own clients and pacer), behind API Gateway's account quotas as the proxy plays
/// them: wall time from the invokes to the last response PUT, SUCCESS answers, throttled calls.
struct Burst {
    /// API Gateway calls made, throttled ones included.
    apigateway_calls: usize,
    wall: Duration,
    succeeded: usize,
    throttled: u64,
    throttled_detail: String,
    created: usize,
}

async fn run_burst(world: &mut World, launcher: &Launcher, n: usize) -> BenchResult<Burst> {
    let api_id = world.rest_api().await?;
    // Deployed once, to another stage: the new stages are made from that deployment.
    world
        .apigw
        .create_deployment()
        .rest_api_id(&api_id)
        .stage_name("base")
        .send()
        .await
        .map_err(err("CreateDeployment"))?;
    let mut functions = Vec::new();
    for _ in 0..n {
        functions.push(std::sync::Arc::new(launcher.start().await?));
    }
    let events: Vec<Value> = (0..n)
        .map(|i| world.create_event(&api_id, &format!("burst{i}")))
        .collect();
    let ids: Vec<String> = events
        .iter()
        .map(|e| {
            e["LogicalResourceId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let before = world.receiver.received().await.len();
    world.aws.proxy.reset_counts();
    world.aws.proxy.enforce_apigateway_quotas();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (function, event) in functions.iter().zip(events) {
        let function = std::sync::Arc::clone(function);
        tasks.spawn(async move { function.api.invoke(event, Duration::from_secs(300)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .map_err(err("a burst task"))?
            .map_err(err("invoking stage-binding"))?;
    }
    // An invocation ends once its response is delivered: the last one ends the burst.
    let wall = started.elapsed();
    let received = world.receiver.received().await;
    world.aws.proxy.lift_apigateway_quotas();
    let mut succeeded = 0;
    for id in &ids {
        let answer = received[before..]
            .iter()
            .find(|r| r.field("LogicalResourceId") == Some(id.as_str()));
        if answer.and_then(|r| r.status()) == Some("SUCCESS") {
            succeeded += 1;
        }
    }
    let records = world.aws.proxy.records();
    let mut by_kind: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in records.iter().filter(|r| r.over_quota) {
        *by_kind
            .entry((r.service.clone(), r.operation.clone()))
            .or_default() += 1;
    }
    let created = world.aws.proxy.answered("POST", "/stages", 201);
    let apigateway_calls = records.iter().filter(|r| r.service == "apigateway").count();
    drop(functions);
    Ok(Burst {
        apigateway_calls,
        wall,
        succeeded,
        throttled: world.aws.proxy.over_quota(),
        throttled_detail: breakdown(&by_kind),
        created,
    })
}

/// Replaces the ELB stack (load balancer `bench-alb-{lb_no}`) and sends its stack event to
/// stage-resync; answers the run and how many of the real stages now carry the new DNS name.
async fn stack_event(
    world: &World,
    resync_fn: &Function,
    api_id: &str,
    lb_no: usize,
) -> BenchResult<(ResyncRun, usize)> {
    world
        .cfn
        .delete_stack()
        .stack_name(ELB_STACK)
        .send()
        .await
        .map_err(err("DeleteStack"))?;
    let (stack_id, new_dns) = world.elb_stack(&format!("bench-alb-{lb_no}")).await?;
    let event = seed::stack_status_event(ACCOUNT, REGION, &stack_id, "CREATE_COMPLETE");
    let run = run_resync(world, resync_fn, event, INVOKE_TIMEOUT).await?;
    let mut followed = 0;
    for stage in REAL_STAGES {
        if world.stage_var(api_id, stage).await.as_deref() == Some(new_dns.as_str()) {
            followed += 1;
        }
    }
    Ok((run, followed))
}

/// The row of one stack event; answers its AWS calls.
fn stack_event_row(table: &mut Table, label: String, run: ResyncRun, followed: usize) -> u64 {
    table.row(
        label,
        format!("{} AWS calls, {}", run.calls, ms(run.time)),
        format!(
            "{followed}/3 stages follow the new load balancer; {} registry queries; calls: {}; \
             summary: {}",
            run.queries, run.detail, run.summary
        ),
    );
    run.calls
}

async fn run(options: Options) -> BenchResult<()> {
    let binding_bin = options.bin_dir.join("stage-binding");
    let resync_bin = options.bin_dir.join("stage-resync");
    let hello_bin = options.bin_dir.join("lambda-hello");
    for bin in [&binding_bin, &resync_bin, &hello_bin] {
        if !bin.is_file() {
            return Err(format!("{} is missing (cargo build)", bin.display()));
        }
    }
    let scratch = std::env::temp_dir().join(format!("stagewire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(err("creating the scratch directory"))?;
    let mut table = Table {
        rows: Vec::new(),
        comparison: Vec::new(),
        notes: Vec::new(),
    };

    eprintln!("bench: starting moto and the registry table");
    let aws = local_aws().await?;
    let sdk = aws.sdk.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let receiver = ResponseReceiver::start(Vec::new())
        .await
        .map_err(err("starting the response receiver"))?;
    // The stack that owns every binding exists (moto cannot hold custom resources, so it holds
    // a placeholder): the full reconcile asks CloudFormation about each owning stack and
    // releases the bindings of stacks that are gone.
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let owner_stack = stagewire_devkit::examples::placeholder_stack(&cfn, "EcsDemoApi")
        .await
        .map_err(err("CreateStack"))?;
    let mut world = World {
        cfn,
        apigw: aws_sdk_apigateway::Client::new(&sdk),
        ddb,
        elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
        aws,
        receiver,
        events: CfnEvents::new(&owner_stack, SERVICE_TOKEN),
        sent: 0,
    };

    // Cold init.
    eprintln!("bench: cold init, {} spawns each", options.spawns);
    let binding = Launcher {
        path: binding_bin.clone(),
        env: world.env(true),
    };
    let binding_bare = Launcher {
        path: binding_bin.clone(),
        env: world.env(false),
    };
    let resync = Launcher {
        path: resync_bin.clone(),
        env: world.env(true),
    };
    let init_binding = binding.cold_init(options.spawns).await?;
    let init_bare = binding_bare.cold_init(options.spawns).await?;
    let init_resync = resync.cold_init(options.spawns).await?;
    let hello = Launcher {
        path: hello_bin,
        env: world.env(false),
    };
    let init_hello = hello.cold_init(options.spawns).await?;
    let n = options.spawns;
    let init_ratio = init_binding.as_secs_f64() / init_hello.as_secs_f64().max(1e-9);
    table.row(
        format!("cold init, lambda_runtime's hello world, same profile (median of {n})"),
        ms(init_hello),
        format!(
            "stage-binding takes {init_ratio:.2}x as long: goal <= 1.5x: {}",
            goal_mark(init_ratio <= 1.5)
        ),
    );
    table.row(
        format!("cold init, stage-binding (spawn to first Runtime API poll, median of {n})"),
        ms(init_binding),
        format!(
            "without the AWS config and clients: {}, so loading them costs ~{}",
            ms(init_bare),
            ms(init_binding.saturating_sub(init_bare))
        ),
    );
    table.row(
        format!("cold init, stage-resync (median of {n})"),
        ms(init_resync),
        "",
    );

    // The seed scenario: ELB stack, REST API, three bindings created by stage-binding.
    eprintln!("bench: ELB stack, REST API and the seed Create");
    let (_, dns) = world.elb_stack("bench-alb-1").await?;
    let api_id = world.rest_api().await?;
    let binding_fn = binding.start().await?;
    // The seed's stage exists (the DNS name used to be copied into it by hand).
    world.deploy_stage(&api_id, REAL_STAGES[0]).await?;
    let event = world.create_event(&api_id, REAL_STAGES[0]);
    let seed = run_create(&world, &binding_fn, event).await?;
    let live = world.stage_var(&api_id, REAL_STAGES[0]).await;
    if live.as_deref() != Some(dns.as_str()) {
        table.notes.push(format!(
            "the seed Create did not leave {VARIABLE} = {dns} on stage prod (found {live:?})"
        ));
    }
    let mut warm = Vec::new();
    for stage in &REAL_STAGES[1..] {
        let event = world.create_event(&api_id, stage);
        warm.push(run_create(&world, &binding_fn, event).await?);
    }
    let (before_put, in_sequence) = seed.before_put;
    table.row(
        "seed Create (one stack-output variable, the stage exists), wall time",
        ms(seed.wall),
        format!(
            "first invocation, from the invoke to the response PUT; {}",
            seed.status
        ),
    );
    table.row(
        "seed Create, AWS round trips in sequence before the response PUT",
        in_sequence.to_string(),
        format!(
            "goal <= 3: {}; {before_put} AWS calls before the PUT, {} in all ({}) and {} response \
             PUT counted at the receiver",
            goal_mark(in_sequence <= 3),
            seed.calls,
            seed.detail,
            seed.puts
        ),
    );
    if let Some(w) = warm.first() {
        table.row(
            "two more Creates of new stages in the same process",
            warm.iter()
                .map(|w| ms(w.wall))
                .collect::<Vec<_>>()
                .join(", "),
            format!(
                "{} AWS calls and {} response PUT each ({})",
                w.calls, w.puts, w.detail
            ),
        );
    }

    // A health-gated Update: its answer after the new load balancer's first healthy target.
    eprintln!("bench: a health-gated Update");
    let (gated, gated_status) = run_health_gated_update(&mut world, &binding_fn, &api_id).await?;
    table.row(
        "health-gated Update, answer after the new load balancer's first healthy target",
        ms(gated),
        format!(
            "{gated_status}; the new load balancer had no healthy target for {} while the old \
             one served; goal <= 1.5 s: {}",
            secs(GATED_HOLD),
            goal_mark(gated <= Duration::from_millis(1500))
        ),
    );

    // One stack event affecting the three real bindings (the ELB stack is replaced), first
    // with no other bindings in the registry, then among the filler bindings.
    let resync_fn = resync.start().await?;
    let mut lb_no = 1;
    eprintln!("bench: a stack event with 3 bindings in the registry");
    lb_no += 1;
    let (run0, followed0) = stack_event(&world, &resync_fn, &api_id, lb_no).await?;
    let calls0 = stack_event_row(
        &mut table,
        "one stack event, 3 bindings in all, 3 affected".to_string(),
        run0,
        followed0,
    );

    // The crowd: filler bindings up to the requested total.
    let filler = options.bindings - REAL_STAGES.len();
    let filler_stages = options.stages - REAL_STAGES.len();
    eprintln!("bench: loading {filler} filler bindings over {filler_stages} stages");
    let load_started = Instant::now();
    load_filler(&world.ddb, filler, filler_stages, &owner_stack).await?;
    let load_time = load_started.elapsed();

    eprintln!("bench: a stack event with {} bindings", options.bindings);
    lb_no += 1;
    let (run_n, followed_n) = stack_event(&world, &resync_fn, &api_id, lb_no).await?;
    let time0 = table.rows.last().map(|r| r[1].clone()).unwrap_or_default();
    let calls_n = stack_event_row(
        &mut table,
        format!(
            "one stack event, {} bindings on {} stages, 3 affected",
            thousands(options.bindings),
            thousands(options.stages)
        ),
        run_n,
        followed_n,
    );
    if let Some(last) = table.rows.last_mut() {
        last[2] = format!(
            "{}; with 3 bindings in all: {time0}, so it does not grow with the {}: {}",
            last[2],
            thousands(options.bindings),
            goal_mark(calls_n == calls0)
        );
    }

    // The full reconcile, twice.
    eprintln!("bench: full reconcile of {} bindings", options.bindings);
    let all = json!({ "resync": "all" });
    let first = run_resync(&world, &resync_fn, all.clone(), RECONCILE_TIMEOUT).await?;
    table.row(
        format!(
            "full reconcile of the {} bindings",
            thousands(options.bindings)
        ),
        format!(
            "{} API Gateway calls, {} calls in all, {}",
            first.apigateway,
            thousands(first.calls as usize),
            secs(first.time)
        ),
        format!(
            "{} writes ({}); summary: {}; calls: {}",
            first.writes, first.writes_detail, first.summary, first.detail
        ),
    );
    eprintln!("bench: second full reconcile");
    let second = run_resync(&world, &resync_fn, all, RECONCILE_TIMEOUT).await?;
    table.row(
        "a second full reconcile, nothing changed since",
        format!(
            "{} writes, {} calls in all, {}",
            second.writes,
            thousands(second.calls as usize),
            secs(second.time)
        ),
        format!(
            "goal: a second run writes nothing: {}{}; summary: {}; calls: {}",
            goal_mark(second.writes == 0 && !second.summary.contains("bindings_checked 0")),
            if second.writes == 0 {
                String::new()
            } else {
                format!(" ({})", second.writes_detail)
            },
            second.summary,
            second.detail
        ),
    );

    // Thirty new stages at once, behind the account's quotas, with a registry table of their
    // own (moto's DynamoDB slows down with the size of the table; DynamoDB's item reads and
    // writes do not).
    eprintln!("bench: {BURST} parallel Creates behind API Gateway's quotas");
    stagewire_devkit::create_registry_table(&world.ddb, BURST_TABLE)
        .await
        .map_err(err("creating the burst's registry table"))?;
    let burst_binding = Launcher {
        path: binding_bin.clone(),
        env: binding
            .env
            .iter()
            .map(|(k, v)| {
                let v = if k == "STAGEWIRE_TABLE" {
                    BURST_TABLE.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    };
    let burst = run_burst(&mut world, &burst_binding, BURST).await?;
    let per_binding = burst.throttled as f64 / BURST as f64;
    let per_stage = burst.apigateway_calls as f64 / BURST as f64;
    table.row(
        format!(
            "{BURST} new REST stages in {BURST} parallel Creates, one stage-binding process each, \
             behind API Gateway's account quotas (a registry table of their own)"
        ),
        secs(burst.wall),
        format!(
            "goal < 10 s: {}; {}/{BURST} answered SUCCESS, {} stages created; {per_stage:.1} API \
             Gateway calls per new stage, throttled ones included (goal <= 4: {}); {} calls \
             throttled ({per_binding:.1} per binding, goal <= ~3: {}): {}",
            goal_mark(burst.wall < Duration::from_secs(10)),
            burst.succeeded,
            burst.created,
            goal_mark(per_stage <= 4.0),
            burst.throttled,
            goal_mark(per_binding <= 3.0),
            burst.throttled_detail
        ),
    );

    // Memory and sizes, in MiB; goals checked in the same unit.
    let rss_binding = binding_fn.process.peak_rss_kb();
    let rss_resync = resync_fn.process.peak_rss_kb();
    let rss_ok = |kib: Option<u64>| kib.is_some_and(|kib| (kib as f64) / 1024.0 < RSS_GOAL_MIB);
    table.row(
        "peak RSS",
        format!(
            "stage-binding {}, stage-resync {}",
            rss(rss_binding),
            rss(rss_resync)
        ),
        format!(
            "goal < {RSS_GOAL_MIB:.0} MiB: {}; stage-binding after its 3 Creates, stage-resync \
             after the stack events and both full reconciles",
            goal_mark(rss_ok(rss_binding) && rss_ok(rss_resync))
        ),
    );
    let (binding_size, binding_zip) = sizes(&binding_bin, &scratch)?;
    let (resync_size, resync_zip) = sizes(&resync_bin, &scratch)?;
    let zip_text = |z: Option<u64>| z.map_or("n/a (zip failed)".to_string(), mib);
    let zip_ok = |z: Option<u64>| z.is_some_and(|z| (z as f64) / MIB < ZIP_GOAL_MIB);
    table.row(
        "zipped function",
        format!(
            "stage-binding {}, stage-resync {}",
            zip_text(binding_zip),
            zip_text(resync_zip)
        ),
        format!(
            "goal < {ZIP_GOAL_MIB:.0} MiB: {}; binaries {} / {}",
            goal_mark(zip_ok(binding_zip) && zip_ok(resync_zip)),
            mib(binding_size),
            mib(resync_size)
        ),
    );

    // The comparison: crhelper + boto3 under awslambdaric.
    match python_launcher(&options.python, &scratch) {
        Err(why) => table.notes.push(format!(
            "comparison skipped: {why} (run scripts/bench.sh to create bench/.venv)"
        )),
        Ok(script) => {
            eprintln!("bench: the crhelper + boto3 comparison");
            let python = Launcher {
                path: script,
                env: world.env(false),
            };
            let init_python = python.cold_init(options.spawns).await?;
            let py_fn = python.start().await?;
            world.deploy_stage(&api_id, "pyprod").await?;
            let event = world.create_event(&api_id, "pyprod");
            let py = run_create(&world, &py_fn, event).await?;
            let rss_python = py_fn.process.peak_rss_kb();
            let live = world.stage_var(&api_id, "pyprod").await;
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.1}x", a / b)
                } else {
                    "n/a".to_string()
                }
            };
            table.comparison.push([
                "cold init".into(),
                ms(init_python),
                ms(init_binding),
                ratio(init_python.as_secs_f64(), init_binding.as_secs_f64()),
            ]);
            table.comparison.push([
                "seed Create".into(),
                ms(py.wall),
                ms(seed.wall),
                ratio(py.wall.as_secs_f64(), seed.wall.as_secs_f64()),
            ]);
            let slower = seed.wall.as_secs_f64() / py.wall.as_secs_f64().max(1e-9);
            table.notes.push(format!(
                "the seed Create takes {slower:.2}x the crhelper + boto3 function's time: goal <= \
                 1.35x: {}",
                goal_mark(slower <= 1.35)
            ));
            table.comparison.push([
                "peak RSS".into(),
                rss(rss_python),
                rss(rss_binding),
                ratio(
                    rss_python.unwrap_or(0) as f64,
                    rss_binding.unwrap_or(0) as f64,
                ),
            ]);
            table.comparison.push([
                "AWS round trips in sequence before the response PUT".into(),
                py.before_put.1.to_string(),
                in_sequence.to_string(),
                ratio(py.before_put.1 as f64, in_sequence as f64),
            ]);
            table.notes.push(format!(
                "the crhelper + boto3 function answered {} and wrote the stage: {}; its calls: {}; \
                 it neither reads the stage first nor records ownership, and nothing follows the \
                 load balancer afterwards",
                py.status,
                live.is_some(),
                py.detail
            ));
        }
    }

    table.notes.push(format!(
        "registry load: {filler} filler bindings over {filler_stages} stages of fictitious APIs, \
         written with BatchWriteItem in {}; they are reported missing by the reconciles",
        ms(load_time)
    ));
    private_row(&mut table, &world.aws, &binding_bin).await?;
    table.print();

    drop(binding_fn);
    drop(resync_fn);
    let _ = std::fs::remove_dir_all(&scratch);
    drop(world);
    Ok(())
}

/// `--fanout`: one table, a row per size and worker count.
async fn run_fanout(options: Options) -> BenchResult<()> {
    let resync_bin = options.bin_dir.join("stage-resync");
    if !resync_bin.is_file() {
        return Err(format!("{} is missing (cargo build)", resync_bin.display()));
    }
    fanout::header();
    for bindings in options.fanout.clone().unwrap_or_default() {
        fanout::measure(&resync_bin, bindings, options.stages, &options.workers).await?;
    }
    Ok(())
}

/// The private stage's replacement under traffic, as one row of `table`.
async fn private_row(table: &mut Table, aws: &LocalAws, binding_bin: &Path) -> BenchResult<()> {
    eprintln!("bench: a private stage's load balancer and VPC link replaced under traffic");
    let swap = private_swap::measure(aws, binding_bin).await?;
    table.row(
        "private stage: NLB and VPC link replaced under traffic (`VpcLinkFor`, 50 requests/s)",
        format!("{} failed of {} requests", swap.failed, swap.sent),
        format!(
            "new link PENDING {}; the Update answered {} {} after the link's creation, in {} \
             stage write(s)",
            secs(swap.pending),
            swap.status,
            secs(swap.update),
            swap.writes
        ),
    );
    Ok(())
}

/// `bench --private`: the private stage's row alone, on a moto server of its own, with the
/// `stage-binding` beside this executable.
async fn run_private() -> BenchResult<()> {
    let binding_bin = std::env::current_exe()
        .map_err(err("locating the bench"))?
        .with_file_name("stage-binding");
    if !binding_bin.is_file() {
        return Err(format!(
            "{} is missing (cargo build)",
            binding_bin.display()
        ));
    }
    let aws = local_aws().await?;
    let mut table = Table {
        rows: Vec::new(),
        comparison: Vec::new(),
        notes: Vec::new(),
    };
    private_row(&mut table, &aws, &binding_bin).await?;
    table.print();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--idle") {
        let before = match args.get(1).map(String::as_str) {
            Some("--before") => args.get(2).cloned().unwrap_or_default(),
            _ => "c96b1c6".to_string(),
        };
        return match idle::run(&before) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench --idle: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("--private") {
        return block_on(run_private());
    }
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    match options.fanout {
        Some(_) => block_on(run_fanout(options)),
        None => block_on(run(options)),
    }
}

/// Runs `work` on a tokio runtime of its own: the exit code of its outcome.
fn block_on(work: impl std::future::Future<Output = BenchResult<()>>) -> ExitCode {
    // The functions get STAGEWIRE_TABLE only where the bench sets it.
    std::env::remove_var("STAGEWIRE_TABLE");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: starting tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: failed: {e}");
            ExitCode::FAILURE
        }
    }
}
