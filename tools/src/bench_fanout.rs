//! `bench --fanout`: the full reconcile fanned out over SQS, measured end to end on one moto
//! server. For each registry size: the real `stage-resync` plans (the schedule's event) and
//! sends one unit per API to moto's SQS; the devkit's event source mapping drains the queue
//! with 1, 4 and 16 `stage-resync` worker processes, each told the number of workers
//! (`STAGEWIRE_RECONCILE_WORKERS`) so that it paces API Gateway at its share of the account's
//! quota, which the fault proxy enforces. The sources are stack outputs in 10 accounts (the
//! hub's and 9 members') and 2 regions (the hub's and another): the processes are configured as
//! the template configures them (`STAGEWIRE_ACCOUNT_ID`, `STAGEWIRE_SOURCE_ROLES`) and assume
//! each member's role, through the proxy like every other call (moto maps an assumed role's
//! credentials to the role's account and serves every region). Every binding is in sync with
//! its source (the schedule's common case), so each run does the same work. Printed: one
//! markdown table.

use std::time::{Duration, Instant};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::Value;
use stagewire::config::{ACCOUNT_VAR, SOURCE_ROLES_VAR};
use stagewire::domain::{ApiKind, Owner, Place, Source, StageRef};
use stagewire::ports::Record;
use stagewire_devkit::event_source::{self, EventSource};
use stagewire_devkit::records;
use stagewire_devkit::{error_chain, Function, LocalAws};

use super::{err, rss, secs, thousands, BenchResult};

/// Accounts of the sources: the hub's own (the first) and members.
const ACCOUNTS: usize = 10;
/// Regions of the sources: the hub's own (the first) and another.
const REGIONS: [&str; 2] = [super::REGION, "eu-west-1"];
/// The source stack, of the same name in every account and region.
const SOURCE_STACK: &str = "Source";
/// The role ARN patterns the hub trusts (its `SourceRoleArns` parameter).
const TRUSTED_ROLES: &str = "arn:aws:iam::*:role/stagewire-source";
/// Stages per API: a unit is an API and its stages.
const STAGES_PER_API: usize = 10;
/// The worker counts measured by default.
pub const WORKERS: [usize; 3] = [1, 4, 16];
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3_600);

/// Account `a`: the hub's own for 0, else a member's.
fn account(a: usize) -> String {
    if a == 0 {
        super::ACCOUNT.to_string()
    } else {
        format!("{:012}", 200_000_000_000 + a)
    }
}

/// The read-only role a spoke creates in `account`, which the hub assumes.
fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/stagewire-source")
}

/// Account and region (indexes into [`account`] and [`REGIONS`]) of binding `i`'s source.
fn place_of(i: usize) -> (usize, usize) {
    let k = i % (ACCOUNTS * REGIONS.len());
    (k / REGIONS.len(), k % REGIONS.len())
}

/// Binding `i`'s source, the output of [`SOURCE_STACK`] in its account and region, and the
/// value of that output. `Region` names only the other region and `RoleArn` only a member's
/// role: the hub's own account and region are where a source is read by default (and a role
/// of the hub's own account is refused).
fn source(i: usize) -> (Source, String) {
    let (a, r) = place_of(i);
    let (account, region) = (account(a), REGIONS[r]);
    let source = Source::StackOutput {
        stack: SOURCE_STACK.into(),
        output_key: "Dns".into(),
        at: Place {
            region: (r != 0).then(|| region.to_string()),
            role_arn: (a != 0).then(|| role(&account)),
        },
    };
    (source, format!("source.{account}.{region}.elb.example.com"))
}

/// The accounts and regions the sources of `bindings` bindings span.
fn spread(bindings: usize) -> (usize, usize) {
    let places: Vec<(usize, usize)> = (0..bindings.min(ACCOUNTS * REGIONS.len()))
        .map(place_of)
        .collect();
    let count = |key: fn(&(usize, usize)) -> usize| {
        let mut keys: Vec<usize> = places.iter().map(key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    };
    (count(|p| p.0), count(|p| p.1))
}

/// An SDK configuration for account `a` and region `region`: the hub's, or a member's through
/// an assumed role (the seed's own, not the one the functions assume).
async fn sdk_at(hub: &SdkConfig, a: usize, region: &str) -> SdkConfig {
    let mut sdk = hub.to_builder().region(Region::new(region.to_string()));
    if a != 0 {
        let provider =
            AssumeRoleProvider::builder(format!("arn:aws:iam::{}:role/bench-seed", account(a)))
                .session_name("bench-seed")
                .region(Region::new(region.to_string()))
                .configure(hub)
                .build()
                .await;
        sdk = sdk.credentials_provider(SharedCredentialsProvider::new(provider));
    }
    sdk.build()
}

/// Binding `i` of `bindings` over `stages` stages: its stage and variable.
fn place(i: usize, stages: usize) -> (usize, String) {
    (i % stages, format!("v{}", i / stages))
}

fn record(i: usize, stages: usize, apis: &[String], owner: &str) -> Record {
    let (stage_no, variable) = place(i, stages);
    let (source, value) = source(i);
    let api = &apis[stage_no / STAGES_PER_API];
    let stage = StageRef::new(ApiKind::Rest, api, format!("s{stage_no}"));
    let owner = Owner {
        stack_id: owner.to_string(),
        logical_id: format!("Binding{stage_no}"),
        physical_id: format!("binding-{stage_no}"),
    };
    records::written((stage, variable), owner, source, &value)
}

/// One run: the planner and `workers` workers over the whole registry.
pub struct Run {
    pub workers: usize,
    pub wall: Duration,
    pub peak_rate: u64,
    pub over_quota: u64,
    pub worker_rss_kib: Option<u64>,
    pub planner_rss_kib: Option<u64>,
    pub calls: u64,
    pub apigateway: u64,
    pub assume_role: u64,
    pub writes: u64,
    pub units: u64,
    pub failures: u64,
}

struct Setup {
    /// moto, the registry table, and the proxy the functions' calls go through.
    aws: LocalAws,
    sqs: aws_sdk_sqs::Client,
}

/// Seeds a fresh moto with `bindings` bindings over `stages` stages (in sync with their
/// sources) and measures each worker count, printing a row for each.
pub async fn measure(
    resync_bin: &std::path::Path,
    bindings: usize,
    stages: usize,
    worker_counts: &[usize],
) -> BenchResult<()> {
    let setup = seed(bindings, stages).await?;
    for &workers in worker_counts {
        eprintln!("bench: fan-out of {bindings} bindings, {workers} worker(s)");
        row(bindings, stages, &run(&setup, resync_bin, workers).await?);
    }
    drop(setup.aws);
    Ok(())
}

async fn seed(bindings: usize, stages: usize) -> BenchResult<Setup> {
    eprintln!("bench: seeding {bindings} bindings over {stages} stages");
    let aws = super::local_aws().await?;
    let sdk = aws.sdk.clone();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stack = |outputs: String| {
        format!(
            r#"{{"Resources": {{"Placeholder": {{"Type": "AWS::CloudFormation::WaitConditionHandle"}}}}, "Outputs": {{{outputs}}}}}"#
        )
    };
    let owner = stagewire_devkit::examples::placeholder_stack(&cfn, "Bindings")
        .await
        .map_err(err("CreateStack"))?;
    for k in 0..ACCOUNTS * REGIONS.len() {
        let (a, r) = place_of(k);
        let (_, value) = source(k);
        aws_sdk_cloudformation::Client::new(&sdk_at(&sdk, a, REGIONS[r]).await)
            .create_stack()
            .stack_name(SOURCE_STACK)
            .template_body(stack(format!(r#""Dns": {{"Value": "{value}"}}"#)))
            .send()
            .await
            .map_err(err(&format!(
                "CreateStack in account {}, region {}",
                account(a),
                REGIONS[r]
            )))?;
    }
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let mut apis = Vec::new();
    for a in 0..stages.div_ceil(STAGES_PER_API) {
        apis.push(
            stagewire_devkit::seed::helloworld_rest_api(&apigw, &format!("Api{a}"))
                .await
                .map_err(|e| error_chain(&e))?,
        );
    }
    let per_stage = bindings.div_ceil(stages);
    for s in 0..stages {
        let variables = (0..per_stage)
            .map(|j| j * stages + s)
            .filter(|&i| i < bindings)
            .map(|i| (place(i, stages).1, source(i).1))
            .collect();
        apigw
            .create_deployment()
            .rest_api_id(&apis[s / STAGES_PER_API])
            .stage_name(format!("s{s}"))
            .set_variables(Some(variables))
            .send()
            .await
            .map_err(err("CreateDeployment"))?;
    }
    let started = Instant::now();
    super::load_records(&ddb, bindings, |i| record(i, stages, &apis, &owner)).await?;
    eprintln!("bench: registry loaded in {}", secs(started.elapsed()));
    Ok(Setup {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        aws,
    })
}

async fn run(setup: &Setup, resync_bin: &std::path::Path, workers: usize) -> BenchResult<Run> {
    let queues = event_source::create_queues(
        &setup.sqs,
        &format!("units-{workers}"),
        Duration::from_secs(900),
        3,
    )
    .await
    .map_err(err("creating the queues"))?;
    let mut env = setup.aws.function_env();
    env.extend(
        [
            ("STAGEWIRE_BINDING_AUTHORIZATION", "Open".to_string()),
            ("STAGEWIRE_RECONCILE_QUEUE", queues.url.clone()),
            ("STAGEWIRE_RECONCILE_WORKERS", workers.to_string()),
            (ACCOUNT_VAR, super::ACCOUNT.to_string()),
            (SOURCE_ROLES_VAR, TRUSTED_ROLES.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let launch = || Function::launch(resync_bin, &env, Duration::from_secs(30));
    let planner = launch().await.map_err(err("starting the planner"))?;
    let mut pool = Vec::new();
    for _ in 0..workers {
        pool.push(launch().await.map_err(err("starting a worker"))?);
    }
    let scheduled: Value = serde_json::json!({
        "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": super::ACCOUNT, "time": "2026-11-25T12:15:00Z", "region": super::REGION,
        "resources": [], "detail": {}
    });
    setup.aws.proxy.reset_counts();
    setup.aws.proxy.enforce_apigateway_quotas();
    let started = Instant::now();
    let planned = planner
        .api
        .invoke(scheduled, Duration::from_secs(900))
        .await
        .map_err(err("invoking the planner"))?;
    if planned.response().is_none() {
        return Err(format!("the planner failed: {:?}", planned.outcome));
    }
    let source = EventSource {
        client: setup.sqs.clone(),
        queues: queues.clone(),
        batch_size: 5,
        function_timeout: Duration::from_secs(900),
    };
    let apis: Vec<_> = pool.iter().map(|f| &f.api).collect();
    let delivered = source
        .drain(&apis, DRAIN_TIMEOUT)
        .await
        .map_err(err("draining the queue"))?;
    let wall = started.elapsed();
    setup.aws.proxy.lift_apigateway_quotas();
    let counts = setup.aws.proxy.counts();
    let of = |pred: &dyn Fn(&str, &str) -> bool| -> u64 {
        counts
            .iter()
            .filter(|((s, o), _)| pred(s, o))
            .map(|(_, n)| n)
            .sum()
    };
    use std::sync::atomic::Ordering::SeqCst;
    Ok(Run {
        workers,
        wall,
        peak_rate: setup.aws.proxy.max_rate_per_sec("apigateway"),
        over_quota: setup.aws.proxy.over_quota(),
        // The largest of the workers' peaks; none if any worker's cannot be read (it ended).
        worker_rss_kib: pool
            .iter()
            .map(|f| f.process.peak_rss_kb())
            .collect::<Option<Vec<_>>>()
            .and_then(|peaks| peaks.into_iter().max()),
        planner_rss_kib: planner.process.peak_rss_kb(),
        calls: setup.aws.proxy.total(),
        apigateway: of(&|s, _| s == "apigateway"),
        assume_role: of(&|s, o| s == "sts" && o == "AssumeRole"),
        writes: of(&|s, o| super::is_write(s, o)),
        units: delivered.deleted.load(SeqCst),
        failures: delivered.item_failures.load(SeqCst) + delivered.errors.load(SeqCst),
    })
}

/// The table's header; [`row`] prints each run as it ends.
pub fn header() {
    println!("| bindings | sources | workers | wall time | highest API Gateway requests in any second (quota 10/s, burst 40) | throttled | peak RSS per worker | peak RSS of the planner | AWS calls per binding | units | writes |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
}

pub fn row(bindings: usize, stages: usize, r: &Run) {
    let (accounts, regions) = spread(bindings);
    let outputs = bindings.min(ACCOUNTS * REGIONS.len());
    println!(
        "| {} over {} stages | {outputs} stack outputs in {accounts} accounts and {regions} regions | {} | {} | {} | {} | {} | {} | {:.3} ({} calls: {} to API Gateway, {} AssumeRole) | {} ({} failed) | {} |",
        thousands(bindings),
        thousands(stages),
        r.workers,
        secs(r.wall),
        r.peak_rate,
        r.over_quota,
        rss(r.worker_rss_kib),
        rss(r.planner_rss_kib),
        r.calls as f64 / bindings as f64,
        r.calls,
        r.apigateway,
        r.assume_role,
        r.units,
        r.failures,
        r.writes,
    );
}
