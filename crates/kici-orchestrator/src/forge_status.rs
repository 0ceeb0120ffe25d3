//! Reporting runs back to forges. A run of a generic source whose preset has a status API
//! (`kici_engine::forge`) and which holds a token (its clone credentials' password, a PAT) sets
//! commit statuses; a run of a GitHub App source sets check runs (with an installation token).
//! Either way the run is `kici/<workflow>` and each job `kici/<workflow>/job/<job>` (and a
//! GitHub App run also `kici/<workflow>/setup`), moving pending → running → success / failure /
//! cancelled as the run does, each linking to the run on the dashboard (`KICI_DASHBOARD_URL`),
//! with the failure as the description. They are sent when they change, in order, with three
//! tries; a forge that refuses them is logged and never holds up a run.

use std::collections::HashMap;
use std::time::Duration;

use kici_engine::forge::{self, CheckRun, CommitState, CommitStatus, ForgeApi};
use kici_engine::ids::RunId;
use kici_engine::protocol::JobKind;
use kici_store::{Source, SourceKind};
use tokio::sync::watch;

use crate::state::Shared;

/// How long one status request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of one status, a second apart and then two.
const TRIES: u32 = 3;

/// The API a source reports to and its base URL, when it reports commit statuses.
pub fn target_api(source: &Source) -> Option<(ForgeApi, String)> {
    if source.kind != SourceKind::Generic || source.credentials.is_none() {
        return None;
    }
    let api = ForgeApi::of_preset(source.preset.as_deref()?)?;
    let url = match &source.api_url {
        Some(url) => url.clone(),
        None => api.default_base_url(source.git_url.as_deref()?)?,
    };
    Some((api, url))
}

pub async fn run(state: Shared, mut shutdown: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the HTTP client for commit statuses; none are reported");
            return;
        }
    };
    // What each context of each run last showed, so only changes are sent.
    let mut shown = Shown::default();
    loop {
        tokio::select! {
            _ = state.forge_watch.wait() => {}
            _ = shutdown.changed() => return,
        }
        for run_id in state.forge_watch.take() {
            if let Err(err) = report(&state, &client, &run_id, &mut shown).await {
                tracing::warn!(runId = %run_id, error = %err, "commit statuses not reported");
            }
        }
    }
}

/// What each context of each run last showed (and a check run's id), so only changes are sent.
#[derive(Default)]
struct Shown {
    statuses: HashMap<RunId, HashMap<String, CommitStatus>>,
    checks: HashMap<RunId, HashMap<String, (u64, CheckRun)>>,
}

/// The statuses a run shows now, the run's then each job's, each with KiCI's status word.
async fn statuses(
    state: &Shared,
    run_id: &RunId,
) -> Result<Option<(kici_engine::api::Run, Vec<(CommitStatus, &'static str)>)>, kici_store::StoreError> {
    let Some(run) = state.store.get_run(run_id).await? else {
        return Ok(None);
    };
    let link = state
        .config
        .dashboard_url
        .as_ref()
        .map(|base| format!("{}/runs/{run_id}", base.trim_end_matches('/')));
    let run_state = CommitState::of_run(run.status);
    let mut statuses = vec![(
        CommitStatus {
            context: forge::run_context(&run.workflow_name),
            state: run_state,
            description: forge::description(run_state, run.status.as_str(), run.failure_reason.as_deref()),
            target_url: link.clone(),
        },
        run.status.as_str(),
    )];
    for job in state.store.run_jobs(run_id, false).await? {
        if job.kind != JobKind::Execute {
            continue;
        }
        let job_state = CommitState::of_job(job.job.status);
        statuses.push((
            CommitStatus {
                context: forge::job_context(&run.workflow_name, &job.job.job_name),
                state: job_state,
                description: forge::description(job_state, job.job.status.as_str(), job.job.error_message.as_deref()),
                target_url: link.clone(),
            },
            job.job.status.as_str(),
        ));
    }
    Ok(Some((run, statuses)))
}

async fn report(state: &Shared, client: &reqwest::Client, run_id: &RunId, shown: &mut Shown) -> Result<(), String> {
    let Some((run, statuses)) = statuses(state, run_id).await.map_err(|err| err.to_string())? else {
        return Ok(());
    };
    let source = state
        .store
        .get_source(&run.source_id)
        .await
        .map_err(|err| err.to_string())?;
    let Some(source) = source.as_ref() else {
        return Ok(());
    };
    if source.kind == SourceKind::GitHubApp {
        let result = checks(
            state,
            source,
            &run,
            statuses,
            shown.checks.entry(run_id.clone()).or_default(),
        )
        .await;
        if run.status.is_terminal() {
            shown.checks.remove(run_id);
        }
        return result;
    }
    let Some((api, base_url)) = target_api(source) else {
        return Ok(());
    };
    let token = crate::source_secrets::credentials(&state.config.secret_keys, source)
        .map_err(|err| format!("cannot decrypt the token of source `{}`: {err}", source.name))?
        .map(|c| c.password)
        .unwrap_or_default();
    // An SSH key clones; it does not set statuses.
    if token.is_empty() {
        return Ok(());
    }
    let run_shown = shown.statuses.entry(run_id.clone()).or_default();
    for (status, _) in statuses {
        if run_shown.get(&status.context) == Some(&status) {
            continue;
        }
        let request = forge::status_request(api, &base_url, &run.repo, &run.sha, &token, &status);
        send(client, &request)
            .await
            .map_err(|err| format!("{} {}: {err}", status.context, status.state.on(api)))?;
        run_shown.insert(status.context.clone(), status);
    }
    if run.status.is_terminal() {
        shown.statuses.remove(run_id);
    }
    Ok(())
}

/// A GitHub App run's check runs: `setup` (did the lock file give jobs), the run, each job;
/// created the first time, then updated.
async fn checks(
    state: &Shared,
    source: &Source,
    run: &kici_engine::api::Run,
    statuses: Vec<(CommitStatus, &'static str)>,
    shown: &mut HashMap<String, (u64, CheckRun)>,
) -> Result<(), String> {
    let event = state
        .store
        .run_context(&run.run_id)
        .await
        .map_err(|err| err.to_string())?
        .map(|inputs| inputs.event);
    let installation = event
        .as_ref()
        .and_then(crate::github_app::installation_id)
        .ok_or("the run's webhook names no installation")?;
    let token = state
        .github
        .installation_token(
            &state.config.secret_keys,
            source,
            (installation, crate::github_app::TokenScope::Installation),
            crate::clock::now_ms(),
        )
        .await
        .map_err(|err| err.to_string())?;
    let base_url = crate::github_app::api_base(source);
    let workflow = &run.workflow_name;
    let setup = match &run.init_failure {
        Some(init) => (
            CommitState::Failure,
            "failed".to_string(),
            format!("Failed: {}", init.message),
        ),
        None => (
            CommitState::Success,
            "success".to_string(),
            "The lock file was read and the run's jobs created".to_string(),
        ),
    };
    let link = statuses.first().and_then(|(s, _)| s.target_url.clone());
    let mut all = vec![CheckRun {
        name: format!("{}/setup", forge::run_context(workflow)),
        state: setup.0,
        status: setup.1,
        title: forge::description(setup.0, "", None),
        summary: setup.2,
        details_url: link,
        external_id: format!("{}/setup", run.run_id),
    }];
    for (status, word) in statuses {
        all.push(CheckRun {
            external_id: format!("{}/{}", run.run_id, status.context),
            name: status.context,
            state: status.state,
            status: word.to_string(),
            title: status.description.clone(),
            summary: status.description,
            details_url: status.target_url,
        });
    }
    // Check runs another orchestrator, or this one before a restart, created.
    let stored = state
        .store
        .check_run_ids(&run.run_id)
        .await
        .map_err(|err| err.to_string())?;
    for check in all {
        let known = shown.get(&check.name).map(|(id, last)| (*id, Some(last))).or_else(|| {
            stored
                .get(&check.name)
                .and_then(|id| u64::try_from(*id).ok())
                .map(|id| (id, None))
        });
        if known.is_some_and(|(_, last)| last == Some(&check)) {
            continue;
        }
        let request = forge::check_run_request(&base_url, &run.repo, &run.sha, &token, known.map(|(id, _)| id), &check);
        let answer = send(state.github.client(), &request)
            .await
            .map_err(|err| format!("check run {}: {err}", check.name))?;
        let id = match known {
            Some((id, _)) => id,
            None => {
                let id = answer
                    .get("id")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| format!("check run {}: GitHub answered no id", check.name))?;
                state
                    .store
                    .save_check_run_id(&run.run_id, &check.name, i64::try_from(id).unwrap_or(i64::MAX))
                    .await
                    .map_err(|err| err.to_string())?;
                id
            }
        };
        shown.insert(check.name.clone(), (id, check));
    }
    Ok(())
}

/// Sends a request, three tries; the forge's JSON answer.
async fn send(client: &reqwest::Client, request: &forge::ApiRequest) -> Result<serde_json::Value, String> {
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut builder = client
            .request(method, &request.url)
            .header("User-Agent", "kici-orchestrator")
            .json(&request.body);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        match builder.send().await {
            Ok(response) if response.status().is_success() => {
                return Ok(response.json().await.unwrap_or(serde_json::Value::Null));
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                last = format!("the forge answered {status}: {}", kici_engine::excerpt::excerpt(&body));
                // A refusal other than a rate limit or a server error will not change.
                if status.is_client_error() && status.as_u16() != 429 {
                    break;
                }
            }
            Err(err) => last = format!("request failed: {err}"),
        }
    }
    Err(last)
}
