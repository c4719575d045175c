//! `stagewire status`: every registered variable, live and resolved, as a table or JSON.

use stagewire::status::{self, Filter, Row, State};

use crate::fail::{Failure, EXIT_FAILURE};
use crate::{output, Ctx};

pub const LONG_ABOUT: &str = "Show every registered stage variable: its API (kind:id), stage, \
source, the value on the stage now, what the source resolves to now ('=' when the same), and a \
state:\n  \
in sync         the live value is the resolved value\n  \
drifted         the live value differs (or the variable is absent)\n  \
source missing  the source cannot be resolved (stack, output, service or load balancer gone)\n  \
unhealthy       in sync, but the load balancer has no healthy target\n  \
stage missing   the stage (or its API) does not exist\n  \
not authorized  the binding's stack may no longer touch the API\n  \
failed          the row could not be checked (the note says which call failed and why);\n                  \
the other rows are still shown\n\n\
The table fits 120 columns: sources by name, long values cut with '…', each state's note \
under the table; --wide shows everything in full: sources, owner, the last write, the last \
error, and the note after the state. With --json, \
prints a JSON array of rows; state is one of in_sync, drifted, source_missing, unhealthy, \
stage_missing, unauthorized, failed; note says why; last_write {value, at}, last_error and \
checked_at are what the registry keeps.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array of rows instead of a table
    #[arg(long)]
    json: bool,
    /// Show every column in full (sources, owner, notes, last write, last error)
    #[arg(long, conflicts_with = "json")]
    wide: bool,
    /// Only this API: its id, or kind:id (rest:ID, http:ID)
    #[arg(long, value_name = "ID")]
    api: Option<String>,
    /// Only stages with this name
    #[arg(long, value_name = "NAME")]
    stage: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, Failure> {
    let filter = Filter {
        api: args.api.clone(),
        stage: args.stage.clone(),
    };
    let records = ctx
        .ports
        .registry
        .all()
        .await
        .map_err(|e| Failure::caused("could not read the registry", e))?;
    let registered = records.len();
    let chosen: Vec<_> = records.into_iter().filter(|r| filter.matches(r)).collect();
    let rows = status::rows(&ctx.ports, chosen)
        .await
        .map_err(Failure::from_err)?;
    if args.json {
        let text = serde_json::to_string_pretty(&rows).map_err(Failure::from_err)?;
        println!("{text}");
    } else if registered == 0 {
        println!("no bindings registered");
    } else if rows.is_empty() {
        println!(
            "no binding matches {} ({registered} variable(s) registered)",
            describe(&filter)
        );
    } else {
        print!("{}", table(&rows, args.wide));
    }
    if rows.is_empty() && registered > 0 && args.json {
        eprintln!("no binding matches {}", describe(&filter));
    }
    Ok(exit_code(&rows))
}

/// 1 when a row could not be checked, else 0 (all in sync) or 2.
pub fn exit_code(rows: &[Row]) -> u8 {
    if rows.iter().any(|r| r.state == State::Failed) {
        EXIT_FAILURE
    } else {
        status::exit_code(rows) as u8
    }
}

fn describe(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(api) = &filter.api {
        parts.push(format!("--api {api}"));
    }
    if let Some(stage) = &filter.stage {
        parts.push(format!("--stage {stage}"));
    }
    parts.join(" ")
}

/// Rows as a text table. Without `--wide`: sources by name, values cut to fit, the state alone,
/// and the notes under the table; with it: every column in full, the note after the state.
fn table(rows: &[Row], wide: bool) -> String {
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cells(r, wide)).collect();
    if wide {
        let header = [
            "API",
            "STAGE",
            "VARIABLE",
            "SOURCE",
            "LIVE",
            "RESOLVED",
            "OWNER",
            "WRITTEN",
            "LAST ERROR",
            "STATE",
        ];
        return output::table(&header, &cells, &[], true);
    }
    let header = [
        "API", "STAGE", "VARIABLE", "SOURCE", "LIVE", "RESOLVED", "STATE",
    ];
    let floors = [None, None, None, Some(24), Some(16), Some(16), None];
    let mut out = output::table(&header, &cells, &floors, false);
    let noted: Vec<&Row> = rows.iter().filter(|r| r.note.is_some()).collect();
    if !noted.is_empty() {
        out.push_str("\nnotes:\n");
    }
    for r in noted {
        let first = format!("  {} {} {}:", r.api, r.stage, r.variable);
        let note = format!("{}: {}", r.state, r.note.clone().unwrap_or_else(dash));
        out.push_str(&output::wrap(&first, &note));
    }
    out
}

fn cells(r: &Row, wide: bool) -> Vec<String> {
    let dash = || "-".to_string();
    let resolved = match &r.resolved {
        Some(v) if !wide && r.live.as_ref() == Some(v) => "=".to_string(),
        Some(v) => v.clone(),
        None => dash(),
    };
    let source = if wide {
        r.source.clone()
    } else {
        output::short_source(&r.source_spec)
    };
    let mut row = vec![
        r.api.clone(),
        r.stage.clone(),
        r.variable.clone(),
        source,
        r.live.clone().unwrap_or_else(dash),
        resolved,
    ];
    if !wide {
        row.push(r.state.to_string());
        return row;
    }
    let written = r.last_write.as_ref().and_then(|l| l.at.clone());
    row.push(r.owner.clone());
    row.push(written.unwrap_or_else(dash));
    row.push(r.last_error.clone().unwrap_or_else(dash));
    row.push(match &r.note {
        Some(note) => format!("{}: {note}", r.state),
        None => r.state.to_string(),
    });
    row
}
