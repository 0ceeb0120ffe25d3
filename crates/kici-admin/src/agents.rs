//! `kici-admin agent register|list|revoke|waiting`: static agent tokens (`kat_…`), the agents
//! known to the orchestrator (`/api/v1/admin/agents`) and the jobs waiting for one
//! (`/api/v1/admin/queue/waiting`).

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format::{self, NONE};
use kici_client::table;
use kici_engine::api::admin::{AgentList, AgentView, NewAgent, RegisteredAgent};
use kici_engine::waiting::WaitingJob;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create a static agent token (shown once)
    Register(RegisterArgs),
    /// List agents (with their build info) and agent tokens
    List(ListArgs),
    /// Revoke an agent token; agents connected with it are disconnected
    Revoke(RevokeArgs),
    /// The queued jobs no agent took, each with why it waits
    Waiting(ListArgs),
    /// The agent as a systemd service on this host (no orchestrator or token needed)
    #[command(flatten)]
    Service(crate::service::ServiceCommand),
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The token's name (e.g. `builder-1`)
    #[arg(long)]
    label: String,
    /// Operator labels the agent may claim (comma-separated, e.g. `linux,gpu`; no `kici:` prefix)
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token id or its label
    token_id_or_label: String,
}

pub async fn run(client: &ApiClient, command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Register(args) => {
            let labels = args
                .labels
                .iter()
                .map(|label| label.trim().to_string())
                .filter(|label| !label.is_empty())
                .collect();
            let body = NewAgent {
                label: args.label,
                labels,
            };
            let registered: RegisteredAgent = client.post(&["api", "v1", "admin", "agents"], &body).await?;
            print!("{}", render_registered(&registered));
        }
        AgentCommand::List(args) => {
            let list: AgentList = client.get(&["api", "v1", "admin", "agents"], &[]).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(&list));
            }
        }
        AgentCommand::Waiting(args) => {
            let answer: WaitingList = client.get(&["api", "v1", "admin", "queue", "waiting"], &[]).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print!("{}", render_waiting(&answer.jobs));
            }
        }
        AgentCommand::Service(_) => unreachable!("service commands run offline, from main"),
        AgentCommand::Revoke(args) => {
            client
                .delete(&["api", "v1", "admin", "agents", &args.token_id_or_label])
                .await?;
            println!("Agent token {} revoked.", args.token_id_or_label);
        }
    }
    Ok(())
}

/// `GET /api/v1/admin/queue/waiting`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WaitingList {
    jobs: Vec<WaitingJob>,
}

/// Each waiting job on a line, then why it waits, indented.
pub fn render_waiting(jobs: &[WaitingJob]) -> String {
    if jobs.is_empty() {
        return "No job is waiting for an agent.\n".to_string();
    }
    jobs.iter()
        .map(|job| {
            format!(
                "{} › {}  run {}  queued {}\n  {}\n",
                job.workflow_name,
                job.job_name,
                job.run_id,
                format::timestamp(Some(job.enqueued_at)),
                job.explanation
            )
        })
        .collect()
}

pub fn render_registered(registered: &RegisteredAgent) -> String {
    format!(
        "Agent token created successfully.\n\
         Token ID: {}\n\
         Label:    {}\n\
         Labels:   {}\n\
         Token:    {}\n\
         Save this token -- it will not be shown again.\n\
         Set KICI_AGENT_TOKEN on the agent to use this token:\n\
         \n  KICI_AGENT_TOKEN={}\n",
        registered.token_id,
        registered.label,
        format::list(&registered.labels),
        registered.token,
        registered.token
    )
}

pub fn render_list(list: &AgentList) -> String {
    let mut out = String::from("Agents:\n");
    if list.agents.is_empty() {
        out.push_str("  No agents have connected.\n");
    } else {
        let rows: Vec<Vec<String>> = list
            .agents
            .iter()
            .map(|agent| {
                let build = agent.build_info.as_ref();
                vec![
                    agent.agent_id.to_string(),
                    if agent.connected { "connected" } else { "disconnected" }.to_string(),
                    format::list(&agent.labels),
                    format::or_none(agent.busy_job_id.as_deref()),
                    format::or_none(agent.hostname.as_deref()),
                    platform(agent),
                    format::or_none(agent.version.as_deref()),
                    format::or_none(build.and_then(|build| build.sdk_version.as_deref())),
                    build
                        .and_then(|build| build.sdk_bundle_hash.as_deref())
                        .map_or_else(|| NONE.to_string(), |hash| format::prefix(hash, 12)),
                    format::timestamp(agent.last_seen_at),
                ]
            })
            .collect();
        out.push_str(&table::render(
            "  ",
            &[
                "AGENT ID",
                "STATE",
                "LABELS",
                "BUSY JOB",
                "HOST",
                "PLATFORM",
                "VERSION",
                "SDK",
                "SDK BUNDLE",
                "LAST SEEN",
            ],
            &rows,
        ));
    }
    out.push_str("\nAgent tokens:\n");
    if list.tokens.is_empty() {
        out.push_str("  No agent tokens (create one with `kici-admin agent register --label <name>`).\n");
    } else {
        let rows: Vec<Vec<String>> = list
            .tokens
            .iter()
            .map(|token| {
                vec![
                    token.token_id.clone(),
                    token.label.clone(),
                    format::or_none(token.token_prefix.as_deref()),
                    format::list(&token.labels),
                    format::or_none(token.agent_type.as_deref()),
                    format::timestamp(Some(token.created_at)),
                    format::timestamp(token.last_seen_at),
                    format::timestamp(token.revoked_at),
                ]
            })
            .collect();
        out.push_str(&table::render(
            "  ",
            &[
                "TOKEN ID",
                "LABEL",
                "PREFIX",
                "LABELS",
                "TYPE",
                "CREATED",
                "LAST SEEN",
                "REVOKED",
            ],
            &rows,
        ));
    }
    out
}

fn platform(agent: &AgentView) -> String {
    match (agent.platform.as_deref(), agent.arch.as_deref()) {
        (Some(platform), Some(arch)) if !platform.is_empty() && !arch.is_empty() => format!("{platform}/{arch}"),
        (Some(platform), _) if !platform.is_empty() => platform.to_string(),
        _ => NONE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_prints_the_token_and_the_env_line() {
        let token = format!("kat_{}", "c".repeat(64));
        let registered = RegisteredAgent {
            token_id: "at-1".into(),
            token: token.clone(),
            label: "builder-1".into(),
            labels: vec!["linux".into(), "gpu".into()],
        };
        assert_eq!(
            render_registered(&registered),
            format!(
                "Agent token created successfully.\nToken ID: at-1\nLabel:    builder-1\nLabels:   linux, gpu\nToken:    {token}\n\
                 Save this token -- it will not be shown again.\nSet KICI_AGENT_TOKEN on the agent to use this token:\n\n  KICI_AGENT_TOKEN={token}\n"
            )
        );
    }

    #[test]
    fn agent_list_shows_build_info_and_tokens() {
        let list: AgentList = serde_json::from_str(
            r#"{
              "agents": [
                {"agentId": "agent-a", "labels": ["linux", "kici:os:linux"], "hostname": "box", "platform": "linux",
                 "arch": "x64", "version": "0.1.0",
                 "buildInfo": {"sdkVersion": "0.1.24", "sdkBundleHash": "0123456789abcdef0123", "sharedVersion": "x",
                               "sharedBundleHash": "y", "engineVersion": "z", "engineBundleHash": "w"},
                 "connected": true, "busyJobId": "j-7", "firstSeenAt": 0, "lastSeenAt": 1795000000123},
                {"agentId": "agent-b", "labels": [], "hostname": "old", "platform": "linux", "arch": "arm64",
                 "version": "0.1.0", "buildInfo": null, "connected": false, "busyJobId": null,
                 "firstSeenAt": 0, "lastSeenAt": 0}
              ],
              "tokens": [
                {"tokenId": "at-1", "label": "builder-1", "tokenPrefix": "kat_0123", "labels": ["linux"],
                 "agentType": "static", "createdAt": 0, "expiresAt": null, "revokedAt": null, "lastSeenAt": null}
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(
            render_list(&list),
            "\
Agents:
  AGENT ID  STATE         LABELS                BUSY JOB  HOST  PLATFORM     VERSION  SDK     SDK BUNDLE    LAST SEEN
  agent-a   connected     linux, kici:os:linux  j-7       box   linux/x64    0.1.0    0.1.24  0123456789ab  2026-11-18T11:06:40.123Z
  agent-b   disconnected  -                     -         old   linux/arm64  0.1.0    -       -             1970-01-01T00:00:00.000Z

Agent tokens:
  TOKEN ID  LABEL      PREFIX    LABELS  TYPE    CREATED                   LAST SEEN  REVOKED
  at-1      builder-1  kat_0123  linux   static  1970-01-01T00:00:00.000Z  -          -
"
        );
        let empty = AgentList {
            agents: vec![],
            tokens: vec![],
        };
        assert_eq!(
            render_list(&empty),
            "Agents:\n  No agents have connected.\n\nAgent tokens:\n  No agent tokens (create one with `kici-admin agent register --label <name>`).\n"
        );
    }
}
