//! Step logs and provisioning milestones, in one of two homes:
//!
//! - **Files** (the default, one orchestrator): `<data>/logs/<runId>/<jobId>/step-<index>.jsonl`,
//!   one `{"seq", "i", "ts", "line"}` object per line (`i` = position in the chunk), and
//!   `<data>/executions/<runId>/jobs/<jobId>/provisioning.jsonl`, one [`ProvisioningLine`] per
//!   line. Directories are created 0700 and files 0600: job output may hold anything.
//! - **Objects** (`KICI_STORAGE_TYPE=s3`): the same records in object storage, so every
//!   orchestrator on the database serves every log, live and finished. A chunk is its own
//!   object (`logs/<runId>/<jobId>/step-<index>/c-<seq>.jsonl`) written before the chunk is
//!   acknowledged; the orchestrator receiving a step's chunks folds them into segment objects
//!   (`s-<firstSeq>-<lastSeq>.jsonl`, at 64 chunks or 256 KiB, when the step or job ends,
//!   after a minute without lines, and when 64 MiB are held across steps) and deletes the
//!   chunk objects, so a long log is a few objects (a step of one chunk stays that one
//!   object). A milestone is `executions/<runId>/jobs/<jobId>/provisioning/<ts>-<id>.json`.
//!   Logs written to files before the switch are still read from there.
//!
//! `seq` is the agent's message number. A chunk replayed after a crash between the write and
//! the store update is written twice (or over itself), and readers keep each `seq` once; in
//! objects they also order by it, so a chunk is never lost between a segment and its chunks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use kici_engine::api::{LogLine, ProvisioningLine};
use kici_engine::ids::{JobId, RunId};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::storage::Storage;

/// A segment object is written once a step's unfolded chunks reach either bound.
const SEGMENT_CHUNKS: usize = 64;
const SEGMENT_BYTES: usize = 256 * 1024;
/// Chunks of a step that has had no line for this long are folded (its job may have ended
/// on another orchestrator, or its agent gone) by [`LogStore::fold_idle`].
const SEGMENT_IDLE: Duration = Duration::from_secs(60);
/// The most bytes of unfolded chunks kept in memory across steps; past it a step is folded at
/// its next chunk.
const OPEN_BYTES_BUDGET: usize = 64 * 1024 * 1024;
/// Listings of a step log that changed while it was read before the read gives up.
const READ_ATTEMPTS: usize = 5;
/// Objects fetched at once when a step's log is read.
const READ_CONCURRENCY: usize = 16;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    seq: u64,
    /// Position in its chunk: 0 starts a chunk.
    i: usize,
    ts: i64,
    line: String,
}

fn records(seq: u64, lines: &[(i64, String)]) -> String {
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
    text
}

/// The chunks of a text of records, in order, as `(seq, lines)`. A torn last line (a crash
/// mid-write) is not a log line.
fn chunks(text: &str) -> Vec<(u64, Vec<LogLine>)> {
    let mut chunks: Vec<(u64, Vec<LogLine>)> = Vec::new();
    for raw in text.lines() {
        let Ok(record) = serde_json::from_str::<Record>(raw) else {
            continue;
        };
        let line = LogLine {
            ts: record.ts,
            line: record.line,
        };
        match chunks.last_mut() {
            Some((seq, lines)) if record.i != 0 && *seq == record.seq => lines.push(line),
            _ => chunks.push((record.seq, vec![line])),
        }
    }
    chunks
}

#[derive(Debug, Clone)]
pub struct LogStore {
    files: Files,
    objects: Option<Objects>,
}

impl LogStore {
    /// Logs as files under the data directory.
    pub fn files(data_dir: &Path) -> LogStore {
        LogStore {
            files: Files::new(data_dir),
            objects: None,
        }
    }

    /// Logs in object storage; files under the data directory are still read.
    pub fn objects(data_dir: &Path, storage: Arc<Storage>) -> LogStore {
        LogStore {
            files: Files::new(data_dir),
            objects: Some(Objects {
                storage,
                open: Arc::new(Mutex::new(OpenSegments::default())),
            }),
        }
    }

    /// Appends one chunk of lines; once it returns the chunk is durable.
    pub async fn append(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        step_index: i64,
        seq: u64,
        lines: &[(i64, String)],
    ) -> std::io::Result<()> {
        match &self.objects {
            Some(objects) => objects.append(run_id, job_id, step_index, seq, lines).await,
            None => self.files.append(run_id, job_id, step_index, seq, lines).await,
        }
    }

    /// The lines of a step, each chunk once; a step without lines has an empty log.
    pub async fn read(&self, run_id: &RunId, job_id: &JobId, step_index: i64) -> std::io::Result<Vec<LogLine>> {
        if let Some(objects) = &self.objects {
            let lines = objects.read(run_id, job_id, step_index).await?;
            if !lines.is_empty() {
                return Ok(lines);
            }
        }
        self.files.read(run_id, job_id, step_index).await
    }

    /// Every step log of a job, by step index (one listing, not one per step).
    pub async fn read_job(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<BTreeMap<i64, Vec<LogLine>>> {
        let mut steps = self.files.read_job(run_id, job_id).await?;
        if let Some(objects) = &self.objects {
            // Object logs win over files written before the switch, step by step.
            steps.extend(objects.read_job(run_id, job_id).await?);
        }
        Ok(steps)
    }

    /// A job's agent reported its end: its steps' chunks are folded now.
    pub async fn job_ended(&self, run_id: &RunId, job_id: &JobId) {
        if let Some(objects) = &self.objects {
            objects
                .fold_where(|key| key.run_id == *run_id && key.job_id == *job_id)
                .await;
        }
    }

    /// Folds the chunks of steps that had no line for a minute (called every few seconds).
    pub async fn fold_idle(&self) {
        if let Some(objects) = &self.objects {
            let now = Instant::now();
            objects
                .fold_where_open(|segment| now.duration_since(segment.touched) >= SEGMENT_IDLE)
                .await;
        }
    }

    /// A step ended: its chunks are folded now.
    pub async fn step_ended(&self, run_id: &RunId, job_id: &JobId, step_index: i64) {
        if let Some(objects) = &self.objects {
            objects
                .fold_where(|key| key.run_id == *run_id && key.job_id == *job_id && key.step_index == step_index)
                .await;
        }
    }

    /// Appends one provisioning milestone of a job.
    pub async fn append_provisioning(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        line: &ProvisioningLine,
    ) -> std::io::Result<()> {
        match &self.objects {
            Some(objects) => objects.append_provisioning(run_id, job_id, line).await,
            None => self.files.append_provisioning(run_id, job_id, line).await,
        }
    }

    /// A job's provisioning milestones in time order; none when it has none.
    pub async fn read_provisioning(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<Vec<ProvisioningLine>> {
        if let Some(objects) = &self.objects {
            let lines = objects.read_provisioning(run_id, job_id).await?;
            if !lines.is_empty() {
                return Ok(lines);
            }
        }
        self.files.read_provisioning(run_id, job_id).await
    }

    /// Removes every log of a run (retention): its step logs and provisioning lines. A run
    /// without logs is not an error.
    pub async fn remove_run(&self, run_id: &RunId) -> std::io::Result<()> {
        if let Some(objects) = &self.objects {
            objects.remove_run(run_id).await?;
        }
        self.files.remove_run(run_id).await
    }
}

#[derive(Debug, Clone)]
struct Files {
    root: PathBuf,
    executions: PathBuf,
}

impl Files {
    fn new(data_dir: &Path) -> Files {
        Files {
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

    async fn append(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        step_index: i64,
        seq: u64,
        lines: &[(i64, String)],
    ) -> std::io::Result<()> {
        append(&self.path(run_id, job_id, step_index), &records(seq, lines)).await
    }

    async fn read(&self, run_id: &RunId, job_id: &JobId, step_index: i64) -> std::io::Result<Vec<LogLine>> {
        let Some(text) = read_if_present(&self.path(run_id, job_id, step_index)).await? else {
            return Ok(Vec::new());
        };
        let mut seen: HashSet<u64> = HashSet::new();
        Ok(chunks(&text)
            .into_iter()
            .filter(|(seq, _)| seen.insert(*seq))
            .flat_map(|(_, lines)| lines)
            .collect())
    }

    async fn read_job(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<BTreeMap<i64, Vec<LogLine>>> {
        let mut steps = BTreeMap::new();
        let mut dir = match tokio::fs::read_dir(self.root.join(run_id).join(job_id)).await {
            Ok(dir) => dir,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(steps),
            Err(err) => return Err(err),
        };
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name().to_string_lossy().to_string();
            let index = name
                .strip_prefix("step-")
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<i64>().ok());
            if let Some(index) = index {
                steps.insert(index, self.read(run_id, job_id, index).await?);
            }
        }
        Ok(steps)
    }

    fn provisioning_path(&self, run_id: &RunId, job_id: &JobId) -> PathBuf {
        self.executions
            .join(run_id)
            .join("jobs")
            .join(job_id)
            .join("provisioning.jsonl")
    }

    async fn append_provisioning(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        line: &ProvisioningLine,
    ) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).expect("provisioning lines serialize");
        text.push('\n');
        append(&self.provisioning_path(run_id, job_id), &text).await
    }

    async fn read_provisioning(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<Vec<ProvisioningLine>> {
        let Some(text) = read_if_present(&self.provisioning_path(run_id, job_id)).await? else {
            return Ok(Vec::new());
        };
        // A torn last line (crash mid-write) is skipped.
        let mut lines: Vec<ProvisioningLine> = text.lines().filter_map(|raw| serde_json::from_str(raw).ok()).collect();
        lines.sort_by_key(|line| line.ts);
        Ok(lines)
    }

    async fn remove_run(&self, run_id: &RunId) -> std::io::Result<()> {
        for dir in [self.root.join(run_id), self.executions.join(run_id)] {
            match tokio::fs::remove_dir_all(&dir).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }
}

async fn read_if_present(path: &Path) -> std::io::Result<Option<String>> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
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

/// The step index of an object key `…/step-<index>/<name>`.
fn step_of(key: &str) -> Option<i64> {
    key.rsplit('/').nth(1)?.strip_prefix("step-")?.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StepKey {
    run_id: RunId,
    job_id: JobId,
    step_index: i64,
}

impl StepKey {
    fn prefix(&self) -> String {
        format!("logs/{}/{}/step-{}", self.run_id, self.job_id, self.step_index)
    }

    fn chunk(&self, seq: u64) -> String {
        format!("{}/c-{seq:020}.jsonl", self.prefix())
    }
}

/// The chunks of one step written by this orchestrator and not yet folded into a segment.
#[derive(Debug)]
struct OpenSegment {
    seqs: Vec<u64>,
    text: String,
    touched: Instant,
}

#[derive(Debug, Default)]
struct OpenSegments {
    steps: HashMap<StepKey, OpenSegment>,
    /// Bytes of text held in `steps`.
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Objects {
    storage: Arc<Storage>,
    open: Arc<Mutex<OpenSegments>>,
}

fn storage_error(err: crate::storage::StorageError) -> std::io::Error {
    std::io::Error::other(err)
}

impl Objects {
    async fn append(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        step_index: i64,
        seq: u64,
        lines: &[(i64, String)],
    ) -> std::io::Result<()> {
        let key = StepKey {
            run_id: run_id.clone(),
            job_id: job_id.clone(),
            step_index,
        };
        let text = records(seq, lines);
        self.storage
            .put(&key.chunk(seq), text.clone().into_bytes())
            .await
            .map_err(storage_error)?;
        let now = Instant::now();
        let full = {
            let mut open = self.open.lock().expect("log segments lock");
            open.bytes += text.len();
            let over_budget = open.bytes > OPEN_BYTES_BUDGET;
            let segment = open.steps.entry(key.clone()).or_insert_with(|| OpenSegment {
                seqs: Vec::new(),
                text: String::new(),
                touched: now,
            });
            segment.seqs.push(seq);
            segment.text.push_str(&text);
            segment.touched = now;
            over_budget || segment.seqs.len() >= SEGMENT_CHUNKS || segment.text.len() >= SEGMENT_BYTES
        };
        if full {
            self.fold(&key).await;
        }
        Ok(())
    }

    async fn fold_where(&self, matches: impl Fn(&StepKey) -> bool) {
        let keys: Vec<StepKey> = {
            let open = self.open.lock().expect("log segments lock");
            open.steps.keys().filter(|key| matches(key)).cloned().collect()
        };
        for key in keys {
            self.fold(&key).await;
        }
    }

    async fn fold_where_open(&self, matches: impl Fn(&OpenSegment) -> bool) {
        let keys: Vec<StepKey> = {
            let open = self.open.lock().expect("log segments lock");
            open.steps
                .iter()
                .filter(|(_, segment)| matches(segment))
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in keys {
            self.fold(&key).await;
        }
    }

    /// Writes a step's open chunks as one segment object, then deletes their chunk objects.
    /// On failure the chunk objects stay, and readers still find every line.
    async fn fold(&self, key: &StepKey) {
        let segment = {
            let mut open = self.open.lock().expect("log segments lock");
            let Some(segment) = open.steps.remove(key) else {
                return;
            };
            open.bytes = open.bytes.saturating_sub(segment.text.len());
            segment
        };
        let (Some(first), Some(last)) = (segment.seqs.iter().min(), segment.seqs.iter().max()) else {
            return;
        };
        // One chunk is one object already.
        if first == last {
            return;
        }
        let name = format!("{}/s-{first:020}-{last:020}.jsonl", key.prefix());
        if let Err(err) = self.storage.put(&name, segment.text.into_bytes()).await {
            tracing::warn!(error = %err, "cannot fold a step's log chunks into a segment; they stay as chunks");
            return;
        }
        let chunks = segment.seqs.iter().map(|seq| key.chunk(*seq)).collect();
        if let Err(err) = self.storage.delete_many(chunks).await {
            tracing::warn!(error = %err, "cannot delete a step's folded log chunks; readers skip them");
        }
    }

    async fn read(&self, run_id: &RunId, job_id: &JobId, step_index: i64) -> std::io::Result<Vec<LogLine>> {
        let key = StepKey {
            run_id: run_id.clone(),
            job_id: job_id.clone(),
            step_index,
        };
        Ok(self
            .read_steps(&key.prefix())
            .await?
            .into_values()
            .next()
            .unwrap_or_default())
    }

    async fn read_job(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<BTreeMap<i64, Vec<LogLine>>> {
        self.read_steps(&format!("logs/{run_id}/{job_id}")).await
    }

    /// The step logs under `prefix` (a step's or a job's), by step index, each chunk once.
    async fn read_steps(&self, prefix: &str) -> std::io::Result<BTreeMap<i64, Vec<LogLine>>> {
        let mut steps: BTreeMap<i64, BTreeMap<u64, Vec<LogLine>>> = BTreeMap::new();
        let mut read: HashSet<String> = HashSet::new();
        // A chunk folded between the listing and its fetch is gone: its segment is in the next
        // listing. Objects never change, so what was read stays good.
        for _ in 0..READ_ATTEMPTS {
            let (objects, complete) = self.fetch_all(prefix, &read).await?;
            for (key, text) in objects {
                if let Some(index) = step_of(&key) {
                    let by_seq = steps.entry(index).or_default();
                    for (seq, lines) in chunks(&text) {
                        by_seq.entry(seq).or_insert(lines);
                    }
                }
                read.insert(key);
            }
            if complete {
                return Ok(steps
                    .into_iter()
                    .map(|(index, by_seq)| (index, by_seq.into_values().flatten().collect()))
                    .collect());
            }
        }
        Err(std::io::Error::other(format!(
            "the log under `{prefix}` kept changing while it was read ({READ_ATTEMPTS} listings)"
        )))
    }

    /// Every object under `prefix` but those in `skip`, as `(key, text)`, and whether none
    /// vanished between the listing and its fetch.
    async fn fetch_all(&self, prefix: &str, skip: &HashSet<String>) -> std::io::Result<(Vec<(String, String)>, bool)> {
        let mut listed = self.storage.list(prefix).await.map_err(storage_error)?;
        listed.retain(|(key, _)| !skip.contains(key));
        let fetched: Vec<(String, Result<Option<Vec<u8>>, _>)> = futures_util::stream::iter(listed)
            .map(|(key, _)| async move {
                let body = self.storage.get(&key).await;
                (key, body)
            })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut objects = Vec::new();
        let mut complete = true;
        for (key, body) in fetched {
            match body.map_err(storage_error)? {
                Some(bytes) => objects.push((key, String::from_utf8_lossy(&bytes).into_owned())),
                None => complete = false,
            }
        }
        Ok((objects, complete))
    }

    fn provisioning_prefix(run_id: &RunId, job_id: &JobId) -> String {
        format!("executions/{run_id}/jobs/{job_id}/provisioning")
    }

    async fn append_provisioning(
        &self,
        run_id: &RunId,
        job_id: &JobId,
        line: &ProvisioningLine,
    ) -> std::io::Result<()> {
        let key = format!(
            "{}/{:020}-{}.json",
            Self::provisioning_prefix(run_id, job_id),
            line.ts.max(0),
            crate::ids::new_id()
        );
        let body = serde_json::to_vec(line).expect("provisioning lines serialize");
        self.storage.put(&key, body).await.map_err(storage_error)
    }

    async fn read_provisioning(&self, run_id: &RunId, job_id: &JobId) -> std::io::Result<Vec<ProvisioningLine>> {
        let (objects, _) = self
            .fetch_all(&Self::provisioning_prefix(run_id, job_id), &HashSet::new())
            .await?;
        let mut lines: Vec<ProvisioningLine> = objects
            .iter()
            .filter_map(|(_, text)| serde_json::from_str(text).ok())
            .collect();
        lines.sort_by_key(|line| line.ts);
        Ok(lines)
    }

    async fn remove_run(&self, run_id: &RunId) -> std::io::Result<()> {
        for prefix in [format!("logs/{run_id}"), format!("executions/{run_id}")] {
            let keys = self.storage.list(&prefix).await.map_err(storage_error)?;
            self.storage
                .delete_many(keys.into_iter().map(|(key, _)| key).collect())
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replayed_chunks_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::files(dir.path());
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
        let whole = logs.read_job(&RunId::from("r"), &JobId::from("j")).await.unwrap();
        assert_eq!(whole.keys().copied().collect::<Vec<_>>(), [-1, 0]);
        assert_eq!(whole[&0].len(), 3);
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
        let logs = LogStore::files(dir.path());
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

    fn object_storage(dir: &Path) -> Arc<Storage> {
        Arc::new(
            Storage::open(
                &crate::storage::StorageConfig::Filesystem {
                    root: dir.join("objects"),
                    base_url: None,
                },
                &crate::secret_key::Keyring::new(crate::secret_key::SecretKey::generate().0, None),
            )
            .unwrap(),
        )
    }

    fn lines_of(seq: u64) -> Vec<(i64, String)> {
        vec![
            (seq as i64, format!("line {seq}a")),
            (seq as i64, format!("line {seq}b")),
        ]
    }

    async fn texts(logs: &LogStore, job: &str, step: i64) -> Vec<String> {
        logs.read(&RunId::from("r"), &JobId::from(job), step)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect()
    }

    async fn keys(storage: &Storage, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = storage
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys
    }

    /// Two orchestrators on one object store: what one writes the other reads, live (chunks)
    /// and folded (segments), each chunk once and in order, replays included.
    #[tokio::test]
    async fn object_logs_are_read_by_every_orchestrator_each_chunk_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = object_storage(dir.path());
        let writer = LogStore::objects(&dir.path().join("a"), storage.clone());
        let reader = LogStore::objects(&dir.path().join("b"), storage.clone());
        let (run, job) = (RunId::from("r"), JobId::from("j"));
        for seq in 1..=70 {
            writer.append(&run, &job, 0, seq, &lines_of(seq)).await.unwrap();
        }
        // Replays: one of a folded chunk, one of a chunk still open.
        writer.append(&run, &job, 0, 3, &lines_of(3)).await.unwrap();
        writer.append(&run, &job, 0, 68, &lines_of(68)).await.unwrap();
        let expected: Vec<String> = (1..=70)
            .flat_map(|seq| lines_of(seq).into_iter().map(|(_, l)| l))
            .collect();
        assert_eq!(texts(&reader, "j", 0).await, expected);
        let listed = keys(&storage, "logs/r/j/step-0").await;
        assert_eq!(
            listed.len(),
            1 + 7,
            "a segment of 64 chunks, then 7 chunk objects: {listed:?}"
        );
        assert_eq!(listed[7], format!("logs/r/j/step-0/s-{:020}-{:020}.jsonl", 1, 64));

        writer.job_ended(&run, &job).await;
        assert_eq!(texts(&reader, "j", 0).await, expected);
        let listed = keys(&storage, "logs/r/j/step-0").await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.iter().all(|key| key.contains("/s-")), "{listed:?}");
        assert!(texts(&reader, "other", 0).await.is_empty());
        writer.append(&run, &job, -1, 71, &lines_of(71)).await.unwrap();
        let whole = reader.read_job(&run, &job).await.unwrap();
        assert_eq!(whole.keys().copied().collect::<Vec<_>>(), [-1, 0]);
        assert_eq!(whole[&0].iter().map(|l| l.line.clone()).collect::<Vec<_>>(), expected);
        assert!(
            !dir.path().join("a/logs").exists(),
            "nothing is written to the data directory"
        );
    }

    #[tokio::test]
    async fn object_logs_read_files_written_before_and_a_run_is_removed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let storage = object_storage(dir.path());
        let (run, job) = (RunId::from("r"), JobId::from("j"));
        LogStore::files(dir.path())
            .append(&run, &job, 0, 1, &[(1, "from a file".into())])
            .await
            .unwrap();
        let logs = LogStore::objects(dir.path(), storage.clone());
        assert_eq!(texts(&logs, "j", 0).await, ["from a file"]);

        logs.append(&run, &job, 1, 2, &[(2, "in an object".into())])
            .await
            .unwrap();
        let milestone = |ts: i64, message: &str| ProvisioningLine {
            ts,
            phase: "provisioning".into(),
            event_type: "scaler.provisioning".into(),
            message: message.into(),
            agent_id: "a".into(),
        };
        logs.append_provisioning(&run, &job, &milestone(20, "second"))
            .await
            .unwrap();
        logs.append_provisioning(&run, &job, &milestone(10, "first"))
            .await
            .unwrap();
        let other = LogStore::objects(&dir.path().join("other"), storage.clone());
        let messages: Vec<String> = other
            .read_provisioning(&run, &job)
            .await
            .unwrap()
            .into_iter()
            .map(|line| line.message)
            .collect();
        assert_eq!(messages, ["first", "second"]);
        assert_eq!(texts(&other, "j", 1).await, ["in an object"]);

        logs.remove_run(&run).await.unwrap();
        assert!(keys(&storage, "logs/r").await.is_empty());
        assert!(keys(&storage, "executions/r").await.is_empty());
        assert!(texts(&logs, "j", 0).await.is_empty());
        assert!(other.read_provisioning(&run, &job).await.unwrap().is_empty());
    }
}
