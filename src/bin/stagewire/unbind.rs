//! `stagewire unbind`: remove a CLI binding, or some of its variables (`--var`), or only forget
//! it and leave the stage as it is (`--keep-values`), after printing the plan.

use stagewire::binding;
use stagewire::domain::validate_stage_name;
use stagewire::plan::bind as steps;
use stagewire::plan::{count_after, patch, Release};
use stagewire::ports::Record;

use crate::bind::{physical_id, records, release_of};
use crate::fail::{Failure, EXIT_OK};
use crate::{output, Ctx, StageTarget};

pub const LONG_ABOUT: &str = "Remove the binding `bind` made on a stage: delete the variables \
it owns that still hold the value it wrote (a variable someone changed since is left as it is), \
delete the stage if bind created it and nothing else lives there, and forget the binding. \
Every variable is named with what happens to it. Bindings of CloudFormation stacks are not \
touched. Unbinding a stage with no CLI binding succeeds.\n\n\
--var NAME (repeatable) removes only those variables (and their records); a name the CLI \
binding does not hold is refused.\n\
--keep-values forgets the binding (or the --var variables) in the registry and leaves the \
stage as it is: the re-sync stops updating those variables.\n\
--dry-run prints the plan and writes nothing (exit 0: nothing to do, 2: changes pending).";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: StageTarget,
    /// Only this variable of the binding (repeatable)
    #[arg(long = "var", value_name = "NAME")]
    vars: Vec<String>,
    /// Forget the binding in the registry and leave the stage's variables as they are
    #[arg(long)]
    keep_values: bool,
    /// Print the plan and write nothing (exit 0: nothing to do, 2: changes pending)
    #[arg(long)]
    dry_run: bool,
}

/// Input checked before any AWS call.
pub fn check(args: &Args) -> Result<(), Failure> {
    validate_stage_name(args.target.api.kind_and_id().0, &args.target.stage)
        .map_err(|e| Failure::Usage(e.to_string()))
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, Failure> {
    let stage = args.target.stage_ref();
    let (ours, others) = records(ctx, &stage).await?;
    let chosen = choose(&ours, &others, &args.vars, &stage.to_string())?;
    if chosen.is_empty() {
        println!("no binding made by stagewire bind on {stage}: nothing to do");
        return Ok(EXIT_OK);
    }
    let live = output::read_stage(ctx, &stage).await?;
    let releases: Vec<Release> = chosen.iter().map(release_of).collect();
    let plan = steps::unbind(live.as_ref(), &releases, args.keep_values);
    // The stage goes when bind created it, nothing is left on it, and no other record remains.
    let deletes_stage = !args.keep_values
        && chosen.len() == ours.len()
        && others.is_empty()
        && ours.iter().any(|r| r.created_stage)
        && live
            .as_ref()
            .is_some_and(|l| count_after(l, &patch(l, &Default::default(), &releases)) == 0);
    println!("unbind {stage} (binding {}):", physical_id(&stage));
    output::print_steps(&plan);
    if deletes_stage {
        println!("  the stage is deleted (bind created it and nothing else lives there)");
    }
    if args.dry_run {
        return Ok(output::dry_run_end(&plan, deletes_stage, false));
    }
    let done = if args.keep_values {
        let n = ctx
            .ports
            .registry
            .release(&chosen)
            .await
            .map_err(|e| Failure::caused("could not forget the binding", e))?;
        binding::Deleted {
            records_released: n,
            ..Default::default()
        }
    } else {
        binding::remove(&ctx.ports, &chosen)
            .await
            .map_err(Failure::from_err)?
    };
    println!(
        "unbound {stage}: {} variable(s) removed, {} stage(s) deleted, {} registration(s) released",
        done.variables_removed, done.stages_deleted, done.records_released
    );
    Ok(EXIT_OK)
}

/// The records to let go of: every one of the binding's, or those `--var` names (each must be
/// the binding's).
fn choose(
    ours: &[Record],
    others: &std::collections::BTreeMap<String, String>,
    names: &[String],
    stage: &str,
) -> Result<Vec<Record>, Failure> {
    if names.is_empty() {
        return Ok(ours.to_vec());
    }
    let mut chosen = Vec::new();
    for name in names {
        match ours.iter().find(|r| &r.variable == name) {
            Some(r) => chosen.push(r.clone()),
            None => {
                let why = match others.get(name) {
                    Some(owner) => format!("it is owned by {owner}"),
                    None => "the binding made by stagewire bind does not hold it".to_string(),
                };
                return Err(Failure::refused(format!(
                    "variable {name} of {stage}: {why}; nothing written"
                )));
            }
        }
    }
    Ok(chosen)
}
