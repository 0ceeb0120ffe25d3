//! `kici-admin event emit` (a custom event for `kiciEvent()` triggers, as a step's `ctx.emit`
//! makes one) and `kici-admin event-dlq list|count|retry|discard`: the internal events whose
//! every delivery attempt failed (`/api/v1/admin/events`).

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::triggers::{EmitRequest, Emitted, EventEntry, EventList};

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Emit a custom event: the workflows whose kiciEvent({ name }) trigger accepts it start
    Emit(EmitArgs),
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    /// The event's name
    name: String,
    /// The payload, a JSON object (`{"env":"prod"}`)
    #[arg(long, default_value = "{}")]
    payload: String,
    /// The repository (`owner/name`) the event comes from, for kiciEvent({ source })
    #[arg(long)]
    source_repo: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead events, newest first, with the last attempt's error
    List(ListArgs),
    /// How many events are dead
    Count,
    /// Deliver a dead event again, from its first attempt
    Retry(IdArgs),
    /// Forget a dead event
    Discard(IdArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
    /// At most this many
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The event's id (from `event-dlq list`)
    id: String,
}

pub async fn emit(client: &ApiClient, command: EventCommand) -> anyhow::Result<()> {
    let EventCommand::Emit(args) = command;
    let payload: serde_json::Value = serde_json::from_str(&args.payload).map_err(|err| {
        anyhow::anyhow!("--payload is not JSON ({err}); give an object, e.g. --payload '{{\"env\":\"prod\"}}'")
    })?;
    let serde_json::Value::Object(payload) = payload else {
        anyhow::bail!("--payload must be a JSON object, e.g. --payload '{{\"env\":\"prod\"}}'");
    };
    let request = EmitRequest {
        name: args.name.clone(),
        payload,
        source_repo: args.source_repo,
    };
    let emitted: Emitted = client.post(&["api", "v1", "admin", "events"], &request).await?;
    println!(
        "Event {} emitted ({}); {}.",
        args.name,
        emitted.event_id,
        started(&emitted.run_ids)
    );
    Ok(())
}

pub async fn dlq(client: &ApiClient, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List(args) => {
            let list = dead(client, args.limit).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(&list));
            }
        }
        DlqCommand::Count => println!("{}", dead(client, 1).await?.total),
        DlqCommand::Retry(args) => {
            let entry: EventEntry = client
                .post(&["api", "v1", "admin", "events", &args.id, "retry"], &())
                .await?;
            match entry.status.as_str() {
                "delivered" => println!("Event {} delivered; {}.", entry.event_id, started(&entry.run_ids)),
                "dead" => println!(
                    "Event {} failed again and is back in the dead-letter list: {}",
                    entry.event_id,
                    format::or_none(entry.last_error.as_deref())
                ),
                _ => println!(
                    "Event {} failed again; next attempt {}: {}",
                    entry.event_id,
                    format::timestamp(Some(entry.next_attempt_at)),
                    format::or_none(entry.last_error.as_deref())
                ),
            }
        }
        DlqCommand::Discard(args) => {
            client.delete(&["api", "v1", "admin", "events", &args.id]).await?;
            println!("Event {} discarded.", args.id);
        }
    }
    Ok(())
}

/// `runs started: <ids>`, or that there were none.
fn started(run_ids: &[kici_engine::ids::RunId]) -> String {
    if run_ids.is_empty() {
        return "it started no run".to_string();
    }
    let runs: Vec<String> = run_ids.iter().map(ToString::to_string).collect();
    format!("runs started: {}", runs.join(", "))
}

async fn dead(client: &ApiClient, limit: i64) -> anyhow::Result<EventList> {
    let query = [("status", "dead".to_string()), ("limit", limit.to_string())];
    Ok(client.get(&["api", "v1", "admin", "events"], &query).await?)
}

pub fn render_list(list: &EventList) -> String {
    if list.events.is_empty() {
        return "No dead events.\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .events
        .iter()
        .map(|e| {
            vec![
                e.event_id.clone(),
                e.event_type.clone(),
                e.attempts.to_string(),
                format::timestamp(Some(e.updated_at)),
                format::or_none(e.last_error.as_deref()),
            ]
        })
        .collect();
    table::render_multiline("", &["ID", "TYPE", "ATTEMPTS", "LAST ATTEMPT", "ERROR"], &rows)
}
