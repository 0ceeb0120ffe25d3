//! `kici-admin`, the operator's CLI. It talks to the orchestrator's HTTP API only
//! (`docs/api.md`): runs and their jobs, admin tokens, agent tokens and agents, webhook sources
//! (plus the local-repository helpers `trigger-local` and `install-hook`). It reads no database.
//!
//! Exit codes: [`EXIT_OK`] 0 on success, [`EXIT_ERROR`] 1 on any error (printed as
//! `Error: <message>`, command-line usage errors included).

mod agents;
mod client;
mod format;
mod runs;
mod since;
mod sources;
mod table;
mod tokens;

use std::process::ExitCode;

use clap::{Parser as _, Subcommand};

use crate::client::ApiClient;

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
    /// An admin token (see `KICI Admin Token:` in the orchestrator's first log, or `$KICI_DATA_DIR/admin-token`)
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
    /// Webhook sources and local repositories
    Source {
        #[command(subcommand)]
        command: sources::SourceCommand,
    },
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(EXIT_ERROR)
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(token) = cli.token.filter(|token| !token.trim().is_empty()) else {
        anyhow::bail!("--token or KICI_ADMIN_TOKEN is required");
    };
    let client = ApiClient::new(&cli.url, Some(token.clone()))?;
    match cli.command {
        Command::Runs { command } => runs::run(&client, command).await,
        Command::Token { command } => tokens::run(&client, command).await,
        Command::Agent { command } => agents::run(&client, command).await,
        Command::Source { command } => {
            let globals = sources::Globals {
                url: client.base_url(),
                token: &token,
            };
            sources::run(&client, &globals, command).await
        }
    }
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
