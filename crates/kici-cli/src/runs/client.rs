//! A read-only client for `/api/v1/runs…` (`docs/api.md`), served by the orchestrator (and later
//! the dashboard, on the same paths). Path segments are percent-encoded; an error body's message
//! becomes the error text; a connection failure names the URL and how to point `--url` elsewhere.
//!
//! `kici-admin` has its own client (with POST/DELETE and webhooks); the ~60 shared lines are
//! duplicated rather than put in a helper crate.

use std::time::Duration;

use anyhow::{anyhow, bail};
use kici_engine::api::ErrorBody;
use reqwest::Url;
use serde::de::DeserializeOwned;

/// How long one request (connect, send, read the answer) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RunsClient {
    base: Url,
    /// `--url` without a trailing slash, for messages.
    display_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl RunsClient {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<RunsClient> {
        let invalid =
            |reason: String| anyhow!("invalid --url `{url}`: {reason} (hint: use a URL like http://127.0.0.1:4000)");
        let base = Url::parse(url).map_err(|err| invalid(err.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid(format!(
                "scheme `{}` is not supported (this build speaks plain http)",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("not a base URL".to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| invalid(err.to_string()))?;
        Ok(RunsClient {
            base,
            display_url: url.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new: the base URL can be a base");
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        url
    }

    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<T> {
        self.call(reqwest::Method::GET, segments, query, None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, segments: &[&str], body: &serde_json::Value) -> anyhow::Result<T> {
        self.call(reqwest::Method::POST, segments, &[], Some(body)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = self.url(segments, query);
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| self.transport_error(&err))?;
        if !status.is_success() {
            if let Ok(body) = serde_json::from_str::<ErrorBody>(&text) {
                bail!("{}", body.error.message);
            }
            let body: String = text.trim().chars().take(200).collect();
            let body = if body.is_empty() {
                "(empty body)".to_string()
            } else {
                body
            };
            bail!("unexpected answer {status} from {method} {}: {body}", url.path());
        }
        serde_json::from_str(&text).map_err(|err| anyhow!("cannot read the answer to {method} {}: {err}", url.path()))
    }

    fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        if err.is_timeout() {
            return anyhow!(
                "the orchestrator at {} did not answer within {}s (hint: is it overloaded? check its logs)",
                self.display_url,
                REQUEST_TIMEOUT.as_secs()
            );
        }
        // The innermost cause (`Connection refused (os error 111)`) says more than reqwest's
        // `error sending request for url (...)`.
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        anyhow!(
            "cannot reach the orchestrator at {}: {cause} (hint: is kici-orchestrator running? set --url or KICI_URL)",
            self.display_url
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let client = RunsClient::new("http://127.0.0.1:4000/", None).unwrap();
        assert_eq!(
            client
                .url(
                    &["api", "v1", "runs", "r/1", "logs"],
                    &[("job", "test (linux, 20)".into())]
                )
                .as_str(),
            "http://127.0.0.1:4000/api/v1/runs/r%2F1/logs?job=test+%28linux%2C+20%29"
        );
        let err = RunsClient::new("https://ci", None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid --url `https://ci`: scheme `https` is not supported (this build speaks plain http) (hint: use a URL like http://127.0.0.1:4000)"
        );
    }
}
