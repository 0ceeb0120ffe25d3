//! The HTTP client for the REST API (`docs/api.md`) of an orchestrator or the Platform: builds
//! URLs from path segments (each one percent-encoded), sends the token, and turns transport
//! failures and `{"error": {"code", "message"}}` bodies into [`ClientError`]s whose text is what
//! the user sees after `Error: `.
//!
//! It knows no endpoint; the CLIs' command modules name the paths.

use std::time::Duration;

use kici_engine::api::ErrorBody;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long one request (connect, send, read the answer) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid --url `{url}`: {reason} (hint: use a URL like http://127.0.0.1:4000)")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "cannot reach the orchestrator at {url}: {cause} (hint: is kici-orchestrator running? set --url or {url_variable})"
    )]
    Unreachable {
        url: String,
        cause: String,
        url_variable: &'static str,
    },
    #[error(
        "the orchestrator at {url} did not answer within {}s (hint: is it overloaded? check its logs)",
        REQUEST_TIMEOUT.as_secs()
    )]
    Timeout { url: String },
    /// The server's own message from an error body.
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("unexpected answer {status} from {method} {path}: {body}")]
    UnexpectedStatus {
        status: StatusCode,
        method: Method,
        path: String,
        body: String,
    },
    #[error("cannot read the answer to {method} {path}: {cause}")]
    BadBody {
        method: Method,
        path: String,
        cause: String,
    },
}

pub struct ApiClient {
    base: Url,
    /// `--url` as given, for messages.
    display_url: String,
    token: Option<String>,
    /// The environment variable that sets `--url` in this CLI, named in hints.
    url_variable: &'static str,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `url`; `url_variable` is the CLI's variable for `--url`
    /// (`KICI_URL`, `KICI_ADMIN_URL`), which an unreachable server's hint names.
    pub fn new(url: &str, token: Option<String>, url_variable: &'static str) -> Result<ApiClient, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
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
        Ok(ApiClient {
            base,
            display_url: url.trim_end_matches('/').to_string(),
            token,
            url_variable,
            http,
        })
    }

    /// `--url` without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.display_url
    }

    /// The URL of `segments` (each percent-encoded) under the base URL, with `query`.
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

    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, segments, query, None::<&()>).await
    }

    /// A `GET` whose 2xx answer is text, not JSON (`/metrics`).
    pub async fn get_text(&self, segments: &[&str]) -> Result<String, ClientError> {
        let url = self.url(segments, &[]);
        let response = self.send(self.authorized(Method::GET, url.clone())).await?;
        let status = response.status();
        let text = self.read_text(response, &Method::GET, &url).await?;
        if !status.is_success() {
            return Err(api_error(status, Method::GET, &url, &text));
        }
        Ok(text)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> Result<T, ClientError> {
        self.call(Method::POST, segments, &[], Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> Result<T, ClientError> {
        self.call(Method::PUT, segments, &[], Some(body)).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::PATCH, segments, &[], Some(body)).await
    }

    /// A `DELETE` answered with `204` (or any 2xx).
    pub async fn delete(&self, segments: &[&str]) -> Result<(), ClientError> {
        self.delete_query(segments, &[]).await
    }

    /// A `DELETE` of `segments` with `query`, answered with `204` (or any 2xx).
    pub async fn delete_query(&self, segments: &[&str], query: &[(&str, String)]) -> Result<(), ClientError> {
        let url = self.url(segments, query);
        let response = self.send(self.authorized(Method::DELETE, url.clone())).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = self.read_text(response, &Method::DELETE, &url).await?;
        Err(api_error(status, Method::DELETE, &url, &text))
    }

    /// Posts a webhook `body` with `headers` and the token (a local source takes its trigger
    /// token or an admin token), returning the answer's JSON.
    pub async fn post_webhook(
        &self,
        segments: &[&str],
        headers: &[(&str, String)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.url(segments, &[]);
        let mut request = self.authorized(Method::POST, url.clone()).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = self.send(request).await?;
        let status = response.status();
        let text = self.read_text(response, &Method::POST, &url).await?;
        if !status.is_success() {
            return Err(api_error(status, Method::POST, &url, &text));
        }
        serde_json::from_str(&text).map_err(|err| ClientError::BadBody {
            method: Method::POST,
            path: url.path().to_string(),
            cause: err.to_string(),
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        let mut request = self.authorized(method.clone(), url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.send(request).await?;
        let status = response.status();
        let text = self.read_text(response, &method, &url).await?;
        if !status.is_success() {
            return Err(api_error(status, method, &url, &text));
        }
        serde_json::from_str(&text).map_err(|err| ClientError::BadBody {
            method,
            path: url.path().to_string(),
            cause: err.to_string(),
        })
    }

    fn authorized(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        request.send().await.map_err(|err| self.transport_error(&err))
    }

    async fn read_text(&self, response: reqwest::Response, method: &Method, url: &Url) -> Result<String, ClientError> {
        response.text().await.map_err(|err| {
            if err.is_timeout() {
                self.transport_error(&err)
            } else {
                ClientError::BadBody {
                    method: method.clone(),
                    path: url.path().to_string(),
                    cause: root_cause(&err),
                }
            }
        })
    }

    fn transport_error(&self, err: &reqwest::Error) -> ClientError {
        if err.is_timeout() {
            ClientError::Timeout {
                url: self.display_url.clone(),
            }
        } else {
            ClientError::Unreachable {
                url: self.display_url.clone(),
                cause: root_cause(err),
                url_variable: self.url_variable,
            }
        }
    }
}

/// The innermost cause (`Connection refused (os error 111)`), which says more than reqwest's
/// `error sending request for url (...)`.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn api_error(status: StatusCode, method: Method, url: &Url, text: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => {
            let mut body: String = text.trim().chars().take(200).collect();
            if body.is_empty() {
                body = "(empty body)".to_string();
            }
            ClientError::UnexpectedStatus {
                status,
                method,
                path: url.path().to_string(),
                body,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_segments_and_keep_a_base_path() {
        let client = ApiClient::new("http://127.0.0.1:4000", None, "KICI_ADMIN_URL").unwrap();
        assert_eq!(
            client
                .url(&["api", "v1", "runs", "a b/c"], &[("status", "failed,success".into())])
                .as_str(),
            "http://127.0.0.1:4000/api/v1/runs/a%20b%2Fc?status=failed%2Csuccess"
        );
        let client = ApiClient::new("http://host:4000/kici/", None, "KICI_ADMIN_URL").unwrap();
        assert_eq!(client.base_url(), "http://host:4000/kici");
        assert_eq!(client.url(&["health"], &[]).as_str(), "http://host:4000/kici/health");
    }

    #[test]
    fn rejects_https_and_garbage() {
        let err = ApiClient::new("https://ci.example", None, "KICI_ADMIN_URL")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid --url `https://ci.example`: scheme `https` is not supported (this build speaks plain http) (hint: use a URL like http://127.0.0.1:4000)"
        );
        assert!(ApiClient::new("not a url", None, "KICI_ADMIN_URL").is_err());
    }

    #[test]
    fn urls() {
        let client = ApiClient::new("http://127.0.0.1:4000/", None, "KICI_URL").unwrap();
        assert_eq!(
            client
                .url(
                    &["api", "v1", "runs", "r/1", "logs"],
                    &[("job", "test (linux, 20)".into())]
                )
                .as_str(),
            "http://127.0.0.1:4000/api/v1/runs/r%2F1/logs?job=test+%28linux%2C+20%29"
        );
        let err = ApiClient::new("https://ci", None, "KICI_URL").err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid --url `https://ci`: scheme `https` is not supported (this build speaks plain http) (hint: use a URL like http://127.0.0.1:4000)"
        );
    }

    #[test]
    fn an_unreachable_server_names_the_cli_s_url_variable() {
        let err = ClientError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            cause: "Connection refused (os error 111)".into(),
            url_variable: "KICI_URL",
        };
        assert_eq!(
            err.to_string(),
            "cannot reach the orchestrator at http://127.0.0.1:1: Connection refused (os error 111) (hint: is kici-orchestrator running? set --url or KICI_URL)"
        );
    }

    #[test]
    fn error_bodies_become_the_server_message() {
        let url = Url::parse("http://h/api/v1/runs/x").unwrap();
        let err = api_error(
            StatusCode::NOT_FOUND,
            Method::GET,
            &url,
            r#"{"error":{"code":"not_found","message":"run x not found"}}"#,
        );
        assert_eq!(err.to_string(), "run x not found");
        let err = api_error(StatusCode::BAD_GATEWAY, Method::GET, &url, "");
        assert_eq!(
            err.to_string(),
            "unexpected answer 502 Bad Gateway from GET /api/v1/runs/x: (empty body)"
        );
    }
}
