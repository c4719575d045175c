//! `bench`: measures the stagewire functions on one moto server and prints one markdown table.
//!
//! Measured in one run:
//! - cold init of `stage-binding` and `stage-resync` (spawn to the first Runtime API poll, median
//!   of several spawns), and of `stage-binding` without `STAGEWIRE_TABLE` (it then answers every
//!   request FAILED without loading the AWS configuration or building clients);
//! - the seed Create (one stack-output variable) through the real `stage-binding`: wall time from
//!   the invoke to the response PUT, and the AWS calls counted by a [`FaultProxy`] placed as the
//!   function's `AWS_ENDPOINT_URL`, plus the response PUT;
//! - one stack event against a registry of 10,000 bindings over 1,000 stages, of which 3 are
//!   affected, and a full reconcile (`{"resync":"all"}`) of the same registry;
//! - peak RSS of each function after its invocations, binary sizes and zipped `bootstrap` sizes;
//! - the same seed Create done by a Python crhelper + boto3 function (`bench/crhelper_binding`)
//!   under the same Runtime API through `awslambdaric`, when `bench/.venv` provides it.
//!
//! Usage: `bench [--bin-dir DIR] [--python PATH] [--spawns N] [--bindings N] [--stages N]`.
//! `--bin-dir` defaults to the directory of this executable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use serde_json::{json, Value};
use stagewire::aws::dynamodb::item;
use stagewire::domain::{ApiKind, Owner, Source, StageRef};
use stagewire::ports::Record;
use stagewire_devkit::seed;
use stagewire_devkit::stages::rest_stage_variables;
use stagewire_devkit::{
    deploy_elb_stack, error_chain, CfnEvents, FaultProxy, Function, MotoServer, Outcome,
    ResponseReceiver,
};

const TABLE: &str = "stagewire-bench-registry";
const ACCOUNT: &str = "123456789012";
const REGION: &str = stagewire_devkit::moto::REGION;
const ELB_STACK: &str = "BenchElbStack";
const OUTPUT_KEY: &str = "EcsElbDnsName";
const VARIABLE: &str = "helloworldElb";
const SERVICE_TOKEN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:stagewire-StageBindingFunction";
/// The stages the three real bindings create; the first Create is the measured seed Create.
const REAL_STAGES: [&str; 3] = ["prod", "dev", "qa"];
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(1_800);
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
    };
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
            "-h" | "--help" => {
                println!(
                    "usage: bench [--bin-dir DIR] [--python PATH] [--spawns N] [--bindings N] [--stages N]"
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

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn rss(kb: Option<u64>) -> String {
    kb.map_or("n/a".to_string(), |kb| {
        format!("{:.1} MB", kb as f64 / 1024.0)
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// `service:Operation xN, ...` for the proxy's counts.
fn breakdown(counts: &BTreeMap<(String, String), u64>) -> String {
    counts
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

/// The registry record of one filler binding, stored with the library's codec.
fn filler_record(i: usize, stages: usize) -> Record {
    let stage_no = i % stages;
    Record {
        stage: StageRef::new(
            ApiKind::Rest,
            format!("filler{}", stage_no / 10),
            format!("s{stage_no}"),
        ),
        variable: format!("v{}", i / stages),
        owner: Owner {
            stack_id: format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Filler/{stage_no}"),
            logical_id: "Filler".into(),
            physical_id: format!("filler-{stage_no}"),
        },
        source: Source::StackOutput {
            stack: format!("FillerStack{}", i % 100),
            output_key: OUTPUT_KEY.into(),
        },
        value: Some(format!("filler-{i}.{REGION}.elb.amazonaws.com")),
        written_at: Some(0),
        via: None,
        created_stage: false,
        last_error: None,
        checked_at: None,
        version: 1,
    }
}

/// Writes `count` filler bindings over `stages` stages, 25 per BatchWriteItem.
async fn load_filler(
    ddb: &aws_sdk_dynamodb::Client,
    count: usize,
    stages: usize,
) -> BenchResult<()> {
    let batches: Vec<Vec<WriteRequest>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|&i| {
                    let item = item::encode(&filler_record(i, stages));
                    let put = PutRequest::builder().set_item(Some(item)).build().ok()?;
                    Some(WriteRequest::builder().put_request(put).build())
                })
                .collect()
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut batches = batches.into_iter();
    loop {
        while tasks.len() < LOAD_PARALLELISM {
            let Some(mut writes) = batches.next() else {
                break;
            };
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
        match tasks.join_next().await {
            Some(joined) => joined.map_err(err("a load task"))??,
            None => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario

struct World {
    _moto: MotoServer,
    proxy: FaultProxy,
    receiver: ResponseReceiver,
    cfn: aws_sdk_cloudformation::Client,
    apigw: aws_sdk_apigateway::Client,
    ddb: aws_sdk_dynamodb::Client,
    /// CloudFormation's side of the stack holding the bindings.
    events: CfnEvents,
    /// Bindings created so far (their logical ids are numbered).
    sent: usize,
}

impl World {
    /// The environment the functions run with: every AWS call goes through the proxy.
    fn env(&self, with_table: bool) -> Vec<(String, String)> {
        let mut env = stagewire_devkit::moto::process_env(&self.proxy.endpoint());
        // One team's account: its APIs carry no stagewire tags.
        env.push((
            "STAGEWIRE_BINDING_AUTHORIZATION".to_string(),
            "Open".to_string(),
        ));
        if with_table {
            env.push(("STAGEWIRE_TABLE".to_string(), TABLE.to_string()));
        }
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
        self.events.create(
            &self.receiver,
            &logical_id,
            json!({
                "ServiceToken": SERVICE_TOKEN,
                "ServiceTimeout": "300",
                "RestApiId": api_id,
                "StageName": stage,
                "Variables": { VARIABLE: { "StackName": ELB_STACK, "OutputKey": OUTPUT_KEY } }
            }),
        )
    }
}

/// One Create measured: wall time from the invoke to the response PUT, and AWS calls.
struct CreateRun {
    wall: Duration,
    calls: u64,
    detail: String,
    status: String,
}

async fn run_create(world: &World, function: &Function, event: Value) -> BenchResult<CreateRun> {
    let before = world.receiver.received().await.len();
    world.proxy.reset_counts();
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
    let status = match response.status() {
        Some("SUCCESS") => "SUCCESS".to_string(),
        other => format!(
            "{} ({})",
            other.unwrap_or("no status"),
            response.field("Reason").unwrap_or_default()
        ),
    };
    Ok(CreateRun {
        wall: put_at.saturating_duration_since(started),
        calls: world.proxy.total(),
        detail: breakdown(&world.proxy.counts()),
        status,
    })
}

/// One stage-resync invocation measured: time, AWS calls and the summary's list sizes.
struct ResyncRun {
    time: Duration,
    calls: u64,
    detail: String,
    summary: String,
}

async fn run_resync(
    world: &World,
    function: &Function,
    event: Value,
    timeout: Duration,
) -> BenchResult<ResyncRun> {
    world.proxy.reset_counts();
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
    let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
    for ((service, _), n) in world.proxy.counts() {
        *per_service.entry(service).or_default() += n;
    }
    Ok(ResyncRun {
        time,
        calls: world.proxy.total(),
        detail: per_service
            .iter()
            .map(|(service, n)| format!("{service} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        summary,
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

/// Everything measured, as table rows.
struct Table {
    rows: Vec<[String; 3]>,
    notes: Vec<String>,
}

impl Table {
    fn row(&mut self, what: impl Into<String>, value: impl Into<String>, goal: impl Into<String>) {
        self.rows.push([what.into(), value.into(), goal.into()]);
    }

    fn print(&self, title: &str) {
        println!("{title}\n");
        println!("| measurement | result | goal / note |");
        println!("|---|---|---|");
        for [a, b, c] in &self.rows {
            println!("| {a} | {b} | {c} |");
        }
        println!();
        for note in &self.notes {
            println!("- {note}");
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

async fn run(options: Options) -> BenchResult<()> {
    let binding_bin = options.bin_dir.join("stage-binding");
    let resync_bin = options.bin_dir.join("stage-resync");
    for bin in [&binding_bin, &resync_bin] {
        if !bin.is_file() {
            return Err(format!("{} is missing (cargo build)", bin.display()));
        }
    }
    let scratch = std::env::temp_dir().join(format!("stagewire-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(err("creating the scratch directory"))?;
    let mut table = Table {
        rows: Vec::new(),
        notes: Vec::new(),
    };

    eprintln!("bench: starting moto and the registry table");
    let moto = MotoServer::start().await.map_err(err("starting moto"))?;
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    stagewire_devkit::create_registry_table(&ddb, TABLE)
        .await
        .map_err(err("creating the registry table"))?;
    let proxy = FaultProxy::start(&moto.endpoint())
        .await
        .map_err(err("starting the counting proxy"))?;
    let receiver = ResponseReceiver::start(Vec::new())
        .await
        .map_err(err("starting the response receiver"))?;
    let mut world = World {
        cfn: aws_sdk_cloudformation::Client::new(&sdk),
        apigw: aws_sdk_apigateway::Client::new(&sdk),
        ddb,
        _moto: moto,
        proxy,
        receiver,
        events: CfnEvents::new(
            format!(
                "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/EcsDemoApi/{}",
                seed::uuid()
            ),
            SERVICE_TOKEN,
        ),
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
    let n = options.spawns;
    table.row(
        format!("cold init, stage-binding (spawn to first poll, median of {n})"),
        ms(init_binding),
        "",
    );
    table.row(
        "cold init, stage-binding without STAGEWIRE_TABLE (no AWS config or clients)",
        ms(init_bare),
        format!(
            "loading the AWS config and building the clients costs {}",
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
    let round_trips = seed.calls + 1;
    table.row(
        "seed Create, stage-binding: wall time (invoke to response PUT), first invocation",
        ms(seed.wall),
        format!("status {}", seed.status),
    );
    table.row(
        "seed Create, stage-binding: round trips (AWS calls + response PUT)",
        format!("{} + 1 = {round_trips}", seed.calls),
        format!(
            "goal <= 5: {}; {}",
            goal_mark(round_trips <= 5),
            seed.detail
        ),
    );
    if let Some(w) = warm.first() {
        table.row(
            "Create, stage-binding, warm (2nd and 3rd binding)",
            warm.iter()
                .map(|w| ms(w.wall))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{} AWS calls + 1 PUT each", w.calls),
        );
    }

    // The crowd: filler bindings up to the requested total.
    let filler = options.bindings - REAL_STAGES.len();
    let filler_stages = options.stages - REAL_STAGES.len();
    eprintln!("bench: loading {filler} filler bindings over {filler_stages} stages");
    let load_started = Instant::now();
    load_filler(&world.ddb, filler, filler_stages).await?;
    let load_time = load_started.elapsed();

    // One stack event affecting the three real bindings: the ELB stack is replaced.
    eprintln!("bench: replacing the ELB stack and sending its stack event");
    world
        .cfn
        .delete_stack()
        .stack_name(ELB_STACK)
        .send()
        .await
        .map_err(err("DeleteStack"))?;
    let (new_stack_id, new_dns) = world.elb_stack("bench-alb-2").await?;
    let resync_fn = resync.start().await?;
    let event = seed::stack_status_event(ACCOUNT, REGION, &new_stack_id, "CREATE_COMPLETE");
    let event_run = run_resync(&world, &resync_fn, event, INVOKE_TIMEOUT).await?;
    let mut followed = 0;
    for stage in REAL_STAGES {
        if world.stage_var(&api_id, stage).await.as_deref() == Some(new_dns.as_str()) {
            followed += 1;
        }
    }
    table.row(
        format!(
            "stack event, stage-resync: {} bindings on {} stages, 3 affected (first invocation)",
            options.bindings, options.stages
        ),
        format!("{}, {} AWS calls", ms(event_run.time), event_run.calls),
        format!(
            "{followed}/3 stages now carry the new DNS name; summary: {}; calls per service: {}",
            event_run.summary, event_run.detail
        ),
    );

    // The full reconcile.
    eprintln!("bench: full reconcile of {} bindings", options.bindings);
    let all_run = run_resync(
        &world,
        &resync_fn,
        json!({ "resync": "all" }),
        RECONCILE_TIMEOUT,
    )
    .await?;
    table.row(
        format!(
            "full reconcile (`{{\"resync\":\"all\"}}`), stage-resync: {} bindings",
            options.bindings
        ),
        format!("{}, {} AWS calls", ms(all_run.time), all_run.calls),
        format!(
            "summary: {}; calls per service: {}",
            all_run.summary, all_run.detail
        ),
    );

    // Memory and sizes.
    let rss_binding = binding_fn.process.peak_rss_kb();
    let rss_resync = resync_fn.process.peak_rss_kb();
    let rss_ok = |kb: Option<u64>| kb.is_some_and(|kb| kb < 30 * 1024);
    table.row(
        "peak RSS, stage-binding (after its 3 Creates)",
        rss(rss_binding),
        format!("goal < 30 MB: {}", goal_mark(rss_ok(rss_binding))),
    );
    table.row(
        "peak RSS, stage-resync (after the stack event and the full reconcile)",
        rss(rss_resync),
        format!("goal < 30 MB: {}", goal_mark(rss_ok(rss_resync))),
    );
    for (name, bin) in [
        ("stage-binding", &binding_bin),
        ("stage-resync", &resync_bin),
    ] {
        let (size, zipped) = sizes(bin, &scratch)?;
        table.row(
            format!("size, {name}: binary / zipped bootstrap"),
            format!(
                "{} / {}",
                mb(size),
                zipped.map_or("n/a (zip failed)".to_string(), mb)
            ),
            format!(
                "goal zipped < 8 MB: {}",
                goal_mark(zipped.is_some_and(|z| z < 8_000_000))
            ),
        );
    }

    // The comparison: crhelper + boto3 under awslambdaric.
    match python_launcher(&options.python, &scratch) {
        Err(why) => table.notes.push(format!(
            "comparison row skipped: {why} (run scripts/bench.sh to create bench/.venv)"
        )),
        Ok(script) => {
            eprintln!("bench: the crhelper + boto3 comparison");
            let python = Launcher {
                path: script,
                env: world.env(false),
            };
            let init_python = python.cold_init(options.spawns).await?;
            let py_fn = python.start().await?;
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
            table.row(
                format!("comparison, crhelper + boto3 (awslambdaric): cold init (median of {n})"),
                ms(init_python),
                format!(
                    "{} stagewire's stage-binding",
                    ratio(init_python.as_secs_f64(), init_binding.as_secs_f64())
                ),
            );
            table.row(
                "comparison, crhelper + boto3: seed Create wall time, first invocation",
                ms(py.wall),
                format!(
                    "{} stagewire's; status {}; {} AWS calls + 1 PUT ({}); stage written: {}",
                    ratio(py.wall.as_secs_f64(), seed.wall.as_secs_f64()),
                    py.status,
                    py.calls,
                    py.detail,
                    live.as_deref() == Some(dns.as_str())
                        || live.as_deref() == Some(new_dns.as_str())
                ),
            );
            table.row(
                "comparison, crhelper + boto3: peak RSS after the Create",
                rss(rss_python),
                format!(
                    "{} stagewire's stage-binding",
                    ratio(
                        rss_python.unwrap_or(0) as f64,
                        rss_binding.unwrap_or(0) as f64
                    )
                ),
            );
            table.notes.push(
                "the crhelper function writes the stage with CreateDeployment(stageName, variables): \
                 it neither records ownership nor reacts to later changes of the stack output"
                    .to_string(),
            );
        }
    }

    table.notes.push(format!(
        "registry load: {filler} filler bindings over {filler_stages} stages written with \
         BatchWriteItem (25 per call) in {}; the 3 real bindings were created by stage-binding",
        ms(load_time)
    ));
    table.notes.push(
        "the filler bindings point at stacks and stages that do not exist in moto, so the full \
         reconcile reports most of them as missing (their values are kept, not blanked)"
            .to_string(),
    );
    table.notes.push(
        "AWS calls are counted by a FaultProxy set as the functions' AWS_ENDPOINT_URL in front of \
         moto; times are local (moto on 127.0.0.1), not AWS latencies"
            .to_string(),
    );
    let title = format!(
        "stagewire bench: binaries from {}",
        options.bin_dir.display()
    );
    table.print(&title);

    drop(binding_fn);
    drop(resync_fn);
    let _ = std::fs::remove_dir_all(&scratch);
    drop(world);
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
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
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: failed: {e}");
            ExitCode::FAILURE
        }
    }
}
