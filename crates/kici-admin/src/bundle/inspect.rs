//! `kici-admin inspect-bundle <path> [--json]`: reads a debug bundle back offline (no
//! orchestrator, no token): the manifest with each part's status, the diagnose status and the
//! checks that did not pass, the logs summary, and the files with their sizes.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use clap::Args;
use kici_client::table;
use kici_engine::api::ops::{CheckStatus, DiagnoseReport};
use serde::Serialize;
use serde_json::Value;
use zip::ZipArchive;

use super::archive::read_entry;
use super::{DIAGNOSTICS, LOG_SUMMARY, LOGS, MANIFEST};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The debug bundle (a .zip written by `kici-admin debug-bundle`)
    path: PathBuf,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read debug bundle `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Invalid debug bundle: {} is not a ZIP archive ({cause})", path.display())]
    NotZip { path: PathBuf, cause: String },
    #[error("Invalid debug bundle: missing manifest.json")]
    MissingManifest,
    #[error("Invalid debug bundle: {name} is not valid JSON ({cause})")]
    BadJson { name: &'static str, cause: String },
    #[error("Invalid debug bundle: cannot read {name} ({cause})")]
    BadEntry { name: String, cause: String },
}

/// What a bundle holds, as `--json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub path: String,
    pub manifest: Value,
    /// `None` when the bundle has no (readable) diagnostics.
    pub diagnostics: Option<DiagnoseReport>,
    pub logs: Option<Value>,
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Serialize)]
pub struct BundleFile {
    pub name: String,
    pub size: u64,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let inspection = inspect(&args.path)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print!("{}", render(&inspection));
    }
    Ok(())
}

pub fn inspect(path: &Path) -> Result<Inspection, InspectError> {
    let file = File::open(path).map_err(|source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut zip = ZipArchive::new(file).map_err(|err| InspectError::NotZip {
        path: path.to_path_buf(),
        cause: err.to_string(),
    })?;
    let bad_entry = |name: &str, err: &dyn std::fmt::Display| InspectError::BadEntry {
        name: name.to_string(),
        cause: err.to_string(),
    };
    let manifest = read_entry(&mut zip, MANIFEST)
        .map_err(|err| bad_entry(MANIFEST, &err))?
        .ok_or(InspectError::MissingManifest)?;
    let manifest: Value = serde_json::from_slice(&manifest).map_err(|err| InspectError::BadJson {
        name: MANIFEST,
        cause: err.to_string(),
    })?;
    let diagnostics = read_entry(&mut zip, DIAGNOSTICS)
        .map_err(|err| bad_entry(DIAGNOSTICS, &err))?
        .and_then(|bytes| serde_json::from_slice::<DiagnoseReport>(&bytes).ok());
    let logs = read_entry(&mut zip, LOG_SUMMARY)
        .map_err(|err| bad_entry(LOG_SUMMARY, &err))?
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let mut files = Vec::new();
    for index in 0..zip.len() {
        let entry = zip
            .by_index(index)
            .map_err(|err| bad_entry(&format!("entry {index}"), &err))?;
        let name = entry
            .name()
            .map_err(|err| bad_entry(&format!("entry {index}"), &err))?
            .into_owned();
        files.push(BundleFile {
            name,
            size: entry.size(),
        });
    }
    Ok(Inspection {
        path: path.display().to_string(),
        manifest,
        diagnostics,
        logs,
        files,
    })
}

/// The text summary.
pub fn render(inspection: &Inspection) -> String {
    let manifest = &inspection.manifest;
    let field = |name: &str| manifest.get(name).and_then(Value::as_str).unwrap_or("-").to_string();
    let mut out = format!("Debug bundle summary: {}\n\nBundle info\n", inspection.path);
    for (label, value) in [
        ("Generated:", field("generated_at")),
        ("Source:", field("source")),
        ("Orchestrator:", field("orchestrator_url")),
        ("Bundle version:", field("version")),
        ("kici-admin:", field("kici_admin_version")),
        ("Platform:", field("platform")),
    ] {
        let _ = writeln!(out, "  {label:<16}{value}");
    }
    let parts: Vec<(String, String)> = manifest
        .get("parts")
        .and_then(Value::as_object)
        .map(|parts| {
            parts
                .iter()
                .map(|(part, status)| (part.clone(), status.as_str().unwrap_or("-").to_string()))
                .collect()
        })
        .unwrap_or_default();
    out.push_str("\nParts\n");
    if parts.is_empty() {
        out.push_str("  (none recorded)\n");
    } else {
        let rows: Vec<Vec<String>> = parts
            .iter()
            .map(|(part, status)| vec![part.clone(), status.clone()])
            .collect();
        out.push_str(&table::render("  ", &["PART", "STATUS"], &rows));
    }
    let part_status = |name: &str| {
        parts
            .iter()
            .find(|(part, _)| part == name)
            .map_or_else(|| "not recorded".to_string(), |(_, status)| status.clone())
    };
    match &inspection.diagnostics {
        Some(diagnostics) => {
            let failing: Vec<Vec<String>> = diagnostics
                .checks
                .iter()
                .filter(|check| check.status != CheckStatus::Pass)
                .map(|check| {
                    vec![
                        check.status.label().to_string(),
                        check.name.clone(),
                        check.message.clone(),
                    ]
                })
                .collect();
            if failing.is_empty() {
                let _ = writeln!(
                    out,
                    "\nHealth checks: {} (all {} checks pass)",
                    diagnostics.status.as_str(),
                    diagnostics.checks.len()
                );
            } else {
                let _ = writeln!(out, "\nHealth checks: {}", diagnostics.status.as_str());
                out.push_str(&table::render_multiline(
                    "  ",
                    &["Status", "Check", "Message"],
                    &failing,
                ));
            }
        }
        None => {
            let _ = writeln!(out, "\nHealth checks: not in the bundle ({})", part_status(DIAGNOSTICS));
        }
    }
    match &inspection.logs {
        Some(logs) => {
            let number = |name: &str| logs.get(name).and_then(Value::as_u64).unwrap_or(0);
            let files = logs.get("files").and_then(Value::as_array).map_or(0, Vec::len);
            out.push_str("\nLogs\n");
            for (label, value) in [
                ("Files:", files as u64),
                ("Total lines:", number("totalLines")),
                ("Errors:", number("errors")),
                ("Warnings:", number("warnings")),
                ("Total bytes:", number("totalBytes")),
            ] {
                let _ = writeln!(out, "  {label:<13}{value}");
            }
        }
        None => {
            let _ = writeln!(out, "\nLogs: not in the bundle ({})", part_status(LOGS));
        }
    }
    out.push_str("\nFiles\n");
    let rows: Vec<Vec<String>> = inspection
        .files
        .iter()
        .map(|file| vec![file.size.to_string(), file.name.clone()])
        .collect();
    out.push_str(&table::render("  ", &["BYTES", "NAME"], &rows));
    out
}
