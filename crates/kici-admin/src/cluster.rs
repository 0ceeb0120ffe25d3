//! `kici-admin cluster health`: the orchestrators sharing the database, which one leads and
//! which are alive (`/api/v1/admin/cluster/health`).

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::{format, table};
use kici_engine::api::ops::ClusterHealth;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The orchestrators sharing this database: role (leader or follower), alive, last beat
    Health(HealthArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &ApiClient, command: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Health(args) = command;
    let health: ClusterHealth = client.get(&["api", "v1", "admin", "cluster", "health"], &[]).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        print!("{}", render(&health));
    }
    Ok(())
}

pub fn render(health: &ClusterHealth) -> String {
    let mut out = format!(
        "Answered by {} ({}); leader: {}\n\n",
        health.instance_id,
        health.role,
        health.leader.as_deref().unwrap_or("none alive")
    );
    let rows: Vec<Vec<String>> = health
        .instances
        .iter()
        .map(|i| {
            vec![
                i.instance_id.clone(),
                i.role.clone(),
                if i.alive { "yes" } else { "no" }.to_string(),
                format::timestamp(Some(i.started_at)),
                format::timestamp(Some(i.last_beat_at)),
            ]
        })
        .collect();
    out.push_str(&table::render(
        "",
        &["INSTANCE", "ROLE", "ALIVE", "STARTED", "LAST BEAT"],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kici_engine::api::ops::InstanceView;

    #[test]
    fn the_leader_and_each_instance_are_shown() {
        let view = |id: &str, role: &str, alive: bool| InstanceView {
            instance_id: id.into(),
            role: role.into(),
            alive,
            started_at: 0,
            last_beat_at: 2_000,
        };
        let health = ClusterHealth {
            status: "ok".into(),
            instance_id: "b:4000".into(),
            role: "leader".into(),
            agent_count: 0,
            connected_agents: Vec::new(),
            active_runs: 0,
            leader: Some("b:4000".into()),
            instances: vec![view("b:4000", "leader", true), view("a:4000", "follower", false)],
        };
        let shown = render(&health);
        assert!(
            shown.starts_with("Answered by b:4000 (leader); leader: b:4000\n\nINSTANCE"),
            "{shown}"
        );
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[3].starts_with("b:4000") && lines[3].contains("leader") && lines[3].contains("yes"),
            "{shown}"
        );
        assert!(
            lines[4].starts_with("a:4000") && lines[4].contains("follower") && lines[4].contains("no"),
            "{shown}"
        );
    }
}
