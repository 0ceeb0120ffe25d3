//! `kici-admin config reload`: the orchestrator reads its scaler configuration again
//! (`POST /api/v1/admin/config/reload`, the same as sending it SIGHUP). An invalid file is
//! refused and the running configuration stays.

use clap::Subcommand;
use kici_client::client::ApiClient;
use kici_engine::api::ops::Reloaded;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Reload scalers.yaml and scalers.d/ (an invalid set is refused; the running one stays)
    Reload,
}

pub async fn run(client: &ApiClient, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Reload => {
            let reloaded: Reloaded = client
                .post(&["api", "v1", "admin", "config", "reload"], &serde_json::json!({}))
                .await?;
            print!("{}", render(&reloaded));
        }
    }
    Ok(())
}

fn render(reloaded: &Reloaded) -> String {
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    let changes = &reloaded.scalers;
    let mut text = format!(
        "Scaler configuration reloaded (globalMaxAgents {}).\n  added:   {}\n  removed: {}\n  changed: {}\n",
        reloaded.global_max_agents,
        list(&changes.added),
        list(&changes.removed),
        list(&changes.changed)
    );
    if !changes.type_changed.is_empty() {
        text.push_str(&format!(
            "  not applied until a restart (backend type changed): {}\n",
            changes.type_changed.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_lists_what_changed_and_what_needs_a_restart() {
        let reloaded: Reloaded = serde_json::from_str(
            r#"{"status":"reloaded","globalMaxAgents":3,"scalers":{"added":["pods"],"removed":[],"changed":["metal"],"typeChanged":["vms"]}}"#,
        )
        .unwrap();
        assert_eq!(
            render(&reloaded),
            "Scaler configuration reloaded (globalMaxAgents 3).\n  added:   pods\n  removed: -\n  changed: metal\n  not applied until a restart (backend type changed): vms\n"
        );
    }
}
