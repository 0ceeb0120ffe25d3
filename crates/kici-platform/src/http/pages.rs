//! The browser side: sign-in and sign-out, the runs list (and its rows for live updates), a
//! run's page, and the embedded assets. Pages read the cache like the API does and render with
//! [`crate::ui`]; the page script then talks to the API with the session cookie.

use axum::Form;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kici_engine::platform_protocol::PlatformRequest;
use serde::Deserialize;

use super::auth::{Principal, SESSION_COOKIE, principal_for_token, session_id};
use super::error::ApiResult;
use super::runs::{find_run, freshness};
use crate::cache::RunFilter;
use crate::state::Shared;
use crate::ui;

const PAGE_SIZE: i64 = 20;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a local path may follow sign-in, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") => path.to_string(),
        _ => "/runs".to_string(),
    }
}

pub async fn login_form(Query(query): Query<LoginQuery>) -> Html<String> {
    Html(ui::login_page(None, &safe_next(query.next.as_deref())))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(State(state): State<Shared>, Form(form): Form<LoginForm>) -> ApiResult<Response> {
    let next = safe_next(form.next.as_deref());
    let Some(principal) = principal_for_token(&state, form.token.trim()).await? else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            Html(ui::login_page(Some("That token is not valid."), &next)),
        )
            .into_response());
    };
    tracing::info!(user = %principal.name, "signed in");
    let id = state.browser_sessions.create(principal);
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

pub async fn logout(State(state): State<Shared>, request: Request) -> Response {
    if let Some(id) = session_id(&request) {
        state.browser_sessions.remove(&id);
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

fn filter(query: &ui::RunsFilter) -> RunFilter {
    let text = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    RunFilter {
        statuses: query
            .status
            .as_deref()
            .and_then(|s| s.parse().ok())
            .into_iter()
            .collect(),
        workflow: text(&query.workflow),
        repo: text(&query.repository),
        branch: text(&query.branch),
        since: None,
        limit: PAGE_SIZE,
        offset: (query.page.unwrap_or(1).max(1) - 1) * PAGE_SIZE,
    }
}

pub async fn runs(
    State(state): State<Shared>,
    Query(query): Query<ui::RunsFilter>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Html<String>> {
    let (runs, total) = state.cache.list_runs(&filter(&query)).await?;
    Ok(Html(ui::runs_page(&runs, total, &query, &principal.name, PAGE_SIZE)))
}

/// The list's rows alone, for the page script's live updates.
pub async fn runs_rows(State(state): State<Shared>, Query(query): Query<ui::RunsFilter>) -> ApiResult<Html<String>> {
    let (runs, _) = state.cache.list_runs(&filter(&query)).await?;
    Ok(Html(ui::runs_rows(&runs)))
}

pub async fn run(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Html<String>> {
    let cached = find_run(&state, &run_id).await?;
    let jobs = state.cache.run_jobs(&run_id).await?;
    let events = state.cache.run_events(&run_id).await?;
    let (online, stale) = freshness(&state, &cached).await?;
    Ok(Html(ui::run_page(&ui::RunPage {
        run: &cached.run,
        jobs: &jobs,
        events: &events,
        orchestrator_online: online,
        stale,
        can_write: principal.role.can_write(),
        user: &principal.name,
    })))
}

pub async fn agents(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Html<String> {
    let reports = super::fleet::ask_all(&state, &principal.name, || PlatformRequest::Fleet).await;
    Html(ui::agents_page(&reports, &principal.name))
}

pub async fn scalers(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Html<String> {
    let reports = super::fleet::ask_all(&state, &principal.name, || PlatformRequest::Fleet).await;
    Html(ui::scalers_page(&reports, &principal.name))
}

pub async fn diagnostics(
    State(state): State<Shared>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Html<String> {
    let reports = super::fleet::ask_all(&state, &principal.name, || PlatformRequest::Diagnostics).await;
    Html(ui::diagnostics_page(&reports, &principal.name))
}

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], ui::CSS)
}

pub async fn js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], ui::JS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_to_local_paths() {
        assert_eq!(safe_next(Some("/runs/abc")), "/runs/abc");
        assert_eq!(safe_next(Some("//evil.example/x")), "/runs");
        assert_eq!(safe_next(Some("https://evil.example/")), "/runs");
        assert_eq!(safe_next(None), "/runs");
    }
}
