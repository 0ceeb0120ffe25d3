//! `kici-admin user create` and `user delete`: dashboard users on the Platform
//! (`POST /api/v1/users`, `DELETE /api/v1/users/:name`). Point `--url` at the Platform and use
//! its admin token; a new user's token is printed once, and deleting a user ends their
//! sessions and token at once.

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::{format, table};
use kici_engine::api::admin::{CreatedUser, NewUser, UserList, UserRole};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user (run against the Platform: --url http://127.0.0.1:4100)
    Create(CreateArgs),
    /// Delete a dashboard user: their token stops working and their sessions end at once
    Delete(DeleteArgs),
    /// List the dashboard users (owners only)
    List,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user's name, shown in the dashboard and in `Cancelled by <name>`
    #[arg(long)]
    name: String,
    /// What the user may do: `owner` reads and acts (cancel), `member` only reads
    #[arg(long, default_value = "member", value_parser = role_parser())]
    role: UserRole,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The user's name, as given to `user create`
    name: String,
}

/// `--role`: one of the Platform's role names, listed in `--help`.
fn role_parser() -> impl clap::builder::TypedValueParser<Value = UserRole> {
    let names: Vec<&str> = UserRole::ALL.iter().map(|role| role.as_str()).collect();
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a possible value is a role"))
}

pub async fn run(client: &ApiClient, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => {
            let created: CreatedUser = client
                .post(
                    &["api", "v1", "users"],
                    &NewUser {
                        name: args.name,
                        role: args.role.to_string(),
                    },
                )
                .await?;
            println!("Created {} user {}.", created.role, created.name);
            println!(
                "Token (shown once; sign in to the dashboard with it): {}",
                created.token
            );
        }
        UserCommand::List => {
            let list: UserList = client.get(&["api", "v1", "users"], &[]).await?;
            if list.users.is_empty() {
                println!("No users yet (the bootstrap owner's token is not a user).");
            } else {
                let rows: Vec<Vec<String>> = list
                    .users
                    .iter()
                    .map(|u| vec![u.name.clone(), u.role.clone(), format::timestamp(Some(u.created_at))])
                    .collect();
                print!("{}", table::render("", &["NAME", "ROLE", "CREATED"], &rows));
            }
        }
        UserCommand::Delete(args) => {
            client.delete(&["api", "v1", "users", &args.name]).await?;
            println!("Deleted user {}; their sessions and token no longer work.", args.name);
        }
    }
    Ok(())
}
