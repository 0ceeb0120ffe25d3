//! The browser side: sign-in and sign-out, the runs list (and its rows for live updates), a
//! run's page, the fleet pages, the approval queue, and the embedded assets. Pages read the
//! cache like the API does, or ask orchestrators live (fleet, approvals), and render with
//! [`crate::ui`]; the page script then talks to the API with the session cookie and the
//! session's CSRF token, which every page carries. Sign-in guards against CSRF with a
//! double-submit cookie, sign-out with the session's token, and sign-in sends the browser on
//! only to a same-origin path.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use kici_engine::api::secrets::HeldJobList;
use kici_engine::ids::RunId;
use kici_engine::platform_protocol::PlatformRequest;
use serde::Deserialize;

use super::auth::{PrincipalKind, principal_for_token};
use super::error::{ApiError, ApiResult};
use super::runs::{find_run, freshness};
use super::session::{self, CSRF_HEADER, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_COOKIE_MAX_AGE, Scheme, Session};
use crate::cache::RunFilter;
use crate::state::Shared;
use crate::ui;

const PAGE_SIZE: i64 = 20;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a same-origin absolute path may follow sign-in, never another site: exactly one
/// leading `/` (not `//`, `/\`, nor their percent-encoded forms right after it), no backslash
/// or encoded backslash anywhere (browsers read `\` as `/`), no control characters (browsers
/// drop tabs and newlines, so `/\t/evil` would become `//evil`). Anything else goes to `/`.
fn safe_next(next: Option<&str>) -> String {
    let is_local = |path: &str| {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let lower = rest.to_ascii_lowercase();
        !rest.starts_with('/')
            && !lower.starts_with("%2f")
            && !path.contains('\\')
            && !lower.contains("%5c")
            && !path.chars().any(char::is_control)
    };
    match next {
        Some(path) if is_local(path) => path.to_string(),
        _ => "/".to_string(),
    }
}

/// The sign-in page. Sign-in CSRF is stopped by double submit: this page sets a random
/// `kici_login_csrf` cookie (HttpOnly, SameSite=Strict, `Path=/login`, until the browser
/// closes) and writes the same value into the form; `POST /login` needs both, equal. Another
/// site can make a browser post the form, but can neither read the value nor (SameSite=Strict)
/// have the cookie sent with its post, so it cannot sign a victim into the attacker's account.
/// Chosen over an Origin/Referer check because the Platform sits behind a TLS proxy and does
/// not know its public origin (the proxy may rewrite `Host`), and some browsers and privacy
/// tools drop those headers. An existing well-formed cookie is reused, so two sign-in tabs
/// both work.
pub async fn login_form(State(state): State<Shared>, headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    let existing = session::cookie(&headers, LOGIN_CSRF_COOKIE).filter(|value| session::looks_issued(value));
    let token = existing.clone().unwrap_or_else(session::new_login_token);
    let page = Html(ui::login_page(None, &safe_next(query.next.as_deref()), &token));
    if existing.is_some() {
        return page.into_response();
    }
    let scheme = Scheme::of(&headers, state.config.proxy_trust);
    let cookie = session::set_cookie(LOGIN_CSRF_COOKIE, &token, "/login", None, scheme);
    ([(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
    csrf: Option<String>,
}

/// 403 for a sign-in post without the form's token and cookie (cross-site, or cookies off).
fn login_csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_csrf_token",
        "missing or wrong sign-in form token (hint: open the sign-in page again, with cookies enabled, and sign in from there)",
    )
}

pub async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> ApiResult<Response> {
    let Some(form_token) = session::cookie(&headers, LOGIN_CSRF_COOKIE)
        .filter(|cookie| session::looks_issued(cookie) && session::csrf_matches(cookie, form.csrf.as_deref()))
    else {
        tracing::warn!("sign-in refused: missing or wrong sign-in form token");
        return Err(login_csrf_refused());
    };
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    let invalid = || {
        (
            StatusCode::UNAUTHORIZED,
            Html(ui::login_page(Some("That token is not valid."), &next, &form_token)),
        )
            .into_response()
    };
    let Some(principal) = principal_for_token(&state, token).await? else {
        return Ok(invalid());
    };
    let id = state.browser_sessions.create(&principal).await?;
    // A user deleted while this sign-in was under way: their deletion ended the sessions it
    // found, and this one may have been made just after; look again now that it exists.
    if principal.kind == PrincipalKind::User && principal_for_token(&state, token).await?.is_none() {
        state.browser_sessions.remove(&id).await?;
        return Ok(invalid());
    }
    tracing::info!(user = %principal.name, "signed in");
    let scheme = Scheme::of(&headers, state.config.proxy_trust);
    let cookies = AppendHeaders([
        (
            header::SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, &id, "/", Some(SESSION_COOKIE_MAX_AGE), scheme),
        ),
        // The sign-in pair is spent.
        (
            header::SET_COOKIE,
            session::set_cookie(LOGIN_CSRF_COOKIE, "", "/login", Some(0), scheme),
        ),
    ]);
    Ok((cookies, Redirect::to(&next)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// Ends the session; the session's CSRF token must come with it (the `csrf` field of the
/// header's sign-out form, or `X-CSRF-Token`), else 403. Without a live session there is
/// nothing to protect: the cookie is cleared either way.
pub async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> ApiResult<Response> {
    let session_id = session::cookie(&headers, SESSION_COOKIE);
    let signed_in = match &session_id {
        Some(id) => state.browser_sessions.get(id).await?.map(|s| (id.clone(), s)),
        None => None,
    };
    if let Some((id, signed_in)) = signed_in {
        let presented = form.ok().and_then(|Form(form)| form.csrf).or_else(|| {
            headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        if !session::csrf_matches(&signed_in.csrf_token, presented.as_deref()) {
            tracing::warn!(user = %signed_in.principal.name, "sign-out refused: missing or wrong CSRF token");
            return Err(super::auth::csrf_refused());
        }
        state.browser_sessions.remove(&id).await?;
        tracing::info!(user = %signed_in.principal.name, "signed out");
    }
    let scheme = Scheme::of(&headers, state.config.proxy_trust);
    let cookie = session::set_cookie(SESSION_COOKIE, "", "/", Some(0), scheme);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

/// Who the page is for: the header's name and the page's CSRF token, and the number of
/// `held_jobs` for the nav's badge.
fn viewer<'a>(session: &'a Session, held_jobs: &[String]) -> ui::Viewer<'a> {
    ui::Viewer {
        name: &session.principal.name,
        csrf_token: &session.csrf_token,
        pending_approvals: held_jobs.len(),
        manages_users: session.principal.role == crate::cache::Role::Owner,
    }
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
        trigger: text(&query.trigger),
        since: None,
        limit: PAGE_SIZE,
        offset: (query.page.unwrap_or(1).max(1) - 1) * PAGE_SIZE,
    }
}

pub async fn runs(
    State(state): State<Shared>,
    Query(query): Query<ui::RunsFilter>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let (runs, total) = state.cache.list_runs(&filter(&query)).await?;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::runs_page(
        &runs,
        total,
        &query,
        &held,
        &viewer(&session, &held),
        PAGE_SIZE,
    )))
}

/// The list's rows alone, for the page script's live updates.
pub async fn runs_rows(State(state): State<Shared>, Query(query): Query<ui::RunsFilter>) -> ApiResult<Html<String>> {
    let (runs, _) = state.cache.list_runs(&filter(&query)).await?;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::runs_rows(&runs, &held, &query)))
}

pub async fn run(
    State(state): State<Shared>,
    Path(run_id): Path<String>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let cached = find_run(&state, &run_id).await?;
    let jobs = state.cache.run_jobs(&run_id).await?;
    let events = state.cache.run_events(&run_id).await?;
    let (online, stale) = freshness(&state, &cached).await?;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::run_page(&ui::RunPage {
        run: &cached.run,
        jobs: &jobs,
        events: &events,
        orchestrator_online: online,
        stale,
        can_write: session.principal.role.can_write(),
        now: kici_telemetry::os::now_ms(),
        viewer: &viewer(&session, &held),
    })))
}

pub async fn agents(
    State(state): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let reports = super::fleet::ask_all(&state, &session.principal.name, || PlatformRequest::Fleet).await;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::agents_page(&reports, &viewer(&session, &held))))
}

pub async fn workflows(
    State(state): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let reports = super::fleet::ask_all(&state, &session.principal.name, || PlatformRequest::Workflows).await;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::workflows_page(
        &reports,
        session.principal.role.can_write(),
        &viewer(&session, &held),
    )))
}

/// `/users`: the stored users, for owners (members are refused, as by the API).
pub async fn users(
    State(state): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    super::users::require_users_admin(&session.principal)?;
    let users = super::users::user_entries(&state).await?;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::users_page(&users, &viewer(&session, &held))))
}

pub async fn scalers(
    State(state): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let reports = super::fleet::ask_all(&state, &session.principal.name, || PlatformRequest::Fleet).await;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::scalers_page(&reports, &viewer(&session, &held))))
}

pub async fn diagnostics(
    State(state): State<Shared>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let reports = super::fleet::ask_all(&state, &session.principal.name, || PlatformRequest::Diagnostics).await;
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::diagnostics_page(&reports, &viewer(&session, &held))))
}

/// The approval queue, asked of every orchestrator now (`dashboard.held-runs`); an offline
/// one is named with [`super::fleet::FLEET_OFFLINE`].
pub async fn approvals(
    State(state): State<Shared>,
    Query(filter): Query<ui::ApprovalsFilter>,
    axum::Extension(session): axum::Extension<Session>,
) -> ApiResult<Html<String>> {
    let status = filter.hold_status();
    let run_id = filter.run().map(|id| RunId::from(id.to_string()));
    let reports = super::fleet::ask_all(&state, &session.principal.name, || PlatformRequest::HeldRuns {
        status,
        run_id: run_id.clone(),
    })
    .await;
    let mut holds = Vec::new();
    let mut unavailable = Vec::new();
    for report in &reports {
        match (&report.data, &report.error) {
            (Some(data), _) => match HeldJobList::deserialize(data) {
                Ok(list) => holds.extend(list.holds),
                Err(err) => {
                    tracing::warn!(orchestratorId = %report.instance_id, error = %err, "unreadable approval queue");
                    unavailable.push((
                        report.instance_id.clone(),
                        "the orchestrator's answer could not be read (details are in the Platform log)".to_string(),
                    ));
                }
            },
            (None, Some(error)) => unavailable.push((report.instance_id.clone(), error.clone())),
            (None, None) => {}
        }
    }
    holds.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.hold_id.cmp(&b.hold_id)));
    let held = state.cache.held_jobs().await?;
    Ok(Html(ui::approvals_page(&ui::ApprovalsPage {
        holds: &holds,
        unavailable: &unavailable,
        no_orchestrator: reports.is_empty(),
        filter: &filter,
        can_decide: session.principal.role.can_write(),
        viewer: &viewer(&session, &held),
    })))
}

/// `/assets/<name>`: the embedded stylesheet, scripts and icon.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ui::ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type)], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_to_same_origin_paths() {
        let check = |next: Option<&str>, expected: &str| {
            assert_eq!(safe_next(next), expected, "{next:?}");
        };
        check(Some("/runs/abc"), "/runs/abc");
        check(Some("/runs?x=1"), "/runs?x=1");
        check(Some("/runs?branch=feature%2Fx"), "/runs?branch=feature%2Fx");
        check(Some("/"), "/");
        check(None, "/");
        check(Some(""), "/");
        check(Some("runs"), "/");
        check(Some("//evil.example/x"), "/");
        check(Some("//evil"), "/");
        check(Some("/\\evil.example"), "/");
        check(Some("\\/evil.example"), "/");
        check(Some("/runs\\..\\..\\evil"), "/");
        check(Some("/%5Cevil"), "/");
        check(Some("/%5cevil"), "/");
        check(Some("/%2F%2Fevil"), "/");
        check(Some("/\t/evil.example"), "/");
        check(Some("/\n/evil.example"), "/");
        check(Some("https://x"), "/");
        check(Some("javascript:alert(1)"), "/");
        check(Some(" /runs"), "/");
    }
}
