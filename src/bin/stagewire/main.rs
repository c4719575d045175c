//! `stagewire`: the operator CLI. `status` shows every registered stage variable next to its
//! live and resolved values, `sync` reconciles now (or plans with `--dry-run`), and
//! `bind` / `unbind` manage bindings of stages that CloudFormation does not manage.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::ProvideCredentials;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};
use stagewire::binding::{self, Change};
use stagewire::config::TABLE_VAR;
use stagewire::domain::{owner_key, source, validate_stage_name, ApiKind, BindingSpec, StageRef};
use stagewire::resync::{self, IssueKind, Summary, Trigger};
use stagewire::status::{self, Filter, Row, State};
use stagewire::wait::HealthWait;
use stagewire::Ports;

/// Exit status for bad arguments or settings (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;
/// Exit status for a failure while running (AWS, registry, credentials).
const EXIT_FAILURE: u8 = 1;

/// Owner stack id of the bindings `bind` makes.
const CLI_STACK_ID: &str = "cli";
/// Owner logical id of the bindings `bind` makes; with the API and stage it forms the physical
/// id `stagewire:<kind>:<api>:<stage>:stagewire-cli`.
const CLI_LOGICAL_ID: &str = "stagewire-cli";

/// How long the credential check may take before credentials count as missing.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

const EXIT_CODES: &str = "\
Exit status:
  0   done; for status (and sync --dry-run): every variable is in sync
  1   a failure while running (AWS call, registry, credentials, a write that failed)
  2   status / sync: at least one variable is drifted, source missing, unhealthy or on a
      missing stage (sync: left unresolved, deferred or on a missing stage; sync --dry-run:
      or a binding of an ended stack it would release)
  64  bad arguments or settings (unknown verb or option, bad --var, no registry table,
      no region, values API Gateway would refuse)

Environment:
  STAGEWIRE_TABLE   the registry table (or --table)
  AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...
                    the AWS SDK's own configuration";

#[derive(Debug, Parser)]
#[command(
    name = "stagewire",
    version,
    about = "Bind API Gateway stage variables to the load balancers behind them, and keep them bound.",
    after_help = EXIT_CODES,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// The stagewire registry table [default: $STAGEWIRE_TABLE]
    #[arg(long, global = true, value_name = "NAME")]
    table: Option<String>,
    /// AWS profile to use (as AWS_PROFILE)
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// AWS region to use (as AWS_REGION)
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show every registered stage variable: live value, resolved value and state
    #[command(
        long_about = "Show every registered stage variable: its API (kind:id), stage, source, \
the value on the stage now, what the source resolves to now, and a state:\n  \
in sync         the live value is the resolved value\n  \
drifted         the live value differs (or the variable is absent)\n  \
source missing  the source cannot be resolved (stack, output, service or load balancer gone)\n  \
unhealthy       in sync, but the load balancer has no healthy target\n  \
stage missing   the stage (or its API) does not exist\n\n\
With --json, prints a JSON array of rows; state is one of in_sync, drifted, source_missing, \
unhealthy, stage_missing, and note says why.",
        after_help = EXIT_CODES
    )]
    Status(StatusArgs),
    /// Reconcile now: write every variable whose source moved (or plan it with --dry-run)
    #[command(
        long_about = "Reconcile now, as the stage-resync function does: resolve each source, \
read each stage once and write only what differs. A source that cannot be resolved keeps its \
value; a switch to a load balancer without a healthy target waits while the current one exists. \
Bindings whose owning stack is DELETE_COMPLETE, ROLLBACK_COMPLETE or gone are released: their \
variables removed where they still hold what was written, the stages they created deleted once \
empty.\n\n\
With --dry-run, prints the changes a reconcile would make (variable, from, to) and the bindings \
it would release, and writes nothing.",
        after_help = EXIT_CODES
    )]
    Sync(SyncArgs),
    /// Bind variables of a stage that CloudFormation does not manage
    #[command(
        long_about = bind_long_about(),
        after_help = EXIT_CODES
    )]
    Bind(BindArgs),
    /// Remove a binding made by `bind`
    #[command(
        long_about = "Remove the binding `bind` made on a stage: delete the variables it owns \
that still hold the value it wrote, delete the stage if bind created it and nothing else lives \
there, and forget the binding. Bindings of CloudFormation stacks are not touched. Unbinding \
a stage with no CLI binding succeeds.",
        after_help = EXIT_CODES
    )]
    Unbind(UnbindArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print a JSON array of rows instead of a table
    #[arg(long)]
    json: bool,
    /// Only this API: its id, or kind:id (rest:ID, http:ID)
    #[arg(long, value_name = "ID")]
    api: Option<String>,
    /// Only stages with this name
    #[arg(long, value_name = "NAME")]
    stage: Option<String>,
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// Print the changes a reconcile would make, without writing anything
    #[arg(long)]
    dry_run: bool,
    /// Only the bindings whose source is an output of this stack (by ARN: a member account's
    /// stack in its account and region)
    #[arg(long, value_name = "NAME|ARN")]
    stack: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ApiTarget {
    /// The REST API (API Gateway v1)
    #[arg(long, value_name = "ID")]
    rest_api_id: Option<String>,
    /// The HTTP API (API Gateway v2)
    #[arg(long, value_name = "ID")]
    http_api_id: Option<String>,
}

impl ApiTarget {
    fn kind_and_id(&self) -> (ApiKind, &str) {
        match (&self.rest_api_id, &self.http_api_id) {
            (Some(id), _) => (ApiKind::Rest, id),
            (None, Some(id)) => (ApiKind::Http, id),
            (None, None) => unreachable!("clap requires one of --rest-api-id and --http-api-id"),
        }
    }
}

#[derive(Debug, Args)]
struct BindArgs {
    #[command(flatten)]
    api: ApiTarget,
    /// The stage
    #[arg(long, value_name = "NAME")]
    stage: String,
    #[arg(
        long = "var",
        value_name = "NAME=SOURCE",
        required = true,
        value_parser = parse_var,
        help = format!(
            "A stage variable and its source (repeatable); SOURCE: {}",
            source::cli_forms()
        )
    )]
    vars: Vec<(String, Value)>,
    /// Fail instead of creating the stage when it does not exist
    #[arg(long)]
    no_create_stage: bool,
}

#[derive(Debug, Args)]
struct UnbindArgs {
    #[command(flatten)]
    api: ApiTarget,
    /// The stage
    #[arg(long, value_name = "NAME")]
    stage: String,
}

/// The long help of `bind`; its list of sources comes from the table of source kinds.
fn bind_long_about() -> String {
    format!(
        "Bind stage variables to their sources, for a stage that CloudFormation \
does not manage: resolve every source, create the stage if needed, write the values and \
register them so the re-sync keeps them current.\n\n\
The binding belongs to owner stack 'cli', logical id 'stagewire-cli'; its physical id is \
stagewire:<rest|http>:<API>:<STAGE>:stagewire-cli. Running bind again on the same stage \
updates that binding: the --var list is its whole set, and variables bound earlier but left \
out are released (removed from the stage if they still hold the bound value). A variable \
owned by another binding (a CloudFormation stack) is refused.\n\n\
SOURCE is one of:\n{}",
        source::cli_help()
    )
}

/// `NAME=SOURCE` into the variable name and its source as `Custom::StageBinding` properties.
fn parse_var(s: &str) -> Result<(String, Value), String> {
    let (name, source) = s.split_once('=').ok_or_else(|| {
        format!(
            "expected NAME=SOURCE with SOURCE one of {}",
            source::cli_forms()
        )
    })?;
    if name.is_empty() {
        return Err("the variable name before '=' is empty".into());
    }
    Ok((name.to_string(), parse_source(source)?))
}

/// `kind:...` into the kind's properties, as the table of source kinds declares them.
fn parse_source(s: &str) -> Result<Value, String> {
    let unknown = || format!("unknown source {s:?}: use {}", source::cli_forms());
    let (prefix, rest) = s.split_once(':').ok_or_else(unknown)?;
    let kind = source::kind_of_cli_prefix(prefix).ok_or_else(unknown)?;
    let props = kind
        .cli_properties(rest)
        .ok_or_else(|| format!("source {s:?} must have the form {}", kind.cli_form))?;
    Ok(Value::Object(
        props
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect(),
    ))
}

/// Why a command did not run to the end.
enum Failure {
    /// Bad arguments or settings.
    Usage(String),
    /// Something failed while running.
    Runtime(String),
}

impl Failure {
    fn runtime(e: impl std::fmt::Display) -> Self {
        Failure::Runtime(e.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let table = cli
        .global
        .table
        .clone()
        .or_else(|| std::env::var(TABLE_VAR).ok())
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no registry table: give --table NAME or set {TABLE_VAR}"
            ))
        })?;
    // Input that can be checked without AWS is checked before loading credentials.
    let bind_spec = match &cli.command {
        Command::Bind(args) => Some(bind_spec(args)?),
        Command::Unbind(args) => {
            validate_stage_name(args.api.kind_and_id().0, &args.stage)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            None
        }
        _ => None,
    };
    let sdk = load_sdk(&cli.global).await?;
    let mut ports = Ports::aws(&sdk, &table);
    ports.sources = stagewire::config::source_access_from_env();
    // `bind` and `unbind` act with the operator's own credentials: what IAM lets them do to API
    // Gateway is the rule. `status` and `sync` show and do what the re-sync would, under the
    // functions' rule (STAGEWIRE_BINDING_AUTHORIZATION, ApiTags by default, as in the template).
    ports.authorization = match cli.command {
        Command::Bind(_) | Command::Unbind(_) => stagewire::domain::Authorization::Open,
        _ => stagewire::config::authorization_from_env()
            .map_err(|e| Failure::Usage(e.to_string()))?,
    };
    match cli.command {
        Command::Status(args) => status_cmd(&ports, &args).await,
        Command::Sync(args) => sync_cmd(&ports, &args).await,
        Command::Bind(_) => bind_cmd(&ports, &bind_spec.expect("checked above")).await,
        Command::Unbind(args) => unbind_cmd(&ports, &args).await,
    }
}

/// The SDK configuration: the functions' settings plus `--profile` and `--region`, with the
/// region and credentials checked up front.
async fn load_sdk(global: &Global) -> Result<SdkConfig, Failure> {
    let mut loader = stagewire::config::sdk_loader();
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Failure::Usage(
            "no AWS region: give --region, set AWS_REGION, or use a profile with a region".into(),
        ));
    }
    const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE (or give --profile), \
set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is available";
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| Failure::Runtime(NO_CREDENTIALS.into()))?;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(sdk),
        Ok(Err(e)) => Err(Failure::Runtime(format!("{NO_CREDENTIALS} ({e})"))),
        Err(_) => Err(Failure::Runtime(format!(
            "{NO_CREDENTIALS} (none within {} s)",
            CREDENTIALS_TIMEOUT.as_secs()
        ))),
    }
}

// ---- status ----

async fn status_cmd(ports: &Ports, args: &StatusArgs) -> Result<u8, Failure> {
    let filter = Filter {
        api: args.api.clone(),
        stage: args.stage.clone(),
    };
    let rows = status::status(ports, &filter)
        .await
        .map_err(Failure::runtime)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(Failure::runtime)?
        );
    } else if rows.is_empty() {
        println!("no bindings registered");
    } else {
        print!("{}", table(&rows));
    }
    Ok(status::exit_code(&rows) as u8)
}

/// Rows as an aligned text table; the state column comes last and carries the note.
fn table(rows: &[Row]) -> String {
    let header = [
        "API", "STAGE", "VARIABLE", "SOURCE", "LIVE", "RESOLVED", "STATE",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let state = match (r.state, &r.note) {
                (State::InSync, _) | (_, None) => r.state.to_string(),
                (_, Some(note)) => format!("{}: {}", r.state, short(note)),
            };
            [
                r.api.clone(),
                r.stage.clone(),
                r.variable.clone(),
                r.source.clone(),
                r.live.clone().unwrap_or_else(|| "-".into()),
                r.resolved.clone().unwrap_or_else(|| "-".into()),
                state,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A note cut to a length that keeps a table readable.
fn short(note: &str) -> String {
    const MAX: usize = 80;
    if note.chars().count() <= MAX {
        note.to_string()
    } else {
        let cut: String = note.chars().take(MAX - 3).collect();
        format!("{cut}...")
    }
}

// ---- sync ----

async fn sync_cmd(ports: &Ports, args: &SyncArgs) -> Result<u8, Failure> {
    let (trigger, origin) = match &args.stack {
        Some(stack) => (
            Trigger::Stack(stack.clone()),
            resync::Origin::of_stack(stack),
        ),
        None => (Trigger::Everything, resync::Origin::default()),
    };
    let scope = match &args.stack {
        Some(stack) => format!("bindings to outputs of stack {stack}"),
        None => "every binding".to_string(),
    };
    if args.dry_run {
        let mut asked = Summary::new(scope.clone());
        let sorted = resync::sort(ports, &trigger, &origin, &mut asked)
            .await
            .map_err(Failure::runtime)?;
        let rows = status::rows(ports, sorted.live)
            .await
            .map_err(Failure::runtime)?;
        let plan = status::plan(&rows);
        println!(
            "dry run over {scope}: {} checked",
            rows.len() + sorted.ended.len()
        );
        for r in &sorted.ended {
            println!(
                "would release {} variable {} of {} {}: its stack ended (the variable goes where it still holds {})",
                r.stage,
                r.variable,
                r.owner.stack_id,
                r.owner.logical_id,
                r.value.as_deref().unwrap_or("(nothing written)")
            );
        }
        for issue in asked.failures() {
            println!("failed: {issue}");
        }
        for c in &plan {
            let verb = if c.deferred.is_some() {
                "would defer"
            } else {
                "would change"
            };
            println!(
                "{verb} {} stage {} variable {}: {} -> {}{}",
                c.api,
                c.stage,
                c.variable,
                c.from.as_deref().unwrap_or("(absent)"),
                c.to,
                c.deferred
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
        for r in rows
            .iter()
            .filter(|r| !matches!(r.state, State::InSync | State::Drifted))
        {
            let what = match r.state {
                State::SourceMissing => "value kept",
                State::StageMissing => "nothing to write",
                _ => "no change",
            };
            println!(
                "{} {} stage {} variable {}: {what}{}",
                r.state,
                r.api,
                r.stage,
                r.variable,
                r.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
        println!(
            "{} change(s) and {} release(s) planned, nothing written",
            plan.len(),
            sorted.ended.len()
        );
        if !asked.failures().is_empty() {
            return Ok(EXIT_FAILURE);
        }
        let code = status::exit_code(&rows) as u8;
        return Ok(if sorted.ended.is_empty() {
            code
        } else {
            code.max(status::EXIT_ATTENTION as u8)
        });
    }
    let summary = resync::run(ports, &trigger, &origin).await;
    print_summary(&scope, &summary);
    Ok(if !summary.failures().is_empty() {
        EXIT_FAILURE
    } else if summary.issues.is_empty() {
        0
    } else {
        status::EXIT_ATTENTION as u8
    })
}

fn print_summary(scope: &str, s: &Summary) {
    println!("sync over {scope}: {} checked", s.bindings_checked);
    for c in &s.changed {
        println!(
            "changed {} variable {}: {} -> {}",
            c.stage,
            c.variable,
            c.from.as_deref().unwrap_or("(absent)"),
            c.to
        );
    }
    for issue in &s.issues {
        let label = match issue.kind {
            IssueKind::Unresolved => "unresolved (value kept)",
            IssueKind::Deferred => "deferred",
            IssueKind::StageMissing => "missing",
            IssueKind::Failed => "failed",
            IssueKind::Unauthorized => "not authorized (not updated)",
            IssueKind::Refused => "refused (nothing done)",
        };
        println!("{label}: {issue}");
    }
    println!(
        "{} changed, {} released (stack ended), {} unresolved, {} deferred, {} missing stage(s), {} failure(s)",
        s.changed.len(),
        s.released,
        s.unresolved().len(),
        s.deferred().len(),
        s.missing_stages().len(),
        s.failures().len()
    );
}

// ---- bind / unbind ----

/// The binding `bind` asks for, validated by the library's property rules.
fn bind_spec(args: &BindArgs) -> Result<BindingSpec, Failure> {
    let (kind, api_id) = args.api.kind_and_id();
    let mut variables = Map::new();
    for (name, source) in &args.vars {
        if variables.insert(name.clone(), source.clone()).is_some() {
            return Err(Failure::Usage(format!("variable {name} is given twice")));
        }
    }
    let id_key = match kind {
        ApiKind::Rest => "RestApiId",
        ApiKind::Http => "HttpApiId",
    };
    let props = json!({
        id_key: api_id,
        "StageName": args.stage,
        "CreateStage": !args.no_create_stage,
        "Variables": variables,
    });
    stagewire::props::parse(&props).map_err(|e| Failure::Usage(e.to_string()))
}

fn cli_physical_id(stage: &StageRef) -> String {
    BindingSpec {
        stage: stage.clone(),
        create_stage: false,
        variables: BTreeMap::new(),
    }
    .physical_id(CLI_LOGICAL_ID)
}

async fn bind_cmd(ports: &Ports, spec: &BindingSpec) -> Result<u8, Failure> {
    let physical_id = cli_physical_id(&spec.stage);
    let exists = ports
        .registry
        .by_owner(&owner_key(CLI_STACK_ID, CLI_LOGICAL_ID))
        .await
        .map_err(Failure::runtime)?
        .iter()
        .any(|r| r.owner.physical_id == physical_id);
    let now = stagewire::now_ms();
    // As the custom resource does: a switch to a load balancer without a healthy target waits
    // for one, here for at most two minutes.
    let wait = HealthWait::until(tokio::time::Instant::now() + Duration::from_secs(120));
    let applied = if exists {
        binding::update(
            ports,
            CLI_STACK_ID,
            CLI_LOGICAL_ID,
            &physical_id,
            spec,
            usize::MAX,
            now,
            &wait,
        )
        .await
    } else {
        binding::create(
            ports,
            CLI_STACK_ID,
            CLI_LOGICAL_ID,
            spec,
            usize::MAX,
            now,
            &wait,
        )
        .await
    };
    let applied = applied.map_err(|e| match e {
        binding::BindingError::Invalid(v) => Failure::Usage(v.to_string()),
        other => Failure::runtime(other),
    })?;
    let what = match applied.change {
        Change::CreatedStage => "created the stage",
        Change::Updated => "updated",
        Change::Unchanged => "already up to date",
    };
    println!(
        "{} binding on {}: {what}",
        if exists { "updated" } else { "created" },
        spec.stage
    );
    for (name, value) in &applied.data {
        if name != binding::INVOKE_URL {
            println!("  {name} = {value}");
        }
    }
    if let Some(url) = applied.data.get(binding::INVOKE_URL) {
        println!("invoke URL: {url}");
    }
    println!("owner: stack {CLI_STACK_ID}, logical id {CLI_LOGICAL_ID}, physical id {physical_id}");
    Ok(0)
}

async fn unbind_cmd(ports: &Ports, args: &UnbindArgs) -> Result<u8, Failure> {
    let (kind, api_id) = args.api.kind_and_id();
    let stage = StageRef::new(kind, api_id, args.stage.clone());
    let physical_id = cli_physical_id(&stage);
    let done = binding::delete(ports, CLI_STACK_ID, CLI_LOGICAL_ID, &physical_id, None)
        .await
        .map_err(Failure::runtime)?;
    if done.records_released == 0 && done.variables_removed == 0 && done.stages_deleted == 0 {
        println!("no binding made by stagewire bind on {stage}: nothing to do");
    } else {
        println!(
            "unbound {stage}: {} variable(s) removed, {} stage(s) deleted, {} registration(s) released",
            done.variables_removed, done.stages_deleted, done.records_released
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sources() {
        assert_eq!(
            parse_var("helloworldElb=stack:EcsHelloworldProd/EcsElbDnsName").unwrap(),
            (
                "helloworldElb".to_string(),
                json!({"StackName": "EcsHelloworldProd", "OutputKey": "EcsElbDnsName"})
            )
        );
        assert_eq!(
            parse_source("stack:arn:aws:cloudformation:us-east-1:1:stack/S/uuid/Out").unwrap(),
            json!({"StackName": "arn:aws:cloudformation:us-east-1:1:stack/S/uuid", "OutputKey": "Out"})
        );
        assert_eq!(
            parse_source("ecs:prod/orders").unwrap(),
            json!({"Cluster": "prod", "Service": "orders"})
        );
        assert_eq!(
            parse_source("lb:my-alb").unwrap(),
            json!({"LoadBalancer": "my-alb"})
        );
        assert_eq!(parse_source("value:a=b").unwrap(), json!({"Value": "a=b"}));
        assert_eq!(parse_var("v=value:x=y").unwrap().1, json!({"Value": "x=y"}));
    }

    #[test]
    fn every_kind_has_a_cli_form_the_properties_accept() {
        let about = bind_long_about();
        for kind in stagewire::domain::SOURCE_KINDS {
            assert!(
                about.contains(kind.cli_form) && about.contains(kind.help),
                "{kind:?}"
            );
            let arg = match kind.required.len() {
                1 => format!("v={}:x", kind.cli_prefix),
                _ => format!("v={}:x/y", kind.cli_prefix),
            };
            let (_, source) = parse_var(&arg).unwrap();
            let props = json!({"RestApiId": "a", "StageName": "p", "Variables": {"v": source}});
            stagewire::props::parse(&props).unwrap_or_else(|e| panic!("{arg}: {e}"));
        }
    }

    #[test]
    fn bad_sources_name_the_accepted_forms() {
        for bad in ["s3:bucket", "nocolon", "=value:x", "v"] {
            let e = parse_var(bad).unwrap_err();
            assert!(
                e.contains("stack:STACK/OUTPUTKEY") || e.contains("name before"),
                "{bad}: {e}"
            );
        }
        assert!(parse_source("stack:only")
            .unwrap_err()
            .contains("stack:STACK/OUTPUTKEY"));
        assert!(parse_source("ecs:/svc")
            .unwrap_err()
            .contains("ecs:CLUSTER/SERVICE"));
        assert!(parse_source("lb:").is_err());
        assert!(parse_source("value:").is_err());
    }
}
