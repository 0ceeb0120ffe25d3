//! `kici-admin environment create|update|list|show|delete`: environments, the secret and
//! variable scopes they bind, and their protection rules (`/api/v1/admin/environments`).

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::table;
use kici_engine::api::secrets::{EnvironmentChange, EnvironmentList};
use kici_engine::protection::{ApproverClause, Environment};

const ENVIRONMENTS: [&str; 4] = ["api", "v1", "admin", "environments"];

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// Create an environment (it binds the scope of its own name unless --scope is given)
    Create(CreateArgs),
    /// Change an environment's rules; only what is given changes
    Update(UpdateArgs),
    /// List environments
    List {
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one environment
    Show {
        name: String,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete an environment
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct Rules {
    /// Scope glob whose secrets and variables jobs receive (repeatable), e.g. `production/**`
    #[arg(long = "scope", value_name = "GLOB")]
    scopes: Vec<String>,
    /// Branch glob jobs must run on (repeatable; `!` excludes), e.g. `main`
    #[arg(long = "branch", value_name = "GLOB")]
    branches: Vec<String>,
    /// Required reviewer, `user:<name>` or `team:<name>` (repeatable; every one must approve)
    #[arg(long = "reviewer", value_name = "CLAUSE", value_parser = ApproverClause::parse)]
    reviewers: Vec<ApproverClause>,
    /// Seconds a job waits before it is queued
    #[arg(long, value_name = "SECONDS")]
    wait_timer: Option<u64>,
    /// Seconds a hold waits for approval before the job fails (default 3600)
    #[arg(long, value_name = "SECONDS")]
    hold_expiry: Option<u64>,
    #[arg(long)]
    description: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    name: String,
    #[command(flatten)]
    rules: Rules,
    /// Create it disabled: its jobs are rejected
    #[arg(long)]
    disabled: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    name: String,
    #[command(flatten)]
    rules: Rules,
    /// Reject this environment's jobs
    #[arg(long, conflicts_with = "enable")]
    disable: bool,
    /// Accept this environment's jobs again
    #[arg(long)]
    enable: bool,
    /// Allow every branch again
    #[arg(long, conflicts_with = "branches")]
    clear_branches: bool,
    /// Require no reviewers any more
    #[arg(long, conflicts_with = "reviewers")]
    clear_reviewers: bool,
}

fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

impl Rules {
    fn change(self, name: Option<String>, disabled: Option<bool>) -> EnvironmentChange {
        EnvironmentChange {
            name,
            description: self.description,
            disabled,
            scopes: non_empty(self.scopes),
            branches: non_empty(self.branches),
            reviewers: non_empty(self.reviewers),
            wait_timer_seconds: self.wait_timer,
            hold_expiry_seconds: self.hold_expiry,
        }
    }
}

pub async fn run(client: &ApiClient, command: EnvironmentCommand) -> anyhow::Result<()> {
    match command {
        EnvironmentCommand::Create(args) => {
            let change = args.rules.change(Some(args.name), args.disabled.then_some(true));
            let created: Environment = client.post(&ENVIRONMENTS, &change).await?;
            println!("Environment {} created.", created.name);
            print!("{}", render(&created));
        }
        EnvironmentCommand::Update(args) => {
            let disabled = match (args.disable, args.enable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let mut change = args.rules.change(None, disabled);
            if args.clear_branches {
                change.branches = Some(Vec::new());
            }
            if args.clear_reviewers {
                change.reviewers = Some(Vec::new());
            }
            let updated: Environment = client
                .patch(&[&ENVIRONMENTS[..], &[&args.name]].concat(), &change)
                .await?;
            println!("Environment {} updated.", updated.name);
            print!("{}", render(&updated));
        }
        EnvironmentCommand::List { json } => {
            let list: EnvironmentList = client.get(&ENVIRONMENTS, &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.environments.is_empty() {
                println!(
                    "No environments. Create one with `kici-admin environment create production --reviewer user:<name>`."
                );
            } else {
                print!("{}", render_list(&list));
            }
        }
        EnvironmentCommand::Show { name, json } => {
            let environment: Environment = client.get(&[&ENVIRONMENTS[..], &[&name]].concat(), &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&environment)?);
            } else {
                print!("{}", render(&environment));
            }
        }
        EnvironmentCommand::Delete { name } => {
            client.delete(&[&ENVIRONMENTS[..], &[&name]].concat()).await?;
            println!("Environment {name} deleted.");
        }
    }
    Ok(())
}

fn joined<T: ToString>(items: &[T], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn render(environment: &Environment) -> String {
    let mut out = format!("Name:         {}\n", environment.name);
    if let Some(description) = &environment.description {
        out.push_str(&format!("Description:  {description}\n"));
    }
    out.push_str(&format!(
        "Status:       {}\nScopes:       {}\nBranches:     {}\nReviewers:    {}\nWait timer:   {}s\nHold expiry:  {}s\n",
        if environment.disabled { "disabled" } else { "enabled" },
        joined(&environment.scopes, "(none)"),
        joined(&environment.branches, "(any)"),
        joined(&environment.reviewers, "(none)"),
        environment.wait_timer_seconds,
        environment.hold_expiry_seconds,
    ));
    out
}

fn render_list(list: &EnvironmentList) -> String {
    let rows: Vec<Vec<String>> = list
        .environments
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                if e.disabled { "disabled" } else { "enabled" }.to_string(),
                joined(&e.scopes, "-"),
                joined(&e.branches, "(any)"),
                joined(&e.reviewers, "-"),
                format!("{}s", e.wait_timer_seconds),
            ]
        })
        .collect();
    table::render(
        "",
        &["NAME", "STATUS", "SCOPES", "BRANCHES", "REVIEWERS", "WAIT"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_reads_as_its_rules() {
        let environment = Environment {
            name: "production".into(),
            description: None,
            disabled: false,
            scopes: vec!["production/**".into()],
            branches: vec!["main".into()],
            reviewers: vec![ApproverClause::User("alice".into()), ApproverClause::Team("ops".into())],
            wait_timer_seconds: 2,
            hold_expiry_seconds: 3600,
        };
        assert_eq!(
            render(&environment),
            "Name:         production\nStatus:       enabled\nScopes:       production/**\nBranches:     main\nReviewers:    user:alice, team:ops\nWait timer:   2s\nHold expiry:  3600s\n"
        );
    }
}
