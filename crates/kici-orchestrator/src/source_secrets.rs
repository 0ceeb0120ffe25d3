//! The secrets a source keeps in the store, encrypted with the [`Keyring`]: a generic source's
//! webhook secret (`sources.secret`) and its clone credentials (`sources.credentials`). Each
//! value is bound to its source and field, so one copied to another row or column does not
//! decrypt. A local source's `secret` is the SHA-256 of its trigger token: a hash, stored as
//! is and never touched here.
//!
//! At start, [`seal_at_start`] encrypts what an older database holds in plaintext (and moves
//! credentials out of a `gitUrl` into their own field); `rotate-key` ([`reseal`] with
//! [`Reseal::All`]) re-encrypts every value under the current key.

use kici_engine::ids::SourceId;
use kici_store::{SealedColumn, Source, SourceKind, Store, StoreError, Verification};

use crate::git::{self, Credentials};
use crate::secret_key::{Keyring, Sealed, SecretError};

/// What a source's `credentials` column holds once decrypted.
fn context(source_id: &SourceId, column: SealedColumn) -> String {
    match column {
        // The previous secret was sealed as the secret it then was.
        SealedColumn::Secret | SealedColumn::PreviousSecret => format!("source:{source_id}:secret"),
        SealedColumn::Credentials => format!("source:{source_id}:credentials"),
    }
}

fn column_name(column: SealedColumn) -> &'static str {
    match column {
        SealedColumn::Secret => "secret",
        SealedColumn::Credentials => "credentials",
        SealedColumn::PreviousSecret => "previous secret",
    }
}

pub fn seal_webhook_secret(keys: &Keyring, source_id: &SourceId, secret: &str) -> String {
    keys.seal(secret, &context(source_id, SealedColumn::Secret))
}

pub fn seal_credentials(keys: &Keyring, source_id: &SourceId, credentials: &Credentials) -> String {
    let json = serde_json::to_string(credentials).expect("credentials serialize");
    keys.seal(&json, &context(source_id, SealedColumn::Credentials))
}

/// A generic source's webhook secret (HMAC key), decrypted; `None` for sources without one.
pub fn webhook_secret(keys: &Keyring, source: &Source) -> Result<Option<String>, SecretError> {
    match (&source.verification, &source.secret) {
        (Verification::HmacSha256 | Verification::BearerToken, Some(stored)) => keys
            .open(stored, &context(&source.source_id, SealedColumn::Secret))
            .map(|opened| Some(opened.plaintext)),
        _ => Ok(None),
    }
}

/// The webhook secret a rotation replaced (`sealed`, the source's `previous_secret`),
/// decrypted.
pub fn previous_webhook_secret(keys: &Keyring, source: &Source, sealed: &str) -> Result<String, SecretError> {
    keys.open(sealed, &context(&source.source_id, SealedColumn::Secret))
        .map(|opened| opened.plaintext)
}

/// A source's clone credentials, decrypted.
pub fn credentials(keys: &Keyring, source: &Source) -> Result<Option<Credentials>, SecretError> {
    let Some(stored) = &source.credentials else {
        return Ok(None);
    };
    let opened = keys.open(stored, &context(&source.source_id, SealedColumn::Credentials))?;
    let stored: Credentials = serde_json::from_str(&opened.plaintext).map_err(|_| SecretError::Malformed)?;
    Ok(Some(stored))
}

/// Which values [`reseal`] writes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseal {
    /// Plaintext values only (start-up: values under the old key stay until `rotate-key`, so
    /// orchestrators not yet restarted with the new key can still read them).
    Plaintext,
    /// Plaintext values and values under `KICI_SECRET_KEY_OLD` (`rotate-key`).
    All,
}

/// What [`reseal`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resealed {
    /// Values written again under the current key.
    pub re_encrypted: usize,
    /// Values already under the current key (or, for [`Reseal::Plaintext`], left under the
    /// old key).
    pub already_current: usize,
    /// Values no configured key decrypts: `source \`<name>\` <field>: <why>`.
    pub failures: Vec<String>,
}

/// Encrypts (and with [`Reseal::All`] re-encrypts) every stored source secret under the
/// current key. A value another orchestrator changed meanwhile is left to it.
pub async fn reseal(store: &Store, keys: &Keyring, mode: Reseal) -> Result<Resealed, StoreError> {
    let mut result = Resealed::default();
    for source in store.list_sources().await? {
        let secret = match (source.verification, &source.secret) {
            (Verification::HmacSha256 | Verification::BearerToken, Some(secret)) => Some(secret),
            _ => None,
        };
        let values = [
            (SealedColumn::Secret, secret),
            (SealedColumn::Credentials, source.credentials.as_ref()),
            (SealedColumn::PreviousSecret, source.previous_secret.as_ref()),
        ];
        for (column, stored) in values {
            let Some(stored) = stored else { continue };
            let field = context(&source.source_id, column);
            let opened = match keys.open(stored, &field) {
                Ok(opened) => opened,
                Err(err) => {
                    result
                        .failures
                        .push(format!("source `{}` {}: {err}", source.name, column_name(column)));
                    continue;
                }
            };
            let rewrite = match opened.sealed {
                Sealed::Current => false,
                Sealed::Old => mode == Reseal::All,
                Sealed::Plaintext => true,
            };
            if !rewrite {
                result.already_current += 1;
                continue;
            }
            let sealed = keys.seal(&opened.plaintext, &field);
            if store.replace_sealed(&source.source_id, column, stored, &sealed).await? {
                result.re_encrypted += 1;
            }
        }
    }
    Ok(result)
}

/// Start-up: moves credentials that an older version kept in a generic source's `gitUrl`
/// into the encrypted credentials field, then encrypts plaintext secrets. Returns how many
/// URLs were cleaned, and what [`reseal`] did.
pub async fn seal_at_start(store: &Store, keys: &Keyring) -> Result<(usize, Resealed), StoreError> {
    let mut moved = 0;
    for source in store.list_sources().await? {
        let (SourceKind::Generic, Some(url), None) = (source.kind, &source.git_url, &source.credentials) else {
            continue;
        };
        let Some((clean, credentials)) = split_credentials(url) else {
            continue;
        };
        let sealed = seal_credentials(keys, &source.source_id, &credentials);
        if store
            .move_git_url_credentials(&source.source_id, url, &clean, &sealed)
            .await?
        {
            moved += 1;
        }
    }
    Ok((moved, reseal(store, keys, Reseal::Plaintext).await?))
}

/// `https://user:pass@host/x` → (`https://host/x`, user, pass), percent-decoded. `None` when
/// the URL has no userinfo or its username is all it has on a non-HTTP URL (`ssh://git@…`).
fn split_credentials(url: &str) -> Option<(String, Credentials)> {
    let userinfo = git::url_userinfo(url)?;
    let http = url.starts_with("http://") || url.starts_with("https://");
    let (username, password) = match userinfo.split_once(':') {
        Some((username, password)) => (username, password),
        None if http => (userinfo, ""),
        None => return None,
    };
    let start = url.find("://")? + 3;
    let clean = format!("{}{}", &url[..start], &url[start + userinfo.len() + 1..]);
    Some((
        clean,
        Credentials::password(percent_decode(username), percent_decode(password)),
    ))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_key::SecretKey;

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_B: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn keys(current: &str, old: Option<&str>) -> Keyring {
        Keyring::new(
            SecretKey::parse(current).unwrap(),
            old.map(|old| SecretKey::parse(old).unwrap()),
        )
    }

    fn generic(id: &str, secret: &str, git_url: &str) -> Source {
        Source {
            source_id: id.into(),
            org_id: "default".into(),
            name: id.into(),
            kind: SourceKind::Generic,
            path: None,
            git_url: Some(git_url.into()),
            preset: Some("github-repo".into()),
            verification: Verification::HmacSha256,
            secret: Some(secret.into()),
            credentials: None,
            max_payload_bytes: 1024,
            rate_limit_rpm: 600,
            created_at: 1,
            api_url: None,
            app_id: None,
            enabled: true,
            previous_secret: None,
            previous_secret_until: None,
            allowed_owners: None,
            allowed_ips: None,
        }
    }

    #[test]
    fn credentials_in_urls_are_split_off() {
        let (clean, credentials) =
            split_credentials("https://ci%40bot:p%3Ass@forge.example/{owner}/{name}.git").unwrap();
        assert_eq!(clean, "https://forge.example/{owner}/{name}.git");
        assert_eq!(
            (credentials.username.as_str(), credentials.password.as_str()),
            ("ci@bot", "p:ss")
        );
        let (clean, credentials) = split_credentials("https://tok@forge.example/a.git").unwrap();
        assert_eq!(
            (clean.as_str(), credentials.username.as_str()),
            ("https://forge.example/a.git", "tok")
        );
        assert!(split_credentials("ssh://git@forge.example/a.git").is_none());
        assert!(split_credentials("https://forge.example/a.git").is_none());
    }

    /// An older database: plaintext webhook secrets and a password in a git URL. After the
    /// start-up step every stored value is `enc:v1:…` with no plaintext left in the row, and
    /// they decrypt to what they were; a second start changes nothing.
    #[tokio::test]
    async fn an_old_database_is_encrypted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/kici.db?mode=rwc", dir.path().display()))
            .await
            .unwrap();
        store
            .insert_source(&generic(
                "g1",
                "plain-hmac-secret-1",
                "https://ci-bot:clone-pass-9@forge.example/{owner}/{name}.git",
            ))
            .await
            .unwrap();
        store
            .insert_source(&generic("g2", "plain-hmac-secret-2", "https://forge.example/x.git"))
            .await
            .unwrap();
        let mut local = generic("l1", "0123abcd", "");
        local.kind = SourceKind::Local;
        local.verification = Verification::TriggerToken;
        local.git_url = None;
        store.insert_source(&local).await.unwrap();

        let keys = keys(KEY_A, None);
        let (moved, resealed) = seal_at_start(&store, &keys).await.unwrap();
        assert_eq!((moved, resealed.re_encrypted, resealed.already_current), (1, 2, 1));
        assert!(resealed.failures.is_empty(), "{:?}", resealed.failures);

        let prefix = format!("enc:v1:{}:", keys.current_id());
        let sources = store.list_sources().await.unwrap();
        for source in sources.iter().filter(|s| s.kind == SourceKind::Generic) {
            assert!(source.secret.as_deref().unwrap().starts_with(&prefix), "{source:?}");
        }
        let g1 = &sources[0];
        assert_eq!(g1.git_url.as_deref(), Some("https://forge.example/{owner}/{name}.git"));
        assert!(g1.credentials.as_deref().unwrap().starts_with(&prefix));
        assert_eq!(
            webhook_secret(&keys, g1).unwrap().as_deref(),
            Some("plain-hmac-secret-1")
        );
        let credentials = credentials(&keys, g1).unwrap().unwrap();
        assert_eq!(
            (credentials.username.as_str(), credentials.password.as_str()),
            ("ci-bot", "clone-pass-9")
        );
        assert_eq!(
            sources[2].secret.as_deref(),
            Some("0123abcd"),
            "a trigger-token hash stays"
        );

        for source in &sources {
            let row = format!("{source:?}");
            for plaintext in ["plain-hmac-secret-1", "plain-hmac-secret-2", "clone-pass-9"] {
                assert!(!row.contains(plaintext), "{row}");
            }
        }

        let (moved, resealed) = seal_at_start(&store, &keys).await.unwrap();
        assert_eq!((moved, resealed.re_encrypted, resealed.already_current), (0, 0, 3));
    }

    /// Rotation: values under the old key are re-encrypted under the new one, and then read
    /// with the new key alone; a value no key decrypts is reported, not lost.
    #[tokio::test]
    async fn rotation_re_encrypts_under_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/kici.db?mode=rwc", dir.path().display()))
            .await
            .unwrap();
        let old = keys(KEY_A, None);
        let mut source = generic("g1", "", "https://forge.example/a.git");
        source.secret = Some(seal_webhook_secret(&old, &SourceId::from("g1"), "hmac-1"));
        source.credentials = Some(seal_credentials(
            &old,
            &SourceId::from("g1"),
            &Credentials::password("u", "p"),
        ));
        // A secret rotation's previous secret, still accepted for its window.
        source.previous_secret = Some(seal_webhook_secret(&old, &SourceId::from("g1"), "hmac-0"));
        source.previous_secret_until = Some(i64::MAX);
        store.insert_source(&source).await.unwrap();
        store.update_source(&source).await.unwrap();

        let rotating = keys(KEY_B, Some(KEY_A));
        let at_start = reseal(&store, &rotating, Reseal::Plaintext).await.unwrap();
        assert_eq!((at_start.re_encrypted, at_start.already_current), (0, 3));
        let rotated = reseal(&store, &rotating, Reseal::All).await.unwrap();
        assert_eq!(
            rotated,
            Resealed {
                re_encrypted: 3,
                already_current: 0,
                failures: vec![]
            }
        );
        let again = reseal(&store, &rotating, Reseal::All).await.unwrap();
        assert_eq!((again.re_encrypted, again.already_current), (0, 3));

        let new_only = keys(KEY_B, None);
        let stored = store.find_source("default", "g1").await.unwrap().unwrap();
        assert!(
            stored
                .secret
                .as_deref()
                .unwrap()
                .starts_with(&format!("enc:v1:{}:", new_only.current_id()))
        );
        assert_eq!(webhook_secret(&new_only, &stored).unwrap().as_deref(), Some("hmac-1"));
        assert_eq!(credentials(&new_only, &stored).unwrap().unwrap().password, "p");
        let previous = stored.previous_secret.as_deref().unwrap();
        assert_eq!(previous_webhook_secret(&new_only, &stored, previous).unwrap(), "hmac-0");

        let unrelated = keys(KEY_A, None);
        let failed = reseal(&store, &unrelated, Reseal::All).await.unwrap();
        assert_eq!(failed.failures.len(), 3, "{failed:?}");
        assert!(
            failed.failures[0].starts_with("source `g1` secret: stored secret was encrypted under key `"),
            "{failed:?}"
        );
        assert_eq!(
            webhook_secret(&new_only, &store.find_source("default", "g1").await.unwrap().unwrap())
                .unwrap()
                .as_deref(),
            Some("hmac-1")
        );
    }
}
