//! `kici-admin`, the operator's CLI. It talks to the orchestrator's HTTP API only
//! (`docs/api.md`): runs and their jobs, admin tokens, agent tokens and agents, webhook sources
//! (plus the local-repository helpers `trigger-local` and `install-hook`), `rotate-key` (the
//! secret key), scoped secrets, variables, environments and their audit log, and the operations tooling of the troubleshooting page: `diagnose`,
//! `diagnose drift`, `explain`, `debug-bundle` and the offline `inspect-bundle`. Only `db`
//! (status, migrations, backup, restore) opens the database itself, and `orchestrator …` and
//! `agent install|start|…` drive systemd on this host (`service`).
//!
//! Exit codes: [`EXIT_OK`] 0 on success, [`EXIT_ERROR`] 1 on any error (printed as
//! `Error: <message>`, command-line usage errors included). `diagnose` has its own: 0 all checks
//! pass, 1 a check warns, 2 a check fails or the diagnostics cannot be read
//! ([`diagnose::EXIT_FAIL`]); `diagnose drift` exits 1 on drift and 2 when it cannot compare;
//! `db status` exits 2 when the schema is not this build's ([`db::EXIT_SCHEMA_DIFFERS`]).

mod agents;
mod bundle;
mod cluster;
mod config;
mod db;
mod diagnose;
mod drift;
mod environments;
mod events;
mod explain;
mod rotate_key;
mod runs;
mod schedules;
mod secrets;
mod service;
mod since;
mod sources;
mod tokens;
mod users;

use std::process::ExitCode;

use clap::{Parser as _, Subcommand};
use kici_client::client::ApiClient;

/// The command did what was asked.
const EXIT_OK: u8 = 0;
/// Something failed: a missing token, an unreachable orchestrator, an API error, bad input.
const EXIT_ERROR: u8 = 1;

#[derive(Debug, clap::Parser)]
#[command(name = "kici-admin", version, about = "KiCI operator CLI", propagate_version = true)]
struct Cli {
    /// The orchestrator's base URL
    #[arg(
        short = 'u',
        long,
        env = "KICI_ADMIN_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    url: String,
    /// An admin token (`$KICI_DATA_DIR/admin-token` after the first start, also shown on a terminal as `KICI Admin Token:`)
    #[arg(short = 't', long, env = "KICI_ADMIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Execution runs, their jobs and steps
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Admin tokens for this API
    Token {
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
    /// Agent tokens and connected agents
    Agent {
        #[command(subcommand)]
        command: agents::AgentCommand,
    },
    /// The orchestrator as a systemd service on this host (no --url or token needed)
    Orchestrator {
        #[command(subcommand)]
        command: service::ServiceCommand,
    },
    /// The orchestrators sharing the database: which one leads
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Custom events for kiciEvent() triggers
    Event {
        #[command(subcommand)]
        command: events::EventCommand,
    },
    /// Internal events whose every delivery attempt failed (the dead-letter list)
    #[command(name = "event-dlq")]
    EventDlq {
        #[command(subcommand)]
        command: events::DlqCommand,
    },
    /// Schedules registered from the default branches' lock files
    Schedules {
        #[command(subcommand)]
        command: schedules::ScheduleCommand,
    },
    /// Webhook sources and local repositories
    Source {
        #[command(subcommand)]
        command: sources::SourceCommand,
    },
    /// Dashboard users (against the Platform's URL and admin token)
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// The orchestrator's configuration (reload the scalers without a restart)
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Scoped secrets for jobs (values from stdin or a file, never the command line)
    Secret {
        #[command(subcommand)]
        command: secrets::SecretCommand,
    },
    /// Plain variables for jobs
    Variable {
        #[command(subcommand)]
        command: secrets::VariableCommand,
    },
    /// Environments: the scopes they bind and their protection rules
    Environment {
        #[command(subcommand)]
        command: environments::EnvironmentCommand,
    },
    /// The audit log of secrets, variables, environments and approvals
    Audit(secrets::AuditArgs),
    /// Re-encrypt every stored secret under the orchestrator's current KICI_SECRET_KEY (owner token)
    RotateKey,
    /// The database directly (no orchestrator or token): status, migrate, backup, restore
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Run the orchestrator's self-checks (exit 0 pass, 1 warn, 2 fail); `diagnose drift` compares SDK builds
    Diagnose(diagnose::DiagnoseArgs),
    /// Explain why a run failed: reason, failed step and its log tail, provisioning output, drift
    Explain(explain::ExplainArgs),
    /// Write a ZIP of diagnostics, redacted config, system info, metrics, recent runs and logs
    DebugBundle(bundle::BundleArgs),
    /// Summarize a debug bundle offline
    InspectBundle(bundle::inspect::InspectArgs),
}

impl Command {
    /// The exit code when the command fails with an error.
    fn error_exit_code(&self) -> u8 {
        match self {
            Command::Diagnose(_) => diagnose::EXIT_FAIL,
            _ => EXIT_ERROR,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let error_exit_code = cli.command.error_exit_code();
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(error_exit_code)
        }
    }
}

/// `--help` and `--version` print and exit 0; a usage error is an error like any other: `Error: …`
/// on stderr and [`EXIT_ERROR`].
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;

    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // Printing help can only fail on a closed stdout, and then there is no one to tell.
        let _ = err.print();
        return ExitCode::from(EXIT_OK);
    }
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        return ExitCode::from(EXIT_ERROR);
    }
    let text = err.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("Error: {text}");
    ExitCode::from(EXIT_ERROR)
}

/// Runs the command and returns its exit code.
async fn run(cli: Cli) -> anyhow::Result<u8> {
    let given_token = cli.token.filter(|token| !token.trim().is_empty());
    // Without --url: offline, or the services of this host, which find their own orchestrator.
    let command = match cli.command {
        Command::InspectBundle(args) => {
            bundle::inspect::run(args)?;
            return Ok(EXIT_OK);
        }
        Command::Db { command } => return db::run(command).await,
        Command::Orchestrator { command } => {
            return service::run(service::unit::Kind::Orchestrator, command, given_token).await;
        }
        Command::Agent {
            command: agents::AgentCommand::Service(command),
        } => return service::run(service::unit::Kind::Agent, command, given_token).await,
        command => command,
    };
    // The post-receive hook authenticates with the source's trigger token, read from a file.
    let token_file = match &command {
        Command::Source {
            command: sources::SourceCommand::TriggerLocal(args),
        } => args.token_file.as_deref(),
        _ => None,
    };
    let token = match token_file {
        Some(path) => Some(sources::read_token_file(path)?),
        None => given_token,
    };
    let Some(token) = token else {
        anyhow::bail!("--token or KICI_ADMIN_TOKEN is required");
    };
    let client = ApiClient::new(&cli.url, Some(token.clone()), "KICI_ADMIN_URL")?;
    match command {
        Command::Runs { command } => runs::run(&client, command).await?,
        Command::Token { command } => tokens::run(&client, command).await?,
        Command::Agent { command } => agents::run(&client, command).await?,
        Command::Cluster { command } => cluster::run(&client, command).await?,
        Command::Schedules { command } => schedules::run(&client, command).await?,
        Command::Event { command } => events::emit(&client, command).await?,
        Command::EventDlq { command } => events::dlq(&client, command).await?,
        Command::Config { command } => config::run(&client, command).await?,
        Command::User { command } => users::run(&client, command).await?,
        Command::Secret { command } => secrets::run_secret(&client, command).await?,
        Command::Variable { command } => secrets::run_variable(&client, command).await?,
        Command::Environment { command } => environments::run(&client, command).await?,
        Command::Audit(args) => secrets::run_audit(&client, args).await?,
        Command::RotateKey => rotate_key::run(&client).await?,
        Command::Source { command } => {
            let globals = sources::Globals { url: client.base_url() };
            sources::run(&client, &globals, command).await?;
        }
        Command::Diagnose(args) => return diagnose::run(&client, args).await,
        Command::Explain(args) => explain::run(&client, args).await?,
        Command::DebugBundle(args) => {
            // The secrets to keep out of the bundle: secret-named KICI_* variables and the token.
            let mask = bundle::SecretMask::new(std::env::vars(), &[&token]);
            bundle::run(&client, args, mask).await?;
        }
        Command::InspectBundle(_) | Command::Db { .. } | Command::Orchestrator { .. } => {
            unreachable!("offline commands are handled above")
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
