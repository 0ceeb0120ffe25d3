//! `kici-admin secret …`, `variable …` and `audit`: scoped secrets (values read from stdin, a
//! file or an environment variable, never from the command line, and shown only with
//! `get --reveal`), plain variables, and the audit log of every change to them
//! (`/api/v1/admin/{secrets,variables,audit}`).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::secrets::{AuditList, RevealedSecret, SecretList, ValueSet, VariableList};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret; the value comes from stdin (default), --from-file or --from-env
    Set(SetSecretArgs),
    /// Show a secret's metadata, or its value with --reveal (audited)
    Get(GetSecretArgs),
    /// List secrets (names, never values)
    List(ListArgs),
    /// Delete a secret
    Delete(SecretRef),
}

#[derive(Debug, Args)]
pub struct SecretRef {
    /// The scope, e.g. `production` or `production/db`
    scope: String,
    /// The key, e.g. `DEPLOY_KEY`
    key: String,
}

#[derive(Debug, Args)]
pub struct SetSecretArgs {
    #[command(flatten)]
    target: SecretRef,
    /// Read the value from this file
    #[arg(long, value_name = "PATH", conflicts_with_all = ["from_env", "from_stdin"])]
    from_file: Option<PathBuf>,
    /// Read the value from this environment variable
    #[arg(long, value_name = "VAR", conflicts_with = "from_stdin")]
    from_env: Option<String>,
    /// Read the value from stdin (the default)
    #[arg(long)]
    from_stdin: bool,
    /// Keep a trailing line break (by default one is removed, as `echo` adds it)
    #[arg(long)]
    no_trim: bool,
}

#[derive(Debug, Args)]
pub struct GetSecretArgs {
    #[command(flatten)]
    target: SecretRef,
    /// Print the value (recorded in the audit log)
    #[arg(long)]
    reveal: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this scope
    #[arg(long)]
    scope: Option<String>,
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum VariableCommand {
    /// Set a plain (not secret) variable
    Set { scope: String, name: String, value: String },
    /// Print a variable's value
    Get { scope: String, name: String },
    /// List variables with their values
    List(ListArgs),
    /// Delete a variable
    Delete { scope: String, name: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this action (e.g. `secret.reveal`, `environment.update`, `hold.approve`)
    #[arg(long)]
    action: Option<String>,
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

const SECRETS: [&str; 4] = ["api", "v1", "admin", "secrets"];
const VARIABLES: [&str; 4] = ["api", "v1", "admin", "variables"];

/// The value to set, from where the arguments say; never from the command line itself.
fn read_value(args: &SetSecretArgs) -> anyhow::Result<String> {
    let raw = if let Some(path) = &args.from_file {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret value from {}", path.display()))?
    } else if let Some(variable) = &args.from_env {
        std::env::var(variable).with_context(|| format!("environment variable {variable} is not set"))?
    } else {
        if std::io::stdin().is_terminal() {
            eprintln!("Reading the value of {} from stdin; end with Ctrl-D.", args.target.key);
        }
        std::io::read_to_string(std::io::stdin()).context("cannot read the secret value from stdin")?
    };
    let value = if args.no_trim {
        raw
    } else {
        let trimmed = raw.strip_suffix('\n').unwrap_or(&raw);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
    };
    if value.is_empty() {
        bail!(
            "the value of {} is empty (hint: pipe it in, e.g. `printf %s \"$TOKEN\" | kici-admin secret set {} {}`)",
            args.target.key,
            args.target.scope,
            args.target.key
        );
    }
    Ok(value)
}

pub async fn run_secret(client: &ApiClient, command: SecretCommand) -> anyhow::Result<()> {
    match command {
        SecretCommand::Set(args) => {
            let value = read_value(&args)?;
            let body = json!({"scope": args.target.scope, "key": args.target.key, "value": value});
            let set: ValueSet = client.put(&SECRETS, &body).await?;
            let verb = if set.created { "created" } else { "updated" };
            println!("Secret {} in scope {} {verb}.", set.key, set.scope);
        }
        SecretCommand::Get(args) => {
            let SecretRef { scope, key } = args.target;
            if args.reveal {
                let revealed: RevealedSecret = client
                    .post(
                        &[&SECRETS[..], &["reveal"]].concat(),
                        &json!({"scope": scope, "key": key}),
                    )
                    .await?;
                println!("{}", revealed.value);
            } else {
                let list: SecretList = client.get(&SECRETS, &[("scope", scope.clone())]).await?;
                let Some(secret) = list.secrets.into_iter().find(|s| s.key == key) else {
                    bail!("no secret `{key}` in scope `{scope}` (hint: `kici-admin secret list --scope {scope}`)");
                };
                print!(
                    "Scope:   {}\nKey:     {}\nCreated: {}\nUpdated: {} by {}\nValue:   (hidden; add --reveal to print it, which is audited)\n",
                    secret.scope,
                    secret.key,
                    format::timestamp(Some(secret.created_at)),
                    format::timestamp(Some(secret.updated_at)),
                    secret.updated_by
                );
            }
        }
        SecretCommand::List(args) => {
            let query: Vec<(&str, String)> = args.scope.into_iter().map(|s| ("scope", s)).collect();
            let list: SecretList = client.get(&SECRETS, &query).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.secrets.is_empty() {
                println!("No secrets. Add one with `kici-admin secret set <scope> <KEY> < value-file`.");
            } else {
                let rows: Vec<Vec<String>> = list
                    .secrets
                    .iter()
                    .map(|s| {
                        vec![
                            s.scope.clone(),
                            s.key.clone(),
                            format::timestamp(Some(s.updated_at)),
                            s.updated_by.clone(),
                        ]
                    })
                    .collect();
                print!("{}", table::render("", &["SCOPE", "KEY", "UPDATED", "BY"], &rows));
            }
        }
        SecretCommand::Delete(SecretRef { scope, key }) => {
            client
                .delete_query(&SECRETS, &[("scope", scope.clone()), ("key", key.clone())])
                .await?;
            println!("Secret {key} in scope {scope} deleted.");
        }
    }
    Ok(())
}

pub async fn run_variable(client: &ApiClient, command: VariableCommand) -> anyhow::Result<()> {
    match command {
        VariableCommand::Set { scope, name, value } => {
            let set: ValueSet = client
                .put(&VARIABLES, &json!({"scope": scope, "name": name, "value": value}))
                .await?;
            let verb = if set.created { "created" } else { "updated" };
            println!("Variable {} in scope {} {verb}.", set.key, set.scope);
        }
        VariableCommand::Get { scope, name } => {
            let list: VariableList = client.get(&VARIABLES, &[("scope", scope.clone())]).await?;
            let Some(variable) = list.variables.into_iter().find(|v| v.name == name) else {
                bail!("no variable `{name}` in scope `{scope}` (hint: `kici-admin variable list`)");
            };
            println!("{}", variable.value);
        }
        VariableCommand::List(args) => {
            let query: Vec<(&str, String)> = args.scope.into_iter().map(|s| ("scope", s)).collect();
            let list: VariableList = client.get(&VARIABLES, &query).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.variables.is_empty() {
                println!("No variables. Add one with `kici-admin variable set <scope> <NAME> <value>`.");
            } else {
                let rows: Vec<Vec<String>> = list
                    .variables
                    .iter()
                    .map(|v| vec![v.scope.clone(), v.name.clone(), v.value.clone()])
                    .collect();
                print!("{}", table::render("", &["SCOPE", "NAME", "VALUE"], &rows));
            }
        }
        VariableCommand::Delete { scope, name } => {
            client
                .delete_query(&VARIABLES, &[("scope", scope.clone()), ("name", name.clone())])
                .await?;
            println!("Variable {name} in scope {scope} deleted.");
        }
    }
    Ok(())
}

pub async fn run_audit(client: &ApiClient, args: AuditArgs) -> anyhow::Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    query.extend(args.action.map(|a| ("action", a)));
    let list: AuditList = client.get(&["api", "v1", "admin", "audit"], &query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    print!("{}", render_audit(&list));
    Ok(())
}

fn render_audit(list: &AuditList) -> String {
    if list.entries.is_empty() {
        return "No audit entries.\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .entries
        .iter()
        .map(|e| {
            vec![
                format::timestamp(Some(e.timestamp)),
                e.action.clone(),
                format::or_none(e.context_name.as_deref()),
                e.secret_keys.join(","),
                e.outcome.clone(),
                format!(
                    "{}{}",
                    e.actor,
                    e.role.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                ),
                e.run_id.as_deref().unwrap_or("").to_string(),
            ]
        })
        .collect();
    table::render(
        "",
        &["TIME", "ACTION", "CONTEXT", "KEYS", "OUTCOME", "ACTOR", "RUN"],
        &rows,
    )
}
