//! `stagewire bind`: add or update variables of a stage's CLI binding (or, with `--replace`,
//! make them its whole set), after printing the plan; `--dry-run` stops there.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Map, Value};
use stagewire::binding::{self, BindingError, Change};
use stagewire::domain::{BindingSpec, Source};
use stagewire::plan::bind::{self as steps, Step, VarStep};
use stagewire::plan::Release;
use stagewire::ports::Record;
use stagewire::resolve::Resolver;
use stagewire::wait::{HealthWait, Held, WaitError};

use crate::fail::{Failure, EXIT_OK};
use crate::{output, sources, Ctx, StageTarget};

/// Owner stack id of the bindings `bind` makes.
pub const CLI_STACK_ID: &str = "cli";
/// Owner logical id of the bindings `bind` makes; with the API and stage it forms the physical
/// id `stagewire:<kind>:<api>:<stage>:stagewire-cli`.
pub const CLI_LOGICAL_ID: &str = "stagewire-cli";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: StageTarget,
    #[arg(
        long = "var",
        value_name = "NAME=SOURCE",
        required = true,
        value_parser = sources::parse_var,
        help = format!(
            "A stage variable and its source (repeatable); SOURCE: {}",
            stagewire::domain::source::cli_forms()
        )
    )]
    vars: Vec<(String, Value)>,
    /// Make the --var list the binding's whole set: variables bound before and left out are
    /// released (each named)
    #[arg(long)]
    replace: bool,
    /// Take over variables already on the stage that no binding owns
    #[arg(long)]
    adopt: bool,
    /// Print the plan and write nothing (exit 0: nothing to do, 2: changes pending)
    #[arg(long)]
    dry_run: bool,
    /// Fail instead of creating the stage when it does not exist
    #[arg(long)]
    no_create_stage: bool,
    /// Wait at most this long for a new load balancer to have a healthy target
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
    /// Switch at once, without waiting for healthy targets
    #[arg(long, conflicts_with = "timeout")]
    no_wait: bool,
}

/// The long help of `bind`; its list of sources comes from the table of source kinds.
pub fn long_about() -> String {
    format!(
        "Bind stage variables to their sources, for a stage that CloudFormation \
does not manage: resolve every source, create the stage if needed, write the values and \
register them so the re-sync keeps them current.\n\n\
bind adds the variables given and updates those already bound; the binding's other variables \
stay as they are. With --replace the --var list is the binding's whole set: variables bound \
before and left out are released, each named (removed from the stage where they still hold \
the bound value, kept where someone changed them since).\n\n\
Every run prints its plan first, one line per variable: 'NAME: OLD -> NEW', 'added', \
'adopted', 'removed', 'released, value kept', 'unchanged'. With --dry-run it stops there and \
writes nothing (exit 0: nothing to do, 2: changes pending, 1: the bind would be refused).\n\n\
A variable already on the stage that no binding owns is taken over only with --adopt (the \
refusal names it and its value). A variable owned by another binding (a CloudFormation stack) \
is refused.\n\n\
A switch from a load balancer that serves to one without a healthy target waits (progress on \
stderr) for at most --timeout seconds, then fails having written nothing; --no-wait switches \
at once.\n\n\
The binding belongs to owner stack 'cli', logical id 'stagewire-cli'; its physical id is \
stagewire:<rest|http>:<API>:<STAGE>:stagewire-cli.\n\n\
SOURCE is one of:\n{}",
        sources::help()
    )
}

/// The variables given, validated by the library's property rules.
pub fn spec(args: &Args) -> Result<BindingSpec, Failure> {
    let (kind, api_id) = args.target.api.kind_and_id();
    let mut variables = Map::new();
    for (name, source) in &args.vars {
        if variables.insert(name.clone(), source.clone()).is_some() {
            return Err(Failure::Usage(format!("variable {name} is given twice")));
        }
    }
    let id_key = match kind {
        stagewire::domain::ApiKind::Rest => "RestApiId",
        stagewire::domain::ApiKind::Http => "HttpApiId",
    };
    let props = json!({
        id_key: api_id,
        "StageName": args.target.stage,
        "CreateStage": !args.no_create_stage,
        "Variables": variables,
    });
    stagewire::props::parse(&props)
        .map(|p| p.spec)
        .map_err(|e| Failure::Usage(e.to_string()))
}

/// The physical id of the CLI's binding of `stage`.
pub fn physical_id(stage: &stagewire::domain::StageRef) -> String {
    BindingSpec {
        stage: stage.clone(),
        create_stage: false,
        variables: BTreeMap::new(),
    }
    .physical_id(CLI_LOGICAL_ID)
}

/// The records of a stage, split into the CLI binding's own and the owners of the others.
pub async fn records(
    ctx: &Ctx,
    stage: &stagewire::domain::StageRef,
) -> Result<(Vec<Record>, BTreeMap<String, String>), Failure> {
    let id = physical_id(stage);
    let all = ctx
        .ports
        .registry
        .by_stage(stage)
        .await
        .map_err(|e| Failure::caused(format!("could not read the bindings of {stage}"), e))?;
    let (ours, others): (Vec<Record>, Vec<Record>) =
        all.into_iter().partition(|r| r.owner.physical_id == id);
    let others = others
        .into_iter()
        .map(|r| (r.variable, r.owner.to_string()))
        .collect();
    Ok((ours, others))
}

pub fn release_of(r: &Record) -> Release {
    Release {
        variable: r.variable.clone(),
        written: r.value.clone(),
    }
}

pub async fn run(ctx: &Ctx, args: &Args, given: BindingSpec) -> Result<u8, Failure> {
    let stage = given.stage.clone();
    let (ours, others) = records(ctx, &stage).await?;
    let given_names: Vec<String> = given.variables.keys().cloned().collect();
    let mut spec = given;
    if !args.replace {
        for r in &ours {
            spec.variables
                .entry(r.variable.clone())
                .or_insert_with(|| r.source.clone());
        }
    }
    let wanted = resolve(ctx, &spec.variables, &given_names).await?;
    let live = output::read_stage(ctx, &stage).await?;
    if live.is_none() && args.no_create_stage {
        return Err(Failure::refused(format!(
            "{stage} does not exist and --no-create-stage was given: nothing written"
        )));
    }
    let releases: Vec<Release> = ours.iter().map(release_of).collect();
    let plan = steps::bind(live.as_ref(), &wanted, &releases, &others);
    let id = physical_id(&stage);
    let creates = if live.is_none() {
        ", creating the stage"
    } else {
        ""
    };
    println!("bind {stage} (binding {id}){creates}:");
    output::print_steps(&plan);
    let refusals = refusals(&plan, args.adopt, &stage.to_string());
    if args.dry_run {
        for r in &refusals {
            eprintln!("error: {r}");
        }
        return Ok(output::dry_run_end(
            &plan,
            live.is_none(),
            !refusals.is_empty(),
        ));
    }
    if let Some(first) = refusals.into_iter().next() {
        return Err(Failure::refused(first));
    }
    apply(ctx, args, &spec, !ours.is_empty()).await
}

/// Each source's value now, as the write will resolve it. A variable bound before (not in
/// `given`) that cannot be resolved fails the bind too: the hint says how to let it go.
async fn resolve(
    ctx: &Ctx,
    variables: &BTreeMap<String, Source>,
    given: &[String],
) -> Result<BTreeMap<String, String>, Failure> {
    let mut resolver = Resolver::new(&ctx.ports);
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, source) in variables {
        match resolver
            .resolve(&source.clone().settled(&ctx.ports.region))
            .await
        {
            Ok(r) => {
                values.insert(name.clone(), r.value);
            }
            Err(e) => errors.push((name.clone(), e)),
        }
    }
    let kept: Vec<String> = errors
        .iter()
        .filter(|(name, _)| !given.contains(name))
        .map(|(name, _)| name.clone())
        .collect();
    let error = BindingError::Unresolved(errors);
    match (values.len() == variables.len(), kept.is_empty()) {
        (true, _) => Ok(values),
        (false, true) => Err(Failure::from_err(error)),
        (false, false) => Err(Failure::caused(
            format!(
                "{error}. Bound before and left as they are: {}; give them new sources with \
--var, let them go with --replace or `stagewire unbind --var NAME`",
                kept.join(", ")
            ),
            error,
        )),
    }
}

/// Why the plan may not be carried out: a variable of another binding, or one on the stage
/// that no binding owns (without `--adopt`).
fn refusals(plan: &[VarStep], adopt: bool, stage: &str) -> Vec<String> {
    plan.iter()
        .filter_map(|s| match &s.step {
            Step::Owned { owner } => Some(format!(
                "variable {} of {stage} is owned by {owner}: bind does not take variables from other bindings",
                s.variable
            )),
            Step::Adopted { old, .. } if !adopt => Some(format!(
                "variable {} is already on {stage} with value {old:?} and no binding owns it: \
give --adopt to take it over (then unbind removes it)",
                s.variable
            )),
            _ => None,
        })
        .collect()
}

/// The timeout of this run's health wait, for the progress lines.
static WAIT_TIMEOUT: OnceLock<u64> = OnceLock::new();

async fn apply(ctx: &Ctx, args: &Args, spec: &BindingSpec, exists: bool) -> Result<u8, Failure> {
    let wait = if args.no_wait {
        HealthWait::off()
    } else {
        let _ = WAIT_TIMEOUT.set(args.timeout);
        HealthWait::until(tokio::time::Instant::now() + Duration::from_secs(args.timeout))
    };
    // The operator acts on their own authority: no CloudFormation stands behind the request.
    let request = binding::Request {
        stack_id: CLI_STACK_ID,
        logical_id: CLI_LOGICAL_ID,
        spec,
        data_limit: usize::MAX,
        now_ms: stagewire::now_ms(),
        wait,
    };
    let applied = if exists {
        let id = physical_id(&spec.stage);
        binding::update(&ctx.ports, &request, &id, binding::trusted()).await
    } else {
        binding::create(&ctx.ports, &request, binding::trusted()).await
    };
    let applied = applied.map_err(bind_failure)?;
    let what = match applied.change {
        Change::CreatedStage => "created the stage",
        Change::Updated => "written",
        Change::Unchanged => "nothing to write",
    };
    println!("bound {}: {what}", spec.stage);
    if let Some(url) = applied.data.get(binding::INVOKE_URL) {
        println!("invoke URL: {url}");
    }
    Ok(EXIT_OK)
}

fn bind_failure(e: BindingError) -> Failure {
    match e {
        BindingError::Invalid(v) => Failure::Usage(v.to_string()),
        BindingError::NotServing(WaitError::NotServing { held, waited }) => {
            Failure::refused(format!(
                "{} (waited {:.0}s). Nothing was written. Register healthy targets with the new \
load balancer, wait longer with --timeout SECONDS, or switch at once with --no-wait",
                stagewire::wait::describe(&held),
                waited.as_secs_f64()
            ))
        }
        other => Failure::from_err(other),
    }
}

/// Health-wait progress, on stderr: what the wait is for and how long it has run.
pub fn wait_progress(held: &[Held], elapsed: Duration) {
    let timeout = WAIT_TIMEOUT
        .get()
        .map(|t| format!(" of at most {t}s"))
        .unwrap_or_default();
    for h in held.iter().filter(|h| h.on_link) {
        eprintln!(
            "waiting for variable {}: {}; {} serves meanwhile: {}s{timeout}",
            h.variable,
            h.why,
            h.current_lb,
            elapsed.as_secs()
        );
    }
    for h in held.iter().filter(|h| !h.on_link) {
        eprintln!(
            "waiting for load balancer {} (variable {}) to have a healthy target; {} serves meanwhile: {}s{timeout}",
            h.new_lb,
            h.variable,
            h.current_lb,
            elapsed.as_secs()
        );
    }
}
