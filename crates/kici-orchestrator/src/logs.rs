//! Step logs as append-only files under the data directory:
//! `<data>/logs/<runId>/<jobId>/step-<index>.jsonl`, one `{"seq", "i", "ts", "line"}` object
//! per line (`i` = position in the chunk). `seq` is the agent's message number: a chunk replayed after a crash between the append
//! and the store update is written twice, and readers skip the second copy.
//!
//! Provisioning milestones of a job go to `<data>/executions/<runId>/jobs/<jobId>/provisioning.jsonl`,
//! one [`ProvisioningLine`] per line (the dashboard's Provisioning logs section).
//!
//! Job output may hold anything a job printed: directories are created 0700 and files 0600.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kici_engine::api::{LogLine, ProvisioningLine};
use kici_engine::ids::{JobId, RunId};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    seq: u64,
    /// Position in its chunk: 0 starts a chunk.
    i: usize,
    ts: i64,
    line: String,
}

#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
    executions: PathBuf,
}

impl LogStore {
    pub fn new(data_dir: &Path) -> LogStore {
        LogStore {
            root: data_dir.join("logs"),
            executions: data_dir.join("executions"),
        }
    }

    fn path(&self, run_id: &RunId, job_id: &JobId, step_index: i64) -> PathBuf {
        self.root
            .join(run_id)
            .join(job_id)
            .join(format!("step-{step_index}.jsonl"))
    }

    /// Appends one chunk of lines.
    pub async fn append(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        step_index: i64,
        seq: u64,
        lines: &[(i64, String)],
    ) -> std::io::Result<()> {
        let path = self.path(run_id, job_id, step_index);
        let mut text = String::new();
        for (i, (ts, line)) in lines.iter().enumerate() {
            let record = Record {
                seq,
                i,
                ts: *ts,
                line: line.clone(),
            };
            text.push_str(&serde_json::to_string(&record).expect("log records serialize"));
            text.push('\n');
        }
        append(&path, &text).await
    }

    /// The lines of a step, each chunk once; an absent file is an empty log.
    pub async fn read(&self, run_id: &RunId, job_id: &JobId, step_index: i64) -> std::io::Result<Vec<LogLine>> {
        let text = match tokio::fs::read_to_string(self.path(run_id, job_id, step_index)).await {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut seen: HashSet<u64> = HashSet::new();
        let mut skipping = false;
        let mut lines = Vec::new();
        for raw in text.lines() {
            // A torn last line (crash mid-write) is not a log line.
            let Ok(record) = serde_json::from_str::<Record>(raw) else {
                continue;
            };
            if record.i == 0 {
                skipping = !seen.insert(record.seq);
            }
            if !skipping {
                lines.push(LogLine {
                    ts: record.ts,
                    line: record.line,
                });
            }
        }
        Ok(lines)
    }

    fn provisioning_path(&self, run_id: &RunId, job_id: &JobId) -> PathBuf {
        self.executions
            .join(run_id)
            .join("jobs")
            .join(job_id)
            .join("provisioning.jsonl")
    }

    /// Appends one provisioning milestone of a job.
    pub async fn append_provisioning(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        line: &ProvisioningLine,
    ) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).expect("provisioning lines serialize");
        text.push('\n');
        append(&self.provisioning_path(run_id, job_id), &text).await
    }

    /// A job's provisioning milestones in time order; none when the file is absent.
    pub async fn read_provisioning(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<Vec<ProvisioningLine>> {
        let text = match tokio::fs::read_to_string(self.provisioning_path(run_id, job_id)).await {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        // A torn last line (crash mid-write) is skipped.
        let mut lines: Vec<ProvisioningLine> = text.lines().filter_map(|raw| serde_json::from_str(raw).ok()).collect();
        lines.sort_by_key(|line| line.ts);
        Ok(lines)
    }

    /// Removes every log file of a run (retention): its step logs and provisioning lines. A
    /// run without logs is not an error.
    pub async fn remove_run(&self, run_id: &RunId) -> std::io::Result<()> {
        for dir in [self.root.join(run_id), self.executions.join(run_id)] {
            match tokio::fs::remove_dir_all(&dir).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }

    /// Step indices that have a log file for the job.
    pub async fn step_indices(&self, run_id: &RunId, job_id: &JobId) -> Vec<i64> {
        let mut indices = Vec::new();
        let Ok(mut dir) = tokio::fs::read_dir(self.root.join(run_id).join(job_id)).await else {
            return indices;
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(index) = name
                .strip_prefix("step-")
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse().ok())
            {
                indices.push(index);
            }
        }
        indices.sort_unstable();
        indices
    }
}

/// Appends `text` to the file at `path`, creating it (0600) and its directories (0700).
async fn append(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .await?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.write_all(text.as_bytes()).await?;
    file.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replayed_chunks_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path());
        logs.append(
            &RunId::from("r"),
            &JobId::from("j"),
            0,
            1,
            &[(1, "a".into()), (2, "b".into())],
        )
        .await
        .unwrap();
        logs.append(&RunId::from("r"), &JobId::from("j"), 0, 2, &[(3, "c".into())])
            .await
            .unwrap();
        logs.append(&RunId::from("r"), &JobId::from("j"), 0, 2, &[(3, "c".into())])
            .await
            .unwrap();
        logs.append(&RunId::from("r"), &JobId::from("j"), -1, 3, &[(4, "prep".into())])
            .await
            .unwrap();
        let lines: Vec<String> = logs
            .read(&RunId::from("r"), &JobId::from("j"), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect();
        assert_eq!(lines, ["a", "b", "c"]);
        assert_eq!(logs.step_indices(&RunId::from("r"), &JobId::from("j")).await, [-1, 0]);
        assert!(
            logs.read(&RunId::from("r"), &JobId::from("other"), 0)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path());
        logs.append(&RunId::from("r"), &JobId::from("j"), 0, 1, &[(1, "token=abc".into())])
            .await
            .unwrap();
        let line = ProvisioningLine {
            ts: 1,
            phase: "p".into(),
            event_type: "scaler.provisioning".into(),
            message: "m".into(),
            agent_id: "a".into(),
        };
        logs.append_provisioning(&RunId::from("r"), &JobId::from("j"), &line)
            .await
            .unwrap();
        let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path().join("logs/r/j/step-0.jsonl")), 0o600);
        assert_eq!(mode(dir.path().join("logs/r/j")), 0o700);
        assert_eq!(mode(dir.path().join("logs/r")), 0o700);
        assert_eq!(mode(dir.path().join("executions/r/jobs/j/provisioning.jsonl")), 0o600);
    }
}
