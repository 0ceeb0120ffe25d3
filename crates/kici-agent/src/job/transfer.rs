//! Moving archives through the signed URLs the orchestrator hands out: a download whose
//! errors never show the URL (it is a credential), and unpacking a gzipped tar where the `tar`
//! crate skips entries that would land outside the target.
//!
//! The orchestrator's own URLs (its `/storage/`, its cache API) are reached directly, as the
//! agent's WebSocket and its git fetch are, following no redirect: an HTTP proxy of the
//! environment would see the signed URL or the job's grant, or not reach the orchestrator at
//! all. Other URLs go through the environment's proxies: S3's presigned ones, and the
//! filesystem store's when `KICI_STORAGE_FS_BASE_URL` names another address than the agent's.

use std::path::Path;
use std::time::Duration;

/// A download or upload must finish within this.
pub(super) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

/// The HTTP clients of one job.
#[derive(Clone)]
pub(super) struct Transfer {
    /// The orchestrator's HTTP URL, as this agent reaches it.
    orchestrator: Option<String>,
    direct: reqwest::Client,
    proxied: reqwest::Client,
}

impl Transfer {
    /// `orchestrator`: see [`kici_engine::protocol::JobDispatch::orchestrator_url`].
    pub fn new(orchestrator: Option<&str>) -> Transfer {
        let builder = || reqwest::Client::builder().timeout(TRANSFER_TIMEOUT);
        Transfer {
            orchestrator: orchestrator.map(|url| url.trim_end_matches('/').to_string()),
            direct: builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            proxied: builder().build().unwrap_or_default(),
        }
    }

    /// The client for `url`: direct to the orchestrator, else through the proxies.
    pub fn client(&self, url: &str) -> &reqwest::Client {
        let orchestrators = self.orchestrator.as_deref().and_then(|base| url.strip_prefix(base));
        match orchestrators {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => &self.direct,
            _ => &self.proxied,
        }
    }

    /// The bytes at `url`.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        download(self.client(url), url).await
    }

    /// Writes `body` to `url`.
    pub async fn upload(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        upload(self.client(url), url, body).await
    }
}

async fn download(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| format!("download failed: {}", err.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("download answered {}", response.status()));
    }
    response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|err| format!("download failed: {}", err.without_url()))
}

async fn upload(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
    let response = client
        .put(url)
        .body(body)
        .send()
        .await
        .map_err(|err| format!("upload failed: {}", err.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("upload answered {}", response.status()));
    }
    Ok(())
}

/// Unpacks a gzipped tar into `target`.
pub(super) async fn unpack(bytes: Vec<u8>, target: &Path) -> Result<(), String> {
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        archive.set_preserve_permissions(true);
        archive.unpack(&target)
    })
    .await
    .map_err(|err| err.to_string())?
    .map_err(|err| format!("unpacking failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrators_urls_are_reached_directly_and_others_through_the_proxies() {
        let transfer = Transfer::new(Some("http://10.0.0.1:4000/"));
        let direct = |url: &str| std::ptr::eq(transfer.client(url), &transfer.direct);
        assert!(direct(
            "http://10.0.0.1:4000/storage/deps/k.tar.gz?expires=1&signature=s"
        ));
        assert!(direct("http://10.0.0.1:4000/api/v1/cache/save"));
        assert!(!direct("http://10.0.0.1:40001/storage/deps/k.tar.gz"));
        assert!(!direct("https://bucket.s3.example.com/deps/k.tar.gz?X-Amz-Signature=s"));
        let unknown = Transfer::new(None);
        assert!(std::ptr::eq(
            unknown.client("http://10.0.0.1:4000/storage/k"),
            &unknown.proxied
        ));
    }
}
