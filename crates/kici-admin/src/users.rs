//! `kici-admin user create` and `user delete`: dashboard users on the Platform
//! (`POST /api/v1/users`, `DELETE /api/v1/users/:name`). Point `--url` at the Platform and use
//! its admin token; a new user's token is printed once, and deleting a user ends their
//! sessions and token at once.

use clap::{Args, Subcommand, ValueEnum};
use kici_client::client::ApiClient;
use serde::{Deserialize, Serialize};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user (run against the Platform: --url http://127.0.0.1:4100)
    Create(CreateArgs),
    /// Delete a dashboard user: their token stops working and their sessions end at once
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user's name, shown in the dashboard and in `Cancelled by <name>`
    #[arg(long)]
    name: String,
    /// What the user may do: `owner` reads and acts (cancel), `member` only reads
    #[arg(long, value_enum, default_value_t = Role::Member)]
    role: Role,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The user's name, as given to `user create`
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Member,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    name: &'a str,
    role: Role,
}

#[derive(Debug, Deserialize)]
struct Created {
    name: String,
    role: String,
    token: String,
}

pub async fn run(client: &ApiClient, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => {
            let created: Created = client
                .post(
                    &["api", "v1", "users"],
                    &Body {
                        name: &args.name,
                        role: args.role,
                    },
                )
                .await?;
            println!("Created {} user {}.", created.role, created.name);
            println!(
                "Token (shown once; sign in to the dashboard with it): {}",
                created.token
            );
        }
        UserCommand::Delete(args) => {
            client.delete(&["api", "v1", "users", &args.name]).await?;
            println!("Deleted user {}; their sessions and token no longer work.", args.name);
        }
    }
    Ok(())
}
