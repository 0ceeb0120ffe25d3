//! `kici-admin schedules list|run|enable|disable`: the schedules registered from the default
//! branches' lock files (`/api/v1/schedules`), with their next fire time.

use clap::{Args, Subcommand};
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::triggers::{Dispatched, ScheduleEntry, ScheduleList};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the registered schedules with their last and next fire times
    List(ListArgs),
    /// Run a schedule's workflow now, at the head of its branch
    Run(IdArgs),
    /// Fire the schedule again from its next tick
    Enable(IdArgs),
    /// Stop firing the schedule (until enabled, or a push changes it)
    Disable(IdArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The schedule's id (from `schedules list`)
    id: String,
}

pub async fn run(client: &ApiClient, command: ScheduleCommand) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::List(args) => {
            let list: ScheduleList = client.get(&["api", "v1", "schedules"], &[]).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", render_list(&list));
            }
        }
        ScheduleCommand::Run(args) => {
            let run: Dispatched = client.post(&["api", "v1", "schedules", &args.id, "run"], &()).await?;
            println!(
                "Run {} started: workflow {} at {} ({}).",
                run.run_id,
                run.workflow,
                run.git_ref,
                format::prefix(&run.sha, 12)
            );
        }
        ScheduleCommand::Enable(args) => {
            let entry: ScheduleEntry = client
                .post(&["api", "v1", "schedules", &args.id, "enable"], &())
                .await?;
            println!(
                "Schedule {} enabled; next fire {}.",
                entry.id,
                format::timestamp(entry.next_fire_at)
            );
        }
        ScheduleCommand::Disable(args) => {
            let entry: ScheduleEntry = client
                .post(&["api", "v1", "schedules", &args.id, "disable"], &())
                .await?;
            println!("Schedule {} disabled.", entry.id);
        }
    }
    Ok(())
}

pub fn render_list(list: &ScheduleList) -> String {
    if list.schedules.is_empty() {
        return "No schedules are registered (a schedule() trigger registers when its lock file is pushed to the default branch).\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .schedules
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.repo.clone(),
                s.workflow.clone(),
                format!("{} ({})", s.cron, s.timezone),
                if s.enabled { "enabled" } else { "disabled" }.to_string(),
                format::timestamp(Some(s.last_fired_at)),
                format::timestamp(s.next_fire_at),
            ]
        })
        .collect();
    table::render("", &["ID", "REPO", "WORKFLOW", "CRON", "STATE", "LAST", "NEXT"], &rows)
}
