//! The load harness: simulated agents that speak the real protocol (auth, register, heartbeat,
//! ack, log chunks, step and job statuses; they drop their connection at random mid-job and
//! carry the job to the next orchestrator URL, as a real agent does) without running anything,
//! so the orchestrators alone are measured. `benches/load.rs` (`scripts/load.sh`) prints the
//! figures; `tests/load.rs` checks the guarantees under the same load at a smaller size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kici_engine::build_info::BuildInfo;
use kici_engine::ids::{AgentId, JobId, RunId};
use kici_engine::protocol::{
    AgentMessage, InFlightJob, JobDispatch, JobStatusUpdate, LogChunk, LogLine, OrchestratorMessage, PROTOCOL_VERSION,
    Registration, RejectReason, StepStatusUpdate,
};
use kici_engine::status::{JobStatus, StepStatus};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What one simulated agent is and does.
#[derive(Debug, Clone)]
pub struct SimAgent {
    /// Orchestrator WebSocket URLs, dialled in turn when a connection is lost.
    pub urls: Vec<String>,
    pub token: String,
    pub agent_id: String,
    pub labels: Vec<String>,
    pub build_info: BuildInfo,
    /// The chance that the connection drops in the middle of a job.
    pub disconnect_per_job: f64,
    /// Log chunks per job, and lines per chunk, of `line_bytes` each.
    pub chunks_per_job: usize,
    pub lines_per_chunk: usize,
    pub line_bytes: usize,
    pub heartbeat: Duration,
    pub seed: u64,
    /// Go silent after this many messages of a job (keeping the connection): a hung job.
    pub stall_after: Option<usize>,
}

/// What the simulated agents saw, shared by all of them.
#[derive(Debug, Default)]
pub struct Stats {
    /// `job.dispatch` messages taken on, by job: a job dispatched twice ran twice.
    pub dispatches: Mutex<HashMap<JobId, u32>>,
    /// Jobs whose last status the orchestrator acknowledged.
    pub finished: AtomicU64,
    /// Log lines of finished jobs, by job: every one was acknowledged.
    pub acked_lines: Mutex<HashMap<JobId, (RunId, Vec<String>)>>,
    pub acked_log_bytes: AtomicU64,
    /// Connections dropped on purpose mid-job.
    pub drops: AtomicU64,
    /// Connections that ended without the agent dropping them (an orchestrator died).
    pub lost: AtomicU64,
    pub connected: AtomicU64,
}

impl Stats {
    /// Jobs dispatched more than once.
    pub fn dispatched_twice(&self) -> Vec<JobId> {
        let dispatches = self.dispatches.lock().expect("stats lock");
        dispatches
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(job, _)| job.clone())
            .collect()
    }
}

/// Simulated agents running as tasks; stopped on drop.
pub struct Fleet {
    pub stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Fleet {
    pub fn start(agents: Vec<SimAgent>) -> Fleet {
        let stats = Arc::new(Stats::default());
        let tasks = agents
            .into_iter()
            .map(|agent| tokio::spawn(run_agent(agent, stats.clone())))
            .collect();
        Fleet { stats, tasks }
    }

    /// Waits until `n` jobs finished; false after `limit`.
    pub async fn wait_finished(&self, n: u64, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.stats.finished.load(Ordering::SeqCst) < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// A tiny deterministic generator: each agent's drops follow from its seed.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

/// A job an agent ran or runs: every message it sends for it, in order, how many went out
/// and how far they were acknowledged. It runs until every message went out (the agent is
/// then free, as a real agent is once it reported the end), and is kept until all are
/// acknowledged.
struct HeldJob {
    run_id: RunId,
    job_id: JobId,
    messages: Vec<AgentMessage>,
    sent: usize,
    acked: u64,
    lines: Vec<String>,
    log_bytes: u64,
}

impl HeldJob {
    fn new(dispatch: &JobDispatch, agent: &SimAgent) -> HeldJob {
        let (run_id, job_id) = (dispatch.run_id.clone(), dispatch.job_id.clone());
        let now = now_ms();
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        let step = |seq: u64, state: StepStatus| {
            AgentMessage::StepStatus(Box::new(StepStatusUpdate {
                run_id: run_id.clone(),
                job_id: job_id.clone(),
                seq,
                step_index: 0,
                step_name: "noop".into(),
                step_type: "script".into(),
                state,
                timestamp: now,
                exit_code: (state == StepStatus::Success).then_some(0),
                duration_ms: (state == StepStatus::Success).then_some(1),
                error: None,
                secrets_accessed: vec![],
            }))
        };
        let status = |seq: u64, state: JobStatus| {
            AgentMessage::JobStatus(Box::new(JobStatusUpdate {
                duration_ms: state.is_terminal().then_some(1),
                ..JobStatusUpdate::new(run_id.clone(), job_id.clone(), seq, state, now)
            }))
        };
        let mut messages = vec![
            AgentMessage::JobAck {
                run_id: run_id.clone(),
                job_id: job_id.clone(),
                seq: next(),
                timestamp: now,
            },
            status(next(), JobStatus::Running),
            step(next(), StepStatus::Running),
        ];
        let mut lines = Vec::new();
        let mut log_bytes = 0;
        for chunk in 0..agent.chunks_per_job {
            let chunk_lines: Vec<LogLine> = (0..agent.lines_per_chunk)
                .map(|i| {
                    let mut line = format!("{job_id} chunk {chunk} line {i} ");
                    let pad = agent.line_bytes.saturating_sub(line.len());
                    line.extend(std::iter::repeat_n('x', pad));
                    log_bytes += line.len() as u64;
                    LogLine { ts: now, line }
                })
                .collect();
            lines.extend(chunk_lines.iter().map(|l| l.line.clone()));
            messages.push(AgentMessage::LogChunk(LogChunk {
                run_id: run_id.clone(),
                job_id: job_id.clone(),
                seq: next(),
                step_index: 0,
                lines: chunk_lines,
            }));
        }
        messages.push(step(next(), StepStatus::Success));
        messages.push(status(next(), JobStatus::Success));
        HeldJob {
            run_id,
            job_id,
            messages,
            sent: 0,
            acked: 0,
            lines,
            log_bytes,
        }
    }

    fn last_seq(&self) -> u64 {
        self.messages.len() as u64
    }

    fn running(&self) -> bool {
        self.sent < self.messages.len()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn text(message: &AgentMessage) -> Message {
    Message::Text(serde_json::to_string(message).expect("agent messages serialize").into())
}

enum Ended {
    /// The agent dropped the connection on purpose.
    Dropped,
    /// The orchestrator closed it or could not be reached.
    Lost,
}

async fn run_agent(agent: SimAgent, stats: Arc<Stats>) {
    let mut rng = Rng(agent.seed.max(1));
    let mut held: Vec<HeldJob> = Vec::new();
    let mut url = 0;
    loop {
        let ended = connection(&agent, &stats, &mut rng, &mut held, &agent.urls[url % agent.urls.len()]).await;
        url += 1;
        match ended {
            Ended::Dropped => stats.drops.fetch_add(1, Ordering::SeqCst),
            Ended::Lost => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stats.lost.fetch_add(1, Ordering::SeqCst)
            }
        };
    }
}

async fn connection(agent: &SimAgent, stats: &Stats, rng: &mut Rng, held: &mut Vec<HeldJob>, url: &str) -> Ended {
    let Ok((socket, _)) = tokio_tungstenite::connect_async(url).await else {
        return Ended::Lost;
    };
    let (mut sink, mut stream) = socket.split();
    let registration = Registration {
        agent_id: AgentId::from(agent.agent_id.clone()),
        labels: agent
            .labels
            .iter()
            .cloned()
            .chain(kici_engine::labels::system_labels("linux", "x86_64", "load"))
            .collect(),
        platform: "linux".into(),
        arch: "x86_64".into(),
        hostname: "load".into(),
        version: "0.0.0".into(),
        build_info: agent.build_info.clone(),
        in_flight_jobs: held
            .iter()
            .map(|job| InFlightJob {
                run_id: job.run_id.clone(),
                job_id: job.job_id.clone(),
            })
            .collect(),
        id_generated: false,
    };
    let mut hello = vec![
        AgentMessage::AuthRequest {
            token: agent.token.clone(),
            protocol_version: PROTOCOL_VERSION,
        },
        AgentMessage::Register(Box::new(registration)),
    ];
    // Jobs carried over from a lost connection: what was not acknowledged goes again, then
    // what was never sent.
    for job in held.iter_mut() {
        hello.extend(job.messages.iter().skip(job.acked as usize).cloned());
        job.sent = job.messages.len();
    }
    for message in &hello {
        if sink.send(text(message)).await.is_err() {
            return Ended::Lost;
        }
    }
    stats.connected.fetch_add(1, Ordering::SeqCst);
    let mut heartbeat = tokio::time::interval(agent.heartbeat);
    let ended = loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if sink.send(text(&AgentMessage::Heartbeat { timestamp: now_ms() })).await.is_err() {
                    break Ended::Lost;
                }
            }
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break Ended::Lost };
                let Message::Text(body) = frame else { continue };
                let Ok(message) = serde_json::from_str::<OrchestratorMessage>(&body) else { continue };
                match message {
                    OrchestratorMessage::JobDispatch(dispatch) => {
                        if held.iter().any(HeldJob::running) {
                            let reject = AgentMessage::JobReject {
                                run_id: dispatch.run_id.clone(),
                                job_id: dispatch.job_id.clone(),
                                reason: RejectReason::Busy,
                            };
                            if sink.send(text(&reject)).await.is_err() {
                                break Ended::Lost;
                            }
                            continue;
                        }
                        *stats
                            .dispatches
                            .lock()
                            .expect("stats lock")
                            .entry(dispatch.job_id.clone())
                            .or_default() += 1;
                        let mut job = HeldJob::new(&dispatch, agent);
                        // A drop sends half the job's messages, then closes without a word.
                        let drop_here = rng.chance(agent.disconnect_per_job);
                        let count = if drop_here { job.messages.len() / 2 } else { job.messages.len() };
                        let count = count.min(agent.stall_after.unwrap_or(usize::MAX));
                        let mut failed = false;
                        for message in job.messages.iter().take(count) {
                            if sink.send(text(message)).await.is_err() {
                                failed = true;
                                break;
                            }
                            job.sent += 1;
                        }
                        held.push(job);
                        if failed {
                            break Ended::Lost;
                        }
                        if drop_here {
                            break Ended::Dropped;
                        }
                    }
                    OrchestratorMessage::Ack { job_id, seq } => {
                        let Some(at) = held.iter().position(|job| job.job_id == job_id) else { continue };
                        held[at].acked = held[at].acked.max(seq);
                        if held[at].acked >= held[at].last_seq() {
                            let job = held.remove(at);
                            stats.acked_log_bytes.fetch_add(job.log_bytes, Ordering::SeqCst);
                            stats
                                .acked_lines
                                .lock()
                                .expect("stats lock")
                                .insert(job.job_id, (job.run_id, job.lines));
                            stats.finished.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {}
                }
            }
        }
    };
    stats.connected.fetch_sub(1, Ordering::SeqCst);
    ended
}

/// A jobs scenario: `runs` pushes of a workflow whose matrix has `matrix` no-op jobs, through
/// `orchestrators` orchestrators (more than one needs PostgreSQL and S3) and `agents`
/// simulated agents.
#[derive(Debug, Clone)]
pub struct JobsLoad {
    pub orchestrators: usize,
    pub agents: usize,
    pub runs: usize,
    pub matrix: usize,
    pub disconnect_per_job: f64,
    /// SIGKILL the first orchestrator once half the jobs finished.
    pub kill_one: bool,
    pub chunks_per_job: usize,
    pub lines_per_chunk: usize,
    /// Read every job's log back from every live orchestrator and compare.
    pub check_logs: bool,
    /// Jobs no agent fits, queued before the others (rounded up to whole runs of `matrix`):
    /// they wait the whole time.
    pub backlog: usize,
}

/// What a jobs scenario measured and what it found wrong (empty when every guarantee held).
#[derive(Debug)]
pub struct JobsReport {
    pub jobs: usize,
    /// From the first webhook to the last job's final acknowledgement.
    pub elapsed: Duration,
    pub drops: u64,
    pub lost: u64,
    pub problems: Vec<String>,
}

impl JobsReport {
    pub fn jobs_per_second(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs a jobs scenario on `stack` (started with the database and storage to measure).
pub async fn run_jobs(load: &JobsLoad, build_info: BuildInfo, mut stack: crate::Stack) -> JobsReport {
    let peers: Vec<crate::Service> = (1..load.orchestrators)
        .map(|i| stack.start_peer(&format!("peer-{i}")))
        .collect();
    let mut ports = vec![stack.orchestrator.port];
    ports.extend(peers.iter().map(|p| p.port));
    let mut peers: Vec<Option<crate::Service>> = peers.into_iter().map(Some).collect();
    let mut agents = register_agents(&stack, &ports, load.agents, &build_info).await;
    for agent in &mut agents {
        agent.disconnect_per_job = load.disconnect_per_job;
        agent.chunks_per_job = load.chunks_per_job;
        agent.lines_per_chunk = load.lines_per_chunk;
    }
    let fleet = Fleet::start(agents);
    let payload = load_source(&stack, load.matrix).await;
    let total = load.runs * load.matrix;
    let mut problems = Vec::new();
    if let Err(err) = queue_backlog(stack.client(), ports[0], &payload, load.matrix, load.backlog).await {
        problems.push(format!("backlog: {err}"));
    }

    let started = std::time::Instant::now();
    let mut run_ids = Vec::new();
    for i in 0..load.runs {
        let port = ports[i % ports.len()];
        match send_webhook(stack.client(), port, &payload).await {
            Ok(ids) => run_ids.extend(ids),
            Err(err) => problems.push(err),
        }
    }
    let mut killed = None;
    if load.kill_one && ports.len() > 1 {
        fleet.wait_finished(total as u64 / 2, Duration::from_secs(600)).await;
        let first_peer = peers[0].take().expect("the first peer");
        let mut dead = std::mem::replace(&mut stack.orchestrator, first_peer);
        dead.kill();
        killed = Some(ports[0]);
    }
    if !fleet.wait_finished(total as u64, Duration::from_secs(900)).await {
        problems.push(format!(
            "only {} of {total} jobs finished",
            fleet.stats.finished.load(Ordering::SeqCst)
        ));
    }
    let elapsed = started.elapsed();

    let live: Vec<u16> = ports.iter().copied().filter(|p| Some(*p) != killed).collect();
    problems.extend(check(&stack, load, &fleet.stats, &run_ids, &live, total).await);
    JobsReport {
        jobs: total,
        elapsed,
        drops: fleet.stats.drops.load(Ordering::SeqCst),
        lost: fleet.stats.lost.load(Ordering::SeqCst),
        problems,
    }
}

/// `count` simulated agents, each with a token of its own and the URLs of the orchestrators on
/// `ports`, starting at another one each (they fail over to the next); no drops, one chunk of
/// five 100-byte lines per job, a heartbeat every 30 s (a real agent's default).
pub async fn register_agents(
    stack: &crate::Stack,
    ports: &[u16],
    count: usize,
    build_info: &BuildInfo,
) -> Vec<SimAgent> {
    let mut agents = Vec::new();
    for i in 0..count {
        let agent_id = format!("load-{i}");
        agents.push(SimAgent {
            urls: (0..ports.len())
                .map(|k| format!("ws://127.0.0.1:{}/ws", ports[(i + k) % ports.len()]))
                .collect(),
            token: stack.agent_token(&agent_id, &["load"]).await,
            agent_id,
            labels: vec!["load".into()],
            build_info: build_info.clone(),
            disconnect_per_job: 0.0,
            chunks_per_job: 1,
            lines_per_chunk: 5,
            line_bytes: 100,
            heartbeat: Duration::from_secs(30),
            seed: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
            stall_after: None,
        });
    }
    agents
}

/// Adds source `app`: a repository whose `load` branch runs `matrix` no-op jobs per push (and
/// whose `backlog` branch queues as many jobs no agent fits); the `load` push webhook's body.
pub async fn load_source(stack: &crate::Stack, matrix: usize) -> serde_json::Value {
    let repo = crate::Repo::from_fixture(stack.dir.path(), "tests/load-repo");
    let shards: Vec<String> = (0..matrix).map(|i| format!("'{i}'")).collect();
    for file in [".kici/workflows/load.ts", ".kici/workflows/backlog.ts"] {
        let workflow = std::fs::read_to_string(repo.work().join(file))
            .expect("the load workflows")
            .replace("shard: ['0']", &format!("shard: [{}]", shards.join(", ")));
        repo.write(file, &workflow);
    }
    repo.compile();
    repo.commit_and_push("load");
    repo.push_to("load");
    repo.push_to("backlog");
    // Bursts go past the default 600 deliveries a minute.
    stack
        .post(
            "/api/v1/admin/sources",
            &serde_json::json!({
                "kind": "local",
                "name": "app",
                "path": repo.origin().display().to_string(),
                "rateLimitRpm": 60_000,
            }),
        )
        .await;
    repo.push_payload("app", "load")
}

/// Queues `jobs` jobs no agent fits, in whole runs of the `matrix` [`load_source`] was given,
/// through the `backlog` branch of its repository (`payload` is its webhook body).
pub async fn queue_backlog(
    client: &reqwest::Client,
    port: u16,
    payload: &serde_json::Value,
    matrix: usize,
    jobs: usize,
) -> Result<(), String> {
    let mut backlog = payload.clone();
    backlog["ref"] = "refs/heads/backlog".into();
    for _ in 0..jobs.div_ceil(matrix) {
        send_webhook(client, port, &backlog).await?;
    }
    Ok(())
}

/// Sends `count` push webhooks for source `app` at `per_second` to the orchestrator on
/// `port`; how long each took to answer (the answer comes once its runs are created).
pub async fn webhook_burst(
    client: &reqwest::Client,
    port: u16,
    payload: &serde_json::Value,
    count: usize,
    per_second: usize,
) -> Result<Vec<Duration>, String> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    let mut sent = tokio::task::JoinSet::new();
    for _ in 0..count {
        tick.tick().await;
        let (client, payload) = (client.clone(), payload.clone());
        sent.spawn(async move {
            let started = std::time::Instant::now();
            send_webhook(&client, port, &payload).await.map(|_| started.elapsed())
        });
    }
    let mut took = Vec::new();
    while let Some(answer) = sent.join_next().await {
        took.push(answer.map_err(|err| err.to_string())??);
    }
    Ok(took)
}

async fn send_webhook(client: &reqwest::Client, port: u16, payload: &serde_json::Value) -> Result<Vec<String>, String> {
    let response = client
        .post(format!("http://127.0.0.1:{port}/webhook/default/generic/app"))
        .bearer_auth(crate::ADMIN_TOKEN)
        .header("x-event-type", "push")
        .header("x-delivery-id", crate::random_id())
        .json(payload)
        .send()
        .await
        .map_err(|err| format!("webhook to :{port}: {err}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.map_err(|err| format!("webhook answer: {err}"))?;
    if !status.is_success() {
        return Err(format!("webhook to :{port} answered {status}: {answer}"));
    }
    Ok(crate::Stack::run_ids(&answer))
}

/// Every run succeeded with all its jobs, no job was dispatched twice, and every acknowledged
/// log line is read back, once and in order, from every live orchestrator.
async fn check(
    stack: &crate::Stack,
    load: &JobsLoad,
    stats: &Stats,
    run_ids: &[String],
    live: &[u16],
    total: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let twice = stats.dispatched_twice();
    if !twice.is_empty() {
        problems.push(format!(
            "{} jobs were dispatched more than once: {:?}",
            twice.len(),
            twice
        ));
    }
    // A webhook answered before its runs were created (past the answer budget under load)
    // lists none; the agents saw them.
    let mut run_ids: Vec<String> = run_ids.to_vec();
    for (run_id, _) in stats.acked_lines.lock().expect("stats lock").values() {
        if !run_ids.iter().any(|r| r == run_id.as_str()) {
            run_ids.push(run_id.to_string());
        }
    }
    if run_ids.len() != load.runs {
        problems.push(format!("{} runs were seen; {} expected", run_ids.len(), load.runs));
    }
    let mut jobs = 0;
    for run_id in &run_ids {
        let detail = stack.wait_run(run_id).await;
        jobs += detail.jobs.len();
        if detail.run.status != kici_engine::status::RunStatus::Success {
            problems.push(format!("run {run_id} ended {}", detail.run.status));
        }
        for job in detail.jobs.iter().filter(|j| j.status != JobStatus::Success) {
            problems.push(format!("job {} of run {run_id} ended {}", job.job_id, job.status));
        }
    }
    if jobs != total {
        problems.push(format!("{jobs} jobs were created; {total} expected"));
    }
    if !load.check_logs {
        return problems;
    }
    let acked = stats.acked_lines.lock().expect("stats lock").clone();
    for port in live {
        for run_id in &run_ids {
            let logs: kici_engine::api::RunLogs = match stack
                .client()
                .get(format!("http://127.0.0.1:{port}/api/v1/runs/{run_id}/logs"))
                .bearer_auth(crate::ADMIN_TOKEN)
                .send()
                .await
            {
                Ok(response) => match response.json().await {
                    Ok(logs) => logs,
                    Err(err) => {
                        problems.push(format!("logs of run {run_id} from :{port}: {err}"));
                        continue;
                    }
                },
                Err(err) => {
                    problems.push(format!("logs of run {run_id} from :{port}: {err}"));
                    continue;
                }
            };
            let mut read: HashMap<JobId, Vec<String>> = HashMap::new();
            for step in logs.steps {
                read.entry(step.job_id)
                    .or_default()
                    .extend(step.lines.into_iter().map(|l| l.line));
            }
            for (job_id, (job_run, lines)) in acked.iter().filter(|(_, (r, _))| r.as_str() == run_id) {
                let got = read.get(job_id).cloned().unwrap_or_default();
                if &got != lines {
                    problems.push(format!(
                        "job {job_id} of run {job_run} from :{port}: {} lines read, {} acknowledged",
                        got.len(),
                        lines.len()
                    ));
                }
            }
        }
    }
    problems
}
