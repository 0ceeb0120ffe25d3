//! Moving archives through the signed URLs the orchestrator hands out: a download whose
//! errors never show the URL (it is a credential), and unpacking a gzipped tar where the `tar`
//! crate skips entries that would land outside the target.

use std::path::Path;
use std::time::Duration;

/// A download or upload must finish within this.
pub(super) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TRANSFER_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// The bytes at `url`.
pub(super) async fn download(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
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

/// Writes `body` to `url`.
pub(super) async fn upload(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), String> {
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
