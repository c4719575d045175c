//! `stagewire sync`: reconcile now, as the re-sync function does, or print its plan.

use serde_json::json;
use stagewire::ports::Record;
use stagewire::resync::{self, IssueKind, Summary, Trigger};
use stagewire::status::{self, LastWrite, PlannedChange, Row, State};

use crate::fail::{Failure, EXIT_FAILURE, EXIT_OK, EXIT_PENDING};
use crate::Ctx;

pub const LONG_ABOUT: &str = "Reconcile now, as the stage-resync function does: resolve each \
source, read each stage once and write only what differs. A source that cannot be resolved \
keeps its value; a switch to a load balancer without a healthy target waits while the current \
one exists. Bindings whose owning stack is DELETE_COMPLETE, ROLLBACK_COMPLETE or gone are \
released: their variables removed where they still hold what was written, the stages they \
created deleted once empty.\n\n\
With --dry-run, prints the changes a reconcile would make (variable: from -> to) and the \
bindings it would release, and writes nothing (exit 0: nothing to do, 2: changes or releases \
pending, 1: something could not be checked). With --dry-run --json, prints one JSON object: \
scope, changes, releases, failures and rows (each with the registry's last_write {value, at}, \
last_error and checked_at).";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the changes a reconcile would make, without writing anything
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print the plan as one JSON object
    #[arg(long, requires = "dry_run")]
    json: bool,
    /// Only the bindings whose source is an output of this stack (by ARN: a member account's
    /// stack in its account and region)
    #[arg(long, value_name = "NAME|ARN")]
    stack: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, Failure> {
    let (trigger, origin, scope) = match &args.stack {
        Some(stack) => (
            Trigger::Stack(stack.clone()),
            resync::Origin::of_stack(stack),
            format!("bindings to outputs of stack {stack}"),
        ),
        None => (
            Trigger::Everything,
            resync::Origin::default(),
            "every binding".to_string(),
        ),
    };
    if args.dry_run {
        return dry_run(ctx, args, &trigger, &origin, scope).await;
    }
    let summary = resync::run(&ctx.ports, &trigger, &origin).await;
    print_summary(&scope, &summary);
    Ok(if !summary.failures().is_empty() {
        EXIT_FAILURE
    } else if summary.issues.is_empty() {
        EXIT_OK
    } else {
        EXIT_PENDING
    })
}

/// What a reconcile would do, and nothing written.
struct Plan {
    scope: String,
    rows: Vec<Row>,
    changes: Vec<PlannedChange>,
    ended: Vec<Record>,
    failures: Vec<String>,
}

impl Plan {
    fn exit_code(&self) -> u8 {
        if !self.failures.is_empty() || self.rows.iter().any(|r| r.state == State::Failed) {
            EXIT_FAILURE
        } else if !self.ended.is_empty() {
            EXIT_PENDING
        } else {
            status::exit_code(&self.rows) as u8
        }
    }
}

async fn dry_run(
    ctx: &Ctx,
    args: &Args,
    trigger: &Trigger,
    origin: &resync::Origin,
    scope: String,
) -> Result<u8, Failure> {
    let mut asked = Summary::new(scope.clone());
    let sorted = resync::sort(&ctx.ports, trigger, origin, &mut asked)
        .await
        .map_err(|e| Failure::caused("could not find the bindings to reconcile", e))?;
    let rows = status::rows(&ctx.ports, sorted.live)
        .await
        .map_err(Failure::from_err)?;
    let plan = Plan {
        scope,
        changes: status::plan(&rows),
        rows,
        ended: sorted.ended,
        failures: asked.failures().iter().map(|i| i.to_string()).collect(),
    };
    if args.json {
        print_json(&plan)?;
    } else {
        print_plan(&plan);
    }
    Ok(plan.exit_code())
}

fn print_json(plan: &Plan) -> Result<(), Failure> {
    let releases: Vec<_> = plan
        .ended
        .iter()
        .map(|r| {
            json!({
                "api": format!("{}:{}", r.stage.kind.as_str(), r.stage.api_id),
                "stage": r.stage.stage,
                "variable": r.variable,
                "owner": r.owner.to_string(),
                "last_write": LastWrite::of_record(r),
                "last_error": r.last_error,
            })
        })
        .collect();
    let doc = json!({
        "scope": plan.scope,
        "checked": plan.rows.len() + plan.ended.len(),
        "changes": plan.changes,
        "releases": releases,
        "failures": plan.failures,
        "rows": plan.rows,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(Failure::from_err)?;
    println!("{text}");
    Ok(())
}

fn print_plan(plan: &Plan) {
    println!(
        "dry run over {}: {} checked",
        plan.scope,
        plan.rows.len() + plan.ended.len()
    );
    print_releases(&plan.ended);
    for issue in &plan.failures {
        println!("failed: {issue}");
    }
    for c in &plan.changes {
        let verb = if c.deferred.is_some() {
            "would defer"
        } else {
            "would change"
        };
        let why = c
            .deferred
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let from = c.from.as_deref().unwrap_or("(absent)");
        println!(
            "{verb} {} stage {} variable {}: {from} -> {}{why}",
            c.api, c.stage, c.variable, c.to
        );
    }
    for r in plan
        .rows
        .iter()
        .filter(|r| !matches!(r.state, State::InSync | State::Drifted))
    {
        let what = match r.state {
            State::SourceMissing => "value kept",
            State::StageMissing => "nothing to write",
            State::Failed => "not checked",
            _ => "no change",
        };
        let note = r
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!(
            "{} {} stage {} variable {}: {what}{note}",
            r.state, r.api, r.stage, r.variable
        );
    }
    println!(
        "{} change(s) and {} release(s) planned, nothing written",
        plan.changes.len(),
        plan.ended.len()
    );
}

fn print_releases(ended: &[Record]) {
    for r in ended {
        println!(
            "would release {} variable {} of {} {}: its stack ended (the variable goes where it still holds {})",
            r.stage,
            r.variable,
            r.owner.stack_id,
            r.owner.logical_id,
            r.value.as_deref().unwrap_or("(nothing written)")
        );
    }
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
