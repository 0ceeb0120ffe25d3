//! `kici-admin token create|list|revoke`: admin tokens for the HTTP API
//! (`/api/v1/admin/tokens`). A new token is printed once; the server keeps only its hash.

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::admin::{AdminRole, AdminTokenList, CreatedAdminToken, NewAdminToken};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an admin token (shown once)
    Create(CreateArgs),
    /// List admin tokens (never their values)
    List(ListArgs),
    /// Revoke an admin token
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What the token is for (e.g. `ops`, `ci-dashboard`)
    #[arg(long)]
    label: String,
    /// What the token may do
    #[arg(long, default_value = "admin", value_parser = role_parser())]
    role: AdminRole,
    /// A team the token's holder belongs to, for environment reviewers `team:<name>` (repeatable)
    #[arg(long = "team", value_name = "NAME")]
    teams: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    token_id: String,
}

/// `--role`: one of the API's role names, listed in `--help`.
fn role_parser() -> impl clap::builder::TypedValueParser<Value = AdminRole> {
    let names: Vec<&str> = AdminRole::ALL.iter().map(|role| role.as_str()).collect();
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a possible value is a role"))
}

pub async fn run(client: &ApiClient, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            let body = NewAdminToken {
                label: args.label,
                role: Some(args.role.to_string()),
                teams: args.teams,
            };
            let created: CreatedAdminToken = client.post(&["api", "v1", "admin", "tokens"], &body).await?;
            print!("{}", render_created(&created));
        }
        TokenCommand::List(args) => {
            let list: AdminTokenList = client.get(&["api", "v1", "admin", "tokens"], &[]).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(&list));
            }
        }
        TokenCommand::Revoke(args) => {
            client.delete(&["api", "v1", "admin", "tokens", &args.token_id]).await?;
            println!("Token {} revoked.", args.token_id);
        }
    }
    Ok(())
}

pub fn render_created(created: &CreatedAdminToken) -> String {
    format!(
        "Token created: {}\nToken ID: {}\nLabel:    {}\nRole:     {}\nSave this token -- it will not be shown again.\n",
        created.token, created.token_id, created.label, created.role
    )
}

pub fn render_list(list: &AdminTokenList) -> String {
    if list.tokens.is_empty() {
        return "No admin tokens.\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .tokens
        .iter()
        .map(|token| {
            vec![
                token.token_id.clone(),
                token.label.clone(),
                token.role.clone(),
                format::timestamp(Some(token.created_at)),
                format::timestamp(token.last_used_at),
                format::timestamp(token.revoked_at),
            ]
        })
        .collect();
    table::render(
        "",
        &["TOKEN ID", "LABEL", "ROLE", "CREATED", "LAST USED", "REVOKED"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_token_is_shown_once_with_a_warning() {
        let created = CreatedAdminToken {
            token_id: "tok-1".into(),
            token: "ab".repeat(32),
            label: "ops".into(),
            role: "owner".into(),
        };
        assert_eq!(
            render_created(&created),
            format!(
                "Token created: {}\nToken ID: tok-1\nLabel:    ops\nRole:     owner\nSave this token -- it will not be shown again.\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(
            serde_json::to_string(&NewAdminToken {
                label: "ops".into(),
                role: Some(AdminRole::Auditor.to_string()),
                teams: vec![],
            })
            .unwrap(),
            r#"{"label":"ops","role":"auditor"}"#
        );
    }

    #[test]
    fn token_table() {
        let list: AdminTokenList = serde_json::from_str(
            r#"{"tokens": [
                {"tokenId": "tok-1", "label": "bootstrap", "role": "owner", "createdAt": 0, "lastUsedAt": 1795000000123, "revokedAt": null},
                {"tokenId": "tok-2", "label": "ops", "role": "admin", "createdAt": 0}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            render_list(&list),
            "\
TOKEN ID  LABEL      ROLE   CREATED                   LAST USED                 REVOKED
tok-1     bootstrap  owner  1970-01-01T00:00:00.000Z  2026-11-18T11:06:40.123Z  -
tok-2     ops        admin  1970-01-01T00:00:00.000Z  -                         -
"
        );
        assert_eq!(render_list(&AdminTokenList { tokens: vec![] }), "No admin tokens.\n");
    }
}
