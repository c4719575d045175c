//! `stagewire`: the operator CLI. `status` shows every registered stage variable next to its
//! live and resolved values, `sync` reconciles now, and `bind` / `unbind` manage bindings of
//! stages that CloudFormation does not manage. Every command that writes has a `--dry-run` that
//! prints the plan the write would carry out.
//!
//! One file per command; this one parses, checks the settings and dispatches.

mod bind;
mod fail;
mod output;
mod setup;
mod sources;
mod status;
mod sync;
mod unbind;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use stagewire::domain::{Authorization, StageRef};
use stagewire::Ports;

use fail::Failure;

const EXIT_CODES: &str = "\
Exit status:
  0   done, or nothing to do; status: every variable is in sync
  1   a failure while running (AWS call, registry, credentials), a status row that could not
      be checked, or a change refused (a variable another binding owns; a variable already
      on the stage, without --adopt)
  2   status / sync: at least one variable needs attention (drifted, source missing,
      unhealthy, stage missing; sync: left unresolved, deferred);
      --dry-run (bind, unbind, sync): changes are pending; nothing was written
  64  bad arguments or settings (unknown command or option, bad --var, no registry table,
      no region, an AWS profile that does not exist, values API Gateway would refuse)

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
pub struct Global {
    /// The stagewire registry table [default: $STAGEWIRE_TABLE]
    #[arg(long, global = true, value_name = "NAME")]
    table: Option<String>,
    /// AWS profile to use (as AWS_PROFILE)
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// AWS region to use (as AWS_REGION)
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// On failure, print the whole chain of causes
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show every registered stage variable: live value, resolved value and state
    #[command(long_about = status::LONG_ABOUT, after_help = EXIT_CODES)]
    Status(status::Args),
    /// Reconcile now: write every variable whose source moved (or plan it with --dry-run)
    #[command(long_about = sync::LONG_ABOUT, after_help = EXIT_CODES)]
    Sync(sync::Args),
    /// Bind variables of a stage that CloudFormation does not manage (adds or updates)
    #[command(long_about = bind::long_about(), after_help = EXIT_CODES)]
    Bind(bind::Args),
    /// Remove a binding made by `bind`, or some of its variables, or only forget it
    #[command(long_about = unbind::LONG_ABOUT, after_help = EXIT_CODES)]
    Unbind(unbind::Args),
}

/// What every command runs with.
pub struct Ctx {
    pub ports: Ports,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ApiTarget {
    /// The REST API (API Gateway v1)
    #[arg(long, value_name = "ID")]
    rest_api_id: Option<String>,
    /// The HTTP API (API Gateway v2)
    #[arg(long, value_name = "ID")]
    http_api_id: Option<String>,
}

impl ApiTarget {
    pub fn kind_and_id(&self) -> (stagewire::domain::ApiKind, &str) {
        use stagewire::domain::ApiKind;
        match (&self.rest_api_id, &self.http_api_id) {
            (Some(id), _) => (ApiKind::Rest, id),
            (None, Some(id)) => (ApiKind::Http, id),
            (None, None) => unreachable!("clap requires one of --rest-api-id and --http-api-id"),
        }
    }
}

/// The stage a command works on.
#[derive(Debug, Args)]
pub struct StageTarget {
    #[command(flatten)]
    pub api: ApiTarget,
    /// The stage
    #[arg(long, value_name = "NAME")]
    pub stage: String,
}

impl StageTarget {
    pub fn stage_ref(&self) -> StageRef {
        let (kind, id) = self.api.kind_and_id();
        StageRef::new(kind, id, &self.stage)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { fail::EXIT_USAGE } else { 0 });
        }
    };
    // The CLI reports health waits on stderr; the function's metric line has no place here.
    stagewire::wait::report_to(stagewire::wait::Reporting {
        metrics: false,
        progress: Some(bind::wait_progress),
    });
    let verbose = cli.global.verbose;
    let mut place = None;
    match run(cli, &mut place).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let context = place.as_ref().map(setup::Place::describe);
            eprint!("{}", failure.report(context.as_deref(), verbose));
            ExitCode::from(failure.code())
        }
    }
}

async fn run(cli: Cli, place: &mut Option<setup::Place>) -> Result<u8, Failure> {
    let table = setup::table(&cli.global)?;
    // Input that can be checked without AWS is checked before loading credentials.
    let bind_spec = match &cli.command {
        Command::Bind(args) => Some(bind::spec(args)?),
        Command::Unbind(args) => {
            unbind::check(args)?;
            None
        }
        _ => None,
    };
    let sdk = setup::load_sdk(&cli.global).await?;
    let where_ = place.insert(setup::place(&sdk, &table));
    setup::check_table(&sdk, where_).await?;
    let mut ports = Ports::aws(&sdk, &table).map_err(|e| Failure::Usage(e.to_string()))?;
    ports.sources = stagewire::config::source_access_from_env();
    // `bind` and `unbind` act with the operator's own credentials: what IAM lets them do to API
    // Gateway is the rule. `status` and `sync` show and do what the re-sync would, under the
    // functions' rule (STAGEWIRE_BINDING_AUTHORIZATION, ApiTags by default, as in the template).
    ports.authorization = match cli.command {
        Command::Bind(_) | Command::Unbind(_) => Authorization::Open,
        _ => stagewire::config::authorization_from_env()
            .map_err(|e| Failure::Usage(e.to_string()))?,
    };
    let ctx = Ctx { ports };
    match cli.command {
        Command::Status(args) => status::run(&ctx, &args).await,
        Command::Sync(args) => sync::run(&ctx, &args).await,
        Command::Bind(args) => bind::run(&ctx, &args, bind_spec.expect("checked above")).await,
        Command::Unbind(args) => unbind::run(&ctx, &args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
