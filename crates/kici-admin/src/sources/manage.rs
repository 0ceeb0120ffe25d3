//! `kici-admin source update|remove|enable|disable|get-webhook-secret|list-presets`: changing a
//! source after it was added (`PATCH`/`DELETE /api/v1/admin/sources/:idOrName`, `…/enable`,
//! `…/disable`, `…/webhook-secret`), and what each generic preset expects from its forge.

use std::path::PathBuf;

use clap::Args;
use kici_client::client::ApiClient;
use kici_client::table;
use kici_engine::api::admin::{RevealedWebhookSecret, SourceView};
use serde_json::json;

use super::read_password_file;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The source's id or name
    source: String,
    /// A new webhook secret; the old one is still accepted for --rotation-window
    #[arg(long)]
    secret: Option<String>,
    /// How long the replaced secret is still accepted, in seconds (default 86400; 0: not at all)
    #[arg(long, value_name = "SECONDS", requires = "secret")]
    rotation_window: Option<i64>,
    /// A new clone URL template (without credentials)
    #[arg(long, value_name = "TEMPLATE")]
    git_url: Option<String>,
    /// New clone credentials: the user name (with --git-password-file)
    #[arg(long, value_name = "NAME", requires = "git_password_file")]
    git_username: Option<String>,
    /// New clone credentials: the file holding the password or token (`-` for stdin)
    #[arg(long, value_name = "FILE", requires = "git_username")]
    git_password_file: Option<PathBuf>,
    /// The forge API for commit statuses (empty: the one the clone URL implies)
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Verified deliveries accepted per minute
    #[arg(long, value_name = "PER_MINUTE")]
    rate_limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SourceArg {
    /// The source's id or name
    source: String,
}

pub async fn update(client: &ApiClient, args: UpdateArgs) -> anyhow::Result<()> {
    let mut body = json!({
        "secret": args.secret,
        "rotationWindowSeconds": args.rotation_window,
        "gitUrl": args.git_url,
        "apiUrl": args.api_url,
        "rateLimitRpm": args.rate_limit,
    });
    if let (Some(username), Some(path)) = (args.git_username, args.git_password_file) {
        let password = read_password_file(&path)?;
        body["credentials"] = json!({"username": username, "password": password});
    }
    if let Some(object) = body.as_object_mut() {
        object.retain(|_, value| !value.is_null());
    }
    let view: SourceView = client
        .patch(&["api", "v1", "admin", "sources", &args.source], &body)
        .await?;
    println!("Source {} updated.", view.name);
    if let Some(until) = view.previous_secret_until {
        println!(
            "The previous webhook secret is accepted until {}: update the forge's webhook before then.",
            kici_client::format::timestamp(Some(until))
        );
    }
    Ok(())
}

pub async fn remove(client: &ApiClient, args: SourceArg) -> anyhow::Result<()> {
    client.delete(&["api", "v1", "admin", "sources", &args.source]).await?;
    println!(
        "Source {} removed (its runs stay; its schedules are gone).",
        args.source
    );
    Ok(())
}

pub async fn set_enabled(client: &ApiClient, args: SourceArg, enabled: bool) -> anyhow::Result<()> {
    let verb = if enabled { "enable" } else { "disable" };
    let view: SourceView = client
        .post(&["api", "v1", "admin", "sources", &args.source, verb], &())
        .await?;
    if enabled {
        println!("Source {} enabled: its webhooks are accepted.", view.name);
    } else {
        println!(
            "Source {} disabled: its webhooks are refused (403 source_disabled).",
            view.name
        );
    }
    Ok(())
}

pub async fn get_webhook_secret(client: &ApiClient, args: SourceArg) -> anyhow::Result<()> {
    let revealed: RevealedWebhookSecret = client
        .post(&["api", "v1", "admin", "sources", &args.source, "webhook-secret"], &())
        .await?;
    println!("{}", revealed.secret);
    Ok(())
}

pub fn list_presets() -> String {
    let rows: Vec<Vec<String>> = kici_engine::forge::PRESETS
        .iter()
        .map(|preset| {
            vec![
                preset.name.to_string(),
                preset.forge.to_string(),
                format!("{} / {}", preset.event_header, preset.delivery_header),
                preset.signature.to_string(),
                if preset.statuses.is_some() { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    table::render(
        "",
        &["PRESET", "FORGE", "EVENT / DELIVERY HEADERS", "SIGNATURE", "STATUSES"],
        &rows,
    )
}
