//! The browser side's defences over real HTTP, as a browser would meet them: the sign-in
//! form's double-submit token, where sign-in may send the browser next, `Secure` cookies
//! behind a trusted TLS proxy, the session's CSRF token on every state-changing request, a
//! deleted user's sessions and token ending at once, and the live streams' limits.

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

use super::*;

/// A client that, like a test of a browser's first hop, does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `application/x-www-form-urlencoded`, as a browser posts a form.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The whole `Set-Cookie` value for cookie `name`.
fn set_cookie<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a str> {
    set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(String::as_str)
}

/// The value a `Set-Cookie` sets.
fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// The text between `before` and the next `"` in `html`.
fn attribute(html: &str, before: &str) -> Option<String> {
    let start = html.find(before)? + before.len();
    Some(html[start..].split('"').next()?.to_string())
}

/// The sign-in page: (its `Set-Cookie` values, the form's `csrf` field).
async fn login_page(harness: &Harness, headers: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut request = client().get(harness.url("/login"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let cookies = set_cookies(response.headers());
    let html = response.text().await.unwrap();
    let field = attribute(&html, r#"name="csrf" value=""#).expect("the form's csrf field");
    (cookies, field)
}

/// Posts the sign-in form with `cookie` (the double-submit cookie's value, if any).
async fn post_login(
    harness: &Harness,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client()
        .post(harness.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("kici_login_csrf={cookie}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
pub(crate) struct Browser {
    session: String,
    pub(crate) csrf: String,
}

impl Browser {
    /// Signs in through the form with `token`, then reads the token from a page.
    pub(crate) async fn sign_in(harness: &Harness, token: &str) -> Browser {
        let (cookies, field) = login_page(harness, &[]).await;
        let login_cookie = cookie_value(set_cookie(&cookies, "kici_login_csrf").unwrap());
        let response = post_login(
            harness,
            Some(&login_cookie),
            &[("token", token), ("next", "/runs"), ("csrf", &field)],
            &[],
        )
        .await;
        assert_eq!(response.status().as_u16(), 303);
        let session = cookie_value(set_cookie(&set_cookies(response.headers()), "kici_session").unwrap());
        let mut browser = Browser {
            session,
            csrf: String::new(),
        };
        let (status, html) = browser.page(harness, "/runs").await;
        assert_eq!(status, 200, "{html}");
        browser.csrf = attribute(&html, r#"<meta name="csrf-token" content=""#).expect("the page's CSRF token");
        browser
    }

    fn cookie(&self) -> String {
        format!("kici_session={}", self.session)
    }

    /// A page: (status, body); a redirect's body is its `Location`.
    pub(crate) async fn page(&self, harness: &Harness, path: &str) -> (u16, String) {
        let response = client()
            .get(harness.url(path))
            .header(COOKIE, self.cookie())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        match response.headers().get(LOCATION) {
            Some(location) => (status, location.to_str().unwrap().to_string()),
            None => (status, response.text().await.unwrap()),
        }
    }

    /// An API call with the session cookie and `csrf` as `X-CSRF-Token`: (status, JSON body).
    pub(crate) async fn api(
        &self,
        harness: &Harness,
        method: &str,
        path: &str,
        csrf: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client()
            .request(method, harness.url(path))
            .header(COOKIE, self.cookie())
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn logout(&self, harness: &Harness, csrf: Option<&str>) -> reqwest::Response {
        let fields: Vec<(&str, &str)> = csrf.map(|csrf| ("csrf", csrf)).into_iter().collect();
        client()
            .post(harness.url("/logout"))
            .header(COOKIE, self.cookie())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap()
    }
}

/// An API call with a Bearer token: (status, JSON body or text).
pub(crate) async fn bearer(
    harness: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client().request(method, harness.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn csrf_refused() -> Value {
    json!({"error": {"code": "invalid_csrf_token", "message": "missing or wrong CSRF token: a request signed in with the session cookie must send the page's token in the X-CSRF-Token header (hint: reload the page, or use `Authorization: Bearer <token>`)"}})
}

#[tokio::test]
async fn sign_in_needs_the_forms_token_and_cookie_and_returns_only_to_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let (cookies, field) = login_page(&harness, &[]).await;
    let login_cookie = set_cookie(&cookies, "kici_login_csrf").unwrap().to_string();
    let token = cookie_value(&login_cookie);
    assert_eq!(
        login_cookie,
        format!("kici_login_csrf={token}; Path=/login; HttpOnly; SameSite=Strict")
    );
    assert_eq!(field, token);
    // A second look (another tab) keeps the pair.
    let (again, again_field) = login_page(&harness, &[("cookie", &format!("kici_login_csrf={token}"))]).await;
    assert_eq!((again, again_field), (Vec::new(), token.clone()));

    let login_refused = json!({"error": {"code": "invalid_csrf_token", "message": "missing or wrong sign-in form token (hint: open the sign-in page again, with cookies enabled, and sign in from there)"}});
    for (cookie, csrf) in [
        // Cross-site: the attacker's page cannot have the SameSite=Strict cookie sent.
        (None, Some(token.as_str())),
        (Some(token.as_str()), None),
        (Some(token.as_str()), Some("0123456789abcdef0123456789abcdef")),
        // A cookie planted by someone else, of a shape the Platform never issues.
        (Some("x"), Some("x")),
    ] {
        let mut fields = vec![("token", ADMIN_TOKEN)];
        fields.extend(csrf.map(|csrf| ("csrf", csrf)));
        let response = post_login(&harness, cookie, &fields, &[]).await;
        assert_eq!(response.status().as_u16(), 403, "{cookie:?} {csrf:?}");
        assert!(set_cookie(&set_cookies(response.headers()), "kici_session").is_none());
        assert_eq!(response.json::<Value>().await.unwrap(), login_refused);
    }
    let wrong = post_login(
        &harness,
        Some(&token),
        &[("token", "not-a-token-0123456789"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.text().await.unwrap().contains("That token is not valid."));

    for (next, expected) in [
        ("/\\evil.example", "/"),
        ("//evil", "/"),
        ("/%5Cevil", "/"),
        ("/\t/evil.example", "/"),
        ("https://x", "/"),
        ("/runs?x=1", "/runs?x=1"),
    ] {
        let response = post_login(
            &harness,
            Some(&token),
            &[("token", ADMIN_TOKEN), ("next", next), ("csrf", &token)],
            &[],
        )
        .await;
        assert_eq!(response.status().as_u16(), 303, "{next:?}");
        assert_eq!(response.headers()[LOCATION], expected, "{next:?}");
        let cookies = set_cookies(response.headers());
        let session = set_cookie(&cookies, "kici_session").unwrap();
        assert!(
            session.ends_with("; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800"),
            "{session}"
        );
        // The sign-in pair is spent.
        assert_eq!(
            set_cookie(&cookies, "kici_login_csrf"),
            Some("kici_login_csrf=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0")
        );
    }
    // The sign-in page keeps the same rule for what it puts in its form.
    let response = client()
        .get(harness.url("/login?next=/%5Cevil.example"))
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert_eq!(attribute(&html, r#"name="next" value=""#).as_deref(), Some("/"));
    harness.platform.stop().await;
}

/// The `Set-Cookie` values of the sign-in page and of a successful sign-in, with `headers`.
async fn sign_in_cookies(harness: &Harness, headers: &[(&str, &str)]) -> (String, String) {
    let (cookies, field) = login_page(harness, headers).await;
    let login_cookie = set_cookie(&cookies, "kici_login_csrf").unwrap().to_string();
    let response = post_login(
        harness,
        Some(&cookie_value(&login_cookie)),
        &[("token", ADMIN_TOKEN), ("csrf", &field)],
        headers,
    )
    .await;
    assert_eq!(response.status().as_u16(), 303);
    let session = set_cookie(&set_cookies(response.headers()), "kici_session")
        .unwrap()
        .to_string();
    (login_cookie, session)
}

#[tokio::test]
async fn cookies_are_secure_only_when_a_trusted_proxy_says_https() {
    let dir = tempfile::tempdir().unwrap();
    let https = [("x-forwarded-proto", "https")];
    let behind_proxy = Harness::start(config(dir.path(), &[("KICI_PLATFORM_TRUST_PROXY", "1")])).await;
    let (login_cookie, session) = sign_in_cookies(&behind_proxy, &https).await;
    assert!(
        login_cookie.ends_with("; HttpOnly; SameSite=Strict; Secure"),
        "{login_cookie}"
    );
    assert!(session.ends_with("; Max-Age=28800; Secure"), "{session}");
    for headers in [&[("x-forwarded-proto", "http")][..], &[]] {
        let (login_cookie, session) = sign_in_cookies(&behind_proxy, headers).await;
        assert!(!login_cookie.contains("Secure"), "{headers:?}: {login_cookie}");
        assert!(!session.contains("Secure"), "{headers:?}: {session}");
    }
    behind_proxy.platform.stop().await;

    // Without KICI_PLATFORM_TRUST_PROXY anyone could send the header: it is ignored.
    let dir = tempfile::tempdir().unwrap();
    let direct = Harness::start(config(dir.path(), &[])).await;
    let (login_cookie, session) = sign_in_cookies(&direct, &https).await;
    assert!(!login_cookie.contains("Secure"), "{login_cookie}");
    assert!(!session.contains("Secure"), "{session}");
    direct.platform.stop().await;
}

#[tokio::test]
async fn session_requests_that_change_something_need_the_sessions_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let browser = Browser::sign_in(&harness, ADMIN_TOKEN).await;
    let other = Browser::sign_in(&harness, ADMIN_TOKEN).await;
    assert_ne!(browser.csrf, other.csrf);
    // The sign-out form carries it too.
    let (_, html) = browser.page(&harness, "/runs").await;
    assert!(
        html.contains(&format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            browser.csrf
        )),
        "{html}"
    );

    let not_found = json!({"error": {"code": "not_found", "message": "run nope not found"}});
    for path in ["/api/v1/runs/nope/cancel", "/api/v1/runs/nope/rerun"] {
        for csrf in [
            None,
            Some("0123456789abcdef0123456789abcdef"),
            Some(other.csrf.as_str()),
        ] {
            assert_eq!(
                browser.api(&harness, "POST", path, csrf, json!({})).await,
                (403, csrf_refused()),
                "{path} {csrf:?}"
            );
        }
        // With the right token the request gets past authentication (to the run lookup).
        assert_eq!(
            browser
                .api(&harness, "POST", path, Some(&browser.csrf), json!({}))
                .await,
            (404, not_found.clone()),
            "{path}"
        );
        // A Bearer token needs none.
        assert_eq!(
            bearer(&harness, "POST", path, ADMIN_TOKEN, Some(json!({}))).await,
            (404, not_found.clone()),
            "{path}"
        );
    }
    let rita = json!({"name": "rita", "role": "member"});
    assert_eq!(
        browser.api(&harness, "POST", "/api/v1/users", None, rita.clone()).await,
        (403, csrf_refused())
    );
    let (status, created) = browser
        .api(&harness, "POST", "/api/v1/users", Some(&browser.csrf), rita)
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        browser
            .api(&harness, "DELETE", "/api/v1/users/rita", None, json!({}))
            .await,
        (403, csrf_refused())
    );
    // Reads need no token.
    assert_eq!(
        browser.api(&harness, "GET", "/api/v1/runs", None, json!({})).await.0,
        200
    );

    // Sign-out: refused without the token (the session lives on), done with it.
    for csrf in [None, Some(other.csrf.as_str())] {
        let response = browser.logout(&harness, csrf).await;
        assert_eq!(response.status().as_u16(), 403, "{csrf:?}");
        assert_eq!(response.json::<Value>().await.unwrap(), csrf_refused());
    }
    assert_eq!(
        browser.api(&harness, "GET", "/api/v1/runs", None, json!({})).await.0,
        200
    );
    let response = browser.logout(&harness, Some(&browser.csrf)).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()[LOCATION], "/login");
    assert_eq!(
        set_cookie(&set_cookies(response.headers()), "kici_session"),
        Some("kici_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    );
    assert_eq!(
        browser.api(&harness, "GET", "/api/v1/runs", None, json!({})).await.0,
        401
    );
    assert_eq!(other.api(&harness, "GET", "/api/v1/runs", None, json!({})).await.0, 200);
    harness.platform.stop().await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_and_token_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut tokens = Vec::new();
    for (name, role) in [("rita", "owner"), ("sam", "member")] {
        let (status, created) = harness.post("/api/v1/users", json!({"name": name, "role": role})).await;
        assert_eq!(status, 201, "{created}");
        tokens.push(created["token"].as_str().unwrap().to_string());
    }
    let (rita_token, sam_token) = (&tokens[0], &tokens[1]);
    let rita = Browser::sign_in(&harness, rita_token).await;
    let rita_again = Browser::sign_in(&harness, rita_token).await;
    let sam = Browser::sign_in(&harness, sam_token).await;
    assert_eq!(bearer(&harness, "GET", "/api/v1/runs", rita_token, None).await.0, 200);

    // Only owners delete users.
    assert_eq!(
        bearer(&harness, "DELETE", "/api/v1/users/rita", sam_token, None).await,
        (
            403,
            json!({"error": {"code": "forbidden", "message": "Insufficient permission: users.admin needed"}})
        )
    );
    let (status, body) = bearer(&harness, "DELETE", "/api/v1/users/rita", ADMIN_TOKEN, None).await;
    assert_eq!((status, body), (204, Value::String(String::new())));

    for session in [&rita, &rita_again] {
        let (status, location) = session.page(&harness, "/runs").await;
        assert_eq!((status, location.as_str()), (303, "/login?next=/runs"));
        assert_eq!(
            session.api(&harness, "GET", "/api/v1/runs", None, json!({})).await.0,
            401
        );
        assert_eq!(
            session
                .api(
                    &harness,
                    "POST",
                    "/api/v1/users",
                    Some(&session.csrf),
                    json!({"name": "x", "role": "owner"})
                )
                .await
                .0,
            401
        );
    }
    assert_eq!(bearer(&harness, "GET", "/api/v1/runs", rita_token, None).await.0, 401);
    let (cookies, field) = login_page(&harness, &[]).await;
    let login_cookie = cookie_value(set_cookie(&cookies, "kici_login_csrf").unwrap());
    let response = post_login(
        &harness,
        Some(&login_cookie),
        &[("token", rita_token), ("csrf", &field)],
        &[],
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    // Nobody else is signed out.
    assert_eq!(sam.page(&harness, "/runs").await.0, 200);
    assert_eq!(bearer(&harness, "GET", "/api/v1/runs", sam_token, None).await.0, 200);
    assert_eq!(
        bearer(&harness, "DELETE", "/api/v1/users/rita", ADMIN_TOKEN, None).await,
        (
            404,
            json!({"error": {"code": "not_found", "message": "user rita not found (hint: user names are case-sensitive)"}})
        )
    );
    harness.platform.stop().await;
}

#[tokio::test]
async fn live_streams_need_a_cached_step_and_are_capped_per_caller() {
    let dir = tempfile::tempdir().unwrap();
    let harness = Harness::start(config(dir.path(), &[])).await;
    let mut orchestrator = ScriptedOrchestrator::online(&harness, "orch-1").await;
    orchestrator.push_running_step().await;
    for (path, message) in [
        (
            "/api/v1/runs/run-1/jobs/job-1/steps/7/live",
            "step 7 of job job-1 not found in run run-1",
        ),
        (
            "/api/v1/runs/run-1/jobs/invented/steps/0/live",
            "step 0 of job invented not found in run run-1",
        ),
        (
            "/api/v1/runs/invented/jobs/job-1/steps/0/live",
            "run invented not found",
        ),
    ] {
        assert_eq!(
            harness.get(path).await,
            (404, json!({"error": {"code": "not_found", "message": message}})),
            "{path}"
        );
    }

    // The caller's streams: the prepare log (step -1) and step 0 of the job, and status events.
    let live = |step_index: i64| format!("/api/v1/runs/run-1/jobs/job-1/steps/{step_index}/live");
    let mut open = vec![SseStream::open(harness.http.get(harness.url(&live(-1))).bearer_auth(ADMIN_TOKEN)).await];
    while open.len() < 32 {
        let path = if open.len() % 2 == 0 {
            live(0)
        } else {
            "/api/v1/events/live".to_string()
        };
        open.push(SseStream::open(harness.http.get(harness.url(&path)).bearer_auth(ADMIN_TOKEN)).await);
    }
    let too_many = json!({"error": {"code": "too_many_live_streams", "message": "this session or token already has 32 live streams open (hint: close other dashboard tabs or streams and try again)"}});
    assert_eq!(harness.get(&live(0)).await, (429, too_many.clone()));
    assert_eq!(harness.get("/api/v1/events/live").await, (429, too_many.clone()));
    // `?token=` is the same token.
    let response = harness
        .http
        .get(harness.url(&format!("{}?token={ADMIN_TOKEN}", live(0))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    // Another caller has its own allowance.
    let browser = Browser::sign_in(&harness, ADMIN_TOKEN).await;
    let _browser_stream =
        SseStream::open(harness.http.get(harness.url(&live(0))).header(COOKIE, browser.cookie())).await;
    // The open streams still work.
    orchestrator
        .send(&OrchestratorFrame::LogChunk {
            run_id: "run-1".into(),
            job_id: "job-1".into(),
            step_index: 0,
            lines: lines(0..1),
        })
        .await;
    orchestrator.sync().await;
    assert_eq!(open[2].next().await.data["lineCount"], 1);
    // A stream the client closes gives its place back.
    open.pop();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = harness
            .http
            .get(harness.url("/api/v1/events/live"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(open);
    harness.platform.stop().await;
}
