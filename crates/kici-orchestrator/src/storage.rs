//! Object storage for what jobs share across agents (dependency tarballs, and later source
//! tarballs and caches), behind one interface on `object_store`: the filesystem under the data
//! directory by default, or S3-compatible storage (`KICI_STORAGE_TYPE=s3`). Agents never hold
//! storage credentials: they get short-lived signed URLs. S3 signs its own (SigV4); the
//! filesystem backend's URLs are paths, `/storage/<key>`, which the agent resolves against the
//! address it reached the orchestrator at, so an agent in a container, a microVM or on another
//! host reaches them as it reaches the WebSocket. They carry an HMAC of the method, key and
//! expiry under a key derived from the secret key: a URL outlives a restart and is good at
//! every orchestrator sharing that key (and the previous key's, during a rotation).
//!
//! Writes are atomic on both backends (S3 `PUT`; a temporary file renamed into place), so a
//! reader never sees a partial object.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use sha2::Sha256;

use crate::secret_key::Keyring;

/// Where objects live, from `KICI_STORAGE_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Files under `root`, served by the orchestrator at `/storage/`: under `base_url`
    /// (`KICI_STORAGE_FS_BASE_URL`) when set, else wherever each agent reached it.
    Filesystem {
        root: PathBuf,
        base_url: Option<String>,
    },
    S3(S3Config),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    /// `KICI_STORAGE_ENDPOINT`: a non-AWS server (path-style addressing then).
    pub endpoint: Option<String>,
    /// `KICI_STORAGE_EXTERNAL_ENDPOINT`: the endpoint signed URLs name, when agents reach the
    /// server by another address than the orchestrator does.
    pub external_endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Why an object operation failed (the message names the key and the backend's error).
#[derive(Debug, thiserror::Error)]
#[error("object storage: {0}")]
pub struct StorageError(String);

fn error(what: &str, key: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError(format!("{what} `{key}` failed: {err}"))
}

/// An HTTP method a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Get,
    Put,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Get => "GET",
            Access::Put => "PUT",
        }
    }
}

enum Signing {
    /// The current secret key's signing key first, then the previous one's during a rotation.
    Filesystem {
        keys: Vec<[u8; 32]>,
        base_url: Option<String>,
    },
    S3(Box<AmazonS3>),
}

/// The object store and how to sign URLs for it.
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    signing: Signing,
    prefix: String,
    root: Option<PathBuf>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The store `config` names; the filesystem's URLs are signed with keys derived from
    /// `secret_keys`.
    pub fn open(config: &StorageConfig, secret_keys: &Keyring) -> Result<Storage, StorageError> {
        match config {
            StorageConfig::Filesystem { root, base_url } => {
                std::fs::create_dir_all(root)
                    .map_err(|err| StorageError(format!("cannot create {}: {err}", root.display())))?;
                let store = LocalFileSystem::new_with_prefix(root)
                    .map_err(|err| StorageError(format!("cannot use {}: {err}", root.display())))?;
                let keys = std::iter::once(secret_keys.current())
                    .chain(secret_keys.old())
                    .map(|key| *key.storage_key())
                    .collect();
                Ok(Storage {
                    store: Arc::new(store),
                    signing: Signing::Filesystem {
                        keys,
                        base_url: base_url.clone(),
                    },
                    prefix: String::new(),
                    root: Some(root.clone()),
                })
            }
            StorageConfig::S3(s3) => {
                let build = |endpoint: Option<&String>| {
                    let mut builder = AmazonS3Builder::new()
                        .with_bucket_name(&s3.bucket)
                        .with_region(&s3.region)
                        .with_virtual_hosted_style_request(false);
                    if let Some(endpoint) = endpoint {
                        builder = builder
                            .with_endpoint(endpoint)
                            .with_allow_http(endpoint.starts_with("http://"));
                    }
                    if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                        builder = builder.with_access_key_id(id).with_secret_access_key(secret);
                    }
                    builder
                        .build()
                        .map_err(|err| StorageError(format!("S3 bucket `{}`: {err}", s3.bucket)))
                };
                let store = build(s3.endpoint.as_ref())?;
                let signer = build(s3.external_endpoint.as_ref().or(s3.endpoint.as_ref()))?;
                Ok(Storage {
                    store: Arc::new(store),
                    signing: Signing::S3(Box::new(signer)),
                    prefix: s3.prefix.trim_matches('/').to_string(),
                    root: None,
                })
            }
        }
    }

    /// Whether other hosts can reach these objects (S3), not only this one (the filesystem).
    pub fn is_shared(&self) -> bool {
        matches!(self.signing, Signing::S3(_))
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(error("looking up", key, err)),
        }
    }

    /// The size of `key` in bytes; `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(error("looking up", key, err)),
        }
    }

    /// When `key` was last written (epoch ms); `None` when it does not exist.
    pub async fn modified(&self, key: &str) -> Result<Option<i64>, StorageError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.last_modified.timestamp_millis())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(error("looking up", key, err)),
        }
    }

    /// Every object under `prefix` (a `/`-ended key prefix), as `(key, last written in epoch
    /// ms)`, keys without the storage prefix.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, StorageError> {
        use futures_util::TryStreamExt as _;
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.path(prefix.trim_end_matches('/'))))
            .try_collect()
            .await
            .map_err(|err| error("listing", prefix, err))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Ok(metas
            .into_iter()
            .map(|meta| {
                let key = meta.location.to_string();
                let key = key.strip_prefix(&strip).map(str::to_string).unwrap_or(key);
                (key, meta.last_modified.timestamp_millis())
            })
            .collect())
    }

    /// Deletes `key`; a missing object is no error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(error("deleting", key, err)),
        }
    }

    /// Deletes every key of `keys`; missing objects are no error.
    pub async fn delete_many(&self, mut keys: Vec<String>) -> Result<(), StorageError> {
        use futures_util::StreamExt as _;
        keys.sort_unstable();
        keys.dedup();
        let paths: Vec<object_store::Result<ObjectPath>> = keys.iter().map(|key| Ok(self.path(key))).collect();
        let mut deleted = self.store.delete_stream(futures_util::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(error("deleting", &keys.join(", "), err)),
            }
        }
        Ok(())
    }

    /// The bytes of `key`; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self.store.get(&self.path(key)).await {
            Ok(result) => Ok(Some(
                result.bytes().await.map_err(|err| error("reading", key, err))?.to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(error("reading", key, err)),
        }
    }

    /// Writes `key` whole (readers see the old object or the new one, never a part).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|err| error("writing", key, err))?;
        Ok(())
    }

    /// A URL that allows `access` to `key` for `expires_in`. The filesystem backend's is a
    /// path (see the module's text) unless `KICI_STORAGE_FS_BASE_URL` names where it is.
    pub async fn signed_url(
        &self,
        access: Access,
        key: &str,
        expires_in: Duration,
        now_ms: i64,
    ) -> Result<String, StorageError> {
        match &self.signing {
            Signing::Filesystem { keys, base_url } => {
                let expires = now_ms + expires_in.as_millis() as i64;
                let signature = sign(&keys[0], access, key, expires);
                let base = base_url.as_deref().unwrap_or_default().trim_end_matches('/');
                Ok(format!("{base}/storage/{key}?expires={expires}&signature={signature}"))
            }
            Signing::S3(signer) => {
                let method = match access {
                    Access::Get => axum::http::Method::GET,
                    Access::Put => axum::http::Method::PUT,
                };
                signer
                    .signed_url(method, &self.path(key), expires_in)
                    .await
                    .map(|url| url.to_string())
                    .map_err(|err| error("signing a URL for", key, err))
            }
        }
    }

    /// Checks a filesystem URL's signature: `Ok` with the file's path when it allows `access`
    /// to `key` at `now_ms`. Keys with `..` or absolute parts are refused.
    pub fn check_signature(
        &self,
        access: Access,
        key: &str,
        expires: i64,
        signature: &str,
        now_ms: i64,
    ) -> Result<PathBuf, &'static str> {
        let (Signing::Filesystem { keys, .. }, Some(root)) = (&self.signing, &self.root) else {
            return Err("this orchestrator's storage is not the filesystem");
        };
        if key.is_empty()
            || key
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err("bad key");
        }
        if expires < now_ms {
            return Err("the URL has expired");
        }
        let signed = |secret| constant_time_eq(sign(secret, access, key, expires).as_bytes(), signature.as_bytes());
        if !keys.iter().any(signed) {
            return Err("bad signature");
        }
        Ok(root.join(key))
    }
}

fn sign(secret: &[u8; 32], access: Access, key: &str, expires: i64) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{}\n{key}\n{expires}", access.as_str()).as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_key::SecretKey;

    #[tokio::test]
    async fn the_filesystem_backend_stores_whole_objects_and_signs_urls_per_method_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::generate().0;
        let config = StorageConfig::Filesystem {
            root: dir.path().join("storage"),
            base_url: None,
        };
        let storage = Storage::open(&config, &Keyring::new(secret.clone(), None)).unwrap();
        assert!(!storage.exists("deps/linux-x64/abc.tar.gz").await.unwrap());
        storage
            .put("deps/linux-x64/abc.tar.gz", b"tarball".to_vec())
            .await
            .unwrap();
        assert!(storage.exists("deps/linux-x64/abc.tar.gz").await.unwrap());
        assert_eq!(
            storage.get("deps/linux-x64/abc.tar.gz").await.unwrap().unwrap(),
            b"tarball"
        );
        assert_eq!(storage.get("nope").await.unwrap(), None);

        let url = storage
            .signed_url(Access::Get, "deps/linux-x64/abc.tar.gz", Duration::from_secs(60), 1_000)
            .await
            .unwrap();
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(path, "/storage/deps/linux-x64/abc.tar.gz");
        let signature = query.split("signature=").nth(1).unwrap();
        let expires = 61_000;
        let key = "deps/linux-x64/abc.tar.gz";
        assert!(
            storage
                .check_signature(Access::Get, key, expires, signature, 2_000)
                .is_ok()
        );
        assert_eq!(
            storage.check_signature(Access::Put, key, expires, signature, 2_000),
            Err("bad signature")
        );
        assert_eq!(
            storage.check_signature(Access::Get, "deps/other.tar.gz", expires, signature, 2_000),
            Err("bad signature")
        );
        assert_eq!(
            storage.check_signature(Access::Get, key, expires, signature, 70_000),
            Err("the URL has expired")
        );
        assert_eq!(
            storage.check_signature(Access::Get, "deps/../../etc/passwd", expires, signature, 2_000),
            Err("bad key")
        );

        // The same secret key verifies it after a restart, and during a rotation away from it;
        // another key does not.
        let verifies = |keyring: Keyring| {
            Storage::open(&config, &keyring)
                .unwrap()
                .check_signature(Access::Get, key, expires, signature, 2_000)
                .is_ok()
        };
        let rotated = SecretKey::generate().0;
        assert!(verifies(Keyring::new(secret.clone(), None)));
        assert!(verifies(Keyring::new(rotated.clone(), Some(secret))));
        assert!(!verifies(Keyring::new(rotated, None)));

        let based = StorageConfig::Filesystem {
            root: dir.path().join("storage"),
            base_url: Some("https://files.example.com/kici/".into()),
        };
        let url = Storage::open(&based, &Keyring::new(SecretKey::generate().0, None))
            .unwrap()
            .signed_url(Access::Put, key, Duration::from_secs(60), 0)
            .await
            .unwrap();
        assert!(
            url.starts_with(
                "https://files.example.com/kici/storage/deps/linux-x64/abc.tar.gz?expires=60000&signature="
            ),
            "{url}"
        );
    }

    /// Against a real S3-compatible server (`scripts/s3.sh`, moto) when `KICI_TEST_S3_ENDPOINT`
    /// names one; `KICI_TEST_REQUIRE_S3=1` makes its absence a failure.
    #[tokio::test]
    async fn the_s3_backend_stores_objects_and_signs_urls_a_plain_http_client_can_use() {
        let Ok(endpoint) = std::env::var("KICI_TEST_S3_ENDPOINT") else {
            assert!(
                std::env::var("KICI_TEST_REQUIRE_S3").is_err(),
                "KICI_TEST_REQUIRE_S3 is set but KICI_TEST_S3_ENDPOINT is not"
            );
            return;
        };
        let bucket = format!("kici-test-{}", std::process::id());
        let http = reqwest::Client::new();
        let created = http.put(format!("{endpoint}/{bucket}")).send().await.unwrap();
        assert!(created.status().is_success(), "{}", created.status());
        let config = StorageConfig::S3(S3Config {
            bucket,
            prefix: "ci/".into(),
            region: "us-east-1".into(),
            endpoint: Some(endpoint),
            external_endpoint: None,
            access_key_id: Some("kici-test".into()),
            secret_access_key: Some("kici-test-secret".into()),
        });
        let storage = Storage::open(&config, &Keyring::new(SecretKey::generate().0, None)).unwrap();
        let key = "deps/linux-x64/abc.tar.gz";
        assert!(!storage.exists(key).await.unwrap());
        storage.put(key, b"tarball".to_vec()).await.unwrap();
        assert_eq!(storage.get(key).await.unwrap().unwrap(), b"tarball");

        let get = storage
            .signed_url(Access::Get, key, Duration::from_secs(60), 0)
            .await
            .unwrap();
        assert!(get.contains("/ci/deps/linux-x64/abc.tar.gz?"), "{get}");
        assert_eq!(
            http.get(&get).send().await.unwrap().bytes().await.unwrap().as_ref(),
            b"tarball"
        );
        let put = storage
            .signed_url(Access::Put, "deps/linux-x64/new.tar.gz", Duration::from_secs(60), 0)
            .await
            .unwrap();
        let uploaded = http.put(&put).body("uploaded").send().await.unwrap();
        assert!(uploaded.status().is_success(), "{}", uploaded.status());
        assert_eq!(
            storage.get("deps/linux-x64/new.tar.gz").await.unwrap().unwrap(),
            b"uploaded"
        );
    }
}
