//! The master key that encrypts secrets at rest, and the format of an encrypted value.
//!
//! Key: 32 bytes, from `KICI_SECRET_KEY` (64 hex characters, else base64 of 32 bytes), else the
//! file `KICI_SECRET_KEY_FILE` names (same forms), else `<data dir>/secret-key`, generated on
//! the first start (mode 0600; the start logs a warning to back it up and set it explicitly).
//! `KICI_SECRET_KEY_OLD` (or `KICI_SECRET_KEY_FILE_OLD`) is the previous key during a rotation.
//!
//! Value: `enc:v1:<key id>:<base64(nonce ‖ tag ‖ ciphertext)>`, AES-256-GCM with a random
//! 12-byte nonce per value, a 16-byte tag, and the field it belongs to as associated data (so a
//! value copied to another row or column does not decrypt). The key id is the first 8 hex
//! characters of the SHA-256 of the key: it says which key wrote a value without revealing it.
//! A value without the `enc:` prefix is a plaintext from before encryption.
//!
//! What is encrypted, and when, is [`crate::source_secrets`]'s business; this module never
//! touches the store.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A key is this many bytes.
pub const KEY_BYTES: usize = 32;
/// The generated key's file in the data directory.
pub const GENERATED_KEY_FILE: &str = "secret-key";
/// Every encrypted value starts with this.
pub const SEALED_PREFIX: &str = "enc:";
/// The format written today.
const FORMAT_VERSION: &str = "v1";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
type Tag = aes_gcm::aead::Tag<Aes256Gcm>;

/// Why a key's text is not a key. The texts follow the spec (`operator.md` §5.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error(
        "Encryption key must be exactly 32 bytes, got {bytes} bytes. Use 64 hex characters or the base64 of 32 bytes (hint: `openssl rand -hex 32`)"
    )]
    WrongLength { bytes: usize },
    #[error("Encryption key is neither 64 hex characters nor base64 (hint: `openssl rand -hex 32`)")]
    NotHexOrBase64,
}

/// Why a stored value does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("stored secret is not a valid `enc:v1:<key id>:<base64>` value")]
    Malformed,
    #[error("stored secret uses format `{0}`, which this build cannot read (hint: run the KiCI version that wrote it)")]
    UnsupportedVersion(String),
    #[error(
        "stored secret was encrypted under key `{key_id}`, which is neither KICI_SECRET_KEY (key `{current}`) nor KICI_SECRET_KEY_OLD{} (hint: start the orchestrator with the key it was written under in KICI_SECRET_KEY_OLD, then run `kici-admin rotate-key`)",
        .old.as_ref().map(|old| format!(" (key `{old}`)")).unwrap_or_default()
    )]
    UnknownKey {
        key_id: String,
        current: String,
        old: Option<String>,
    },
    #[error("stored secret does not decrypt under key `{key_id}`: it was altered, or it belongs to another field")]
    Tampered { key_id: String },
}

/// One AES-256 key and its id. `Debug` shows the id only.
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    cipher: Aes256Gcm,
    /// The key the orchestrator signs jobs' grants with, derived from this one, so every
    /// orchestrator sharing the key verifies the others' grants.
    grant_key: [u8; KEY_BYTES],
    /// The key the filesystem store's signed URLs carry an HMAC under, derived likewise: a URL
    /// outlives a restart and is good at every orchestrator sharing the key.
    storage_key: [u8; KEY_BYTES],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> SecretKey {
        let digest = Sha256::digest(bytes);
        let id: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        // HMAC-SHA256 keyed by the secret key: a derived key reveals nothing of it, nor of
        // the other derived key.
        let derive = |label: &[u8]| -> [u8; KEY_BYTES] {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes).expect("HMAC takes a key of any length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        SecretKey {
            id,
            cipher: Aes256Gcm::new(&(*bytes).into()),
            grant_key: derive(b"kici grant signing key v1"),
            storage_key: derive(b"kici storage url signing key v1"),
        }
    }

    /// 64 hex characters, else base64 (padded or not) of 32 bytes; surrounding whitespace is
    /// ignored. The error never quotes the text.
    pub fn parse(text: &str) -> Result<SecretKey, KeyFormatError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..KEY_BYTES)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("checked hex digits"))
                .collect()
        } else {
            let unpadded = text.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(unpadded)
                .map_err(|_| KeyFormatError::NotHexOrBase64)?
        };
        let bytes: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyFormatError::WrongLength { bytes: bytes.len() })?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    /// A new random key and its hex form (what a generated key file holds).
    pub fn generate() -> (SecretKey, String) {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
        (SecretKey::from_bytes(&bytes), hex)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key jobs' grants are signed with (`crate::grants`), derived from this one.
    pub fn grant_key(&self) -> &[u8; KEY_BYTES] {
        &self.grant_key
    }

    /// The key the filesystem store's signed URLs are signed with (`crate::storage`).
    pub fn storage_key(&self) -> &[u8; KEY_BYTES] {
        &self.storage_key
    }
}

/// Where the current key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `KICI_SECRET_KEY`.
    Env,
    /// `KICI_SECRET_KEY_FILE`.
    File(PathBuf),
    /// `<data dir>/secret-key`, generated by an earlier start.
    DataDir(PathBuf),
    /// `<data dir>/secret-key` did not exist: a new key, written by [`Keyring::persist_generated`].
    Generated(PathBuf),
}

/// How a stored value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// Under the current key.
    Current,
    /// Under `KICI_SECRET_KEY_OLD`: `rotate-key` re-encrypts it.
    Old,
    /// Not encrypted (written before encryption existed).
    Plaintext,
}

/// A decrypted value and how it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub plaintext: String,
    pub sealed: Sealed,
}

/// The current key, the previous one during a rotation, and where the current one came from.
#[derive(Clone)]
pub struct Keyring {
    current: SecretKey,
    old: Option<SecretKey>,
    origin: KeyOrigin,
    /// The hex of a generated key until it is written to the data directory.
    generated_hex: Option<String>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("old", &self.old)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What [`Keyring::persist_generated`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFile {
    /// The key does not live in the data directory, or its file was there already.
    Unchanged,
    /// A new key was written to this file (mode 0600).
    Generated(PathBuf),
    /// The data directory's key file was readable by others: now 0600 (the mode it had).
    Tightened { path: PathBuf, previous_mode: u32 },
}

impl Keyring {
    pub fn new(current: SecretKey, old: Option<SecretKey>) -> Keyring {
        Keyring {
            current,
            old,
            origin: KeyOrigin::Env,
            generated_hex: None,
        }
    }

    /// Reads the keys from the environment (and the files it names, or the data directory's
    /// key file). Every problem is one line naming the variable or file.
    pub fn from_env(env: &BTreeMap<String, String>, data_dir: &Path) -> Result<Keyring, Vec<String>> {
        let mut errors = Vec::new();
        let current = match read_setting(env, "KICI_SECRET_KEY", "KICI_SECRET_KEY_FILE") {
            Ok(Some((key, origin))) => Some((key, origin, None)),
            Ok(None) => {
                let path = data_dir.join(GENERATED_KEY_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) => match SecretKey::parse(&text) {
                        Ok(key) => Some((key, KeyOrigin::DataDir(path), None)),
                        Err(err) => {
                            errors.push(format!(
                                "{}: {err} (hint: restore the file from a backup, or set KICI_SECRET_KEY)",
                                path.display()
                            ));
                            None
                        }
                    },
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        let (key, hex) = SecretKey::generate();
                        Some((key, KeyOrigin::Generated(path), Some(hex)))
                    }
                    Err(err) => {
                        errors.push(format!("{}: cannot read the secret key: {err}", path.display()));
                        None
                    }
                }
            }
            Err(error) => {
                errors.push(error);
                None
            }
        };
        let old = match read_setting(env, "KICI_SECRET_KEY_OLD", "KICI_SECRET_KEY_FILE_OLD") {
            Ok(old) => old.map(|(key, _)| key),
            Err(error) => {
                errors.push(error);
                None
            }
        };
        match current {
            Some((current, origin, generated_hex)) if errors.is_empty() => {
                if old.as_ref().is_some_and(|old| old.id == current.id) {
                    return Err(vec![
                        "KICI_SECRET_KEY_OLD: is the same key as the current one (hint: put the previous key there, or unset it)"
                            .into(),
                    ]);
                }
                Ok(Keyring {
                    current,
                    old,
                    origin,
                    generated_hex,
                })
            }
            _ => Err(errors),
        }
    }

    /// The current key, whose derived grant key signs jobs' grants.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// The previous key during a rotation (`KICI_SECRET_KEY_OLD`).
    pub fn old(&self) -> Option<&SecretKey> {
        self.old.as_ref()
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn old_id(&self) -> Option<&str> {
        self.old.as_ref().map(|key| key.id.as_str())
    }

    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    /// Encrypts `plaintext` under the current key for the field named by `context`.
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = Nonce::default();
        getrandom::fill(nonce.as_mut_slice()).expect("the operating system provides randomness");
        let mut buffer = plaintext.as_bytes().to_vec();
        let tag = self
            .current
            .cipher
            .encrypt_inout_detached(&nonce, context.as_bytes(), buffer.as_mut_slice().into())
            .expect("AES-GCM encrypts values far below its 64 GiB limit");
        let mut packed = Vec::with_capacity(NONCE_BYTES + TAG_BYTES + buffer.len());
        packed.extend_from_slice(&nonce);
        packed.extend_from_slice(&tag);
        packed.extend_from_slice(&buffer);
        format!(
            "{SEALED_PREFIX}{FORMAT_VERSION}:{}:{}",
            self.current.id,
            BASE64.encode(packed)
        )
    }

    /// Decrypts a stored value of the field named by `context`; a value without the `enc:`
    /// prefix is returned as it is ([`Sealed::Plaintext`]).
    pub fn open(&self, stored: &str, context: &str) -> Result<Opened, SecretError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(Opened {
                plaintext: stored.to_string(),
                sealed: Sealed::Plaintext,
            });
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(version), Some(key_id), Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Malformed);
        };
        if version != FORMAT_VERSION {
            return Err(SecretError::UnsupportedVersion(version.chars().take(16).collect()));
        }
        let (key, sealed) = if key_id == self.current.id {
            (&self.current, Sealed::Current)
        } else if let Some(old) = self.old.as_ref().filter(|old| old.id == key_id) {
            (old, Sealed::Old)
        } else {
            return Err(SecretError::UnknownKey {
                key_id: key_id.chars().take(16).collect(),
                current: self.current.id.clone(),
                old: self.old_id().map(str::to_string),
            });
        };
        let packed = BASE64.decode(payload).map_err(|_| SecretError::Malformed)?;
        if packed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SecretError::Malformed);
        }
        let (nonce, rest) = packed.split_at(NONCE_BYTES);
        let (tag, ciphertext) = rest.split_at(TAG_BYTES);
        let nonce = Nonce::try_from(nonce).map_err(|_| SecretError::Malformed)?;
        let tag = Tag::try_from(tag).map_err(|_| SecretError::Malformed)?;
        let mut buffer = ciphertext.to_vec();
        key.cipher
            .decrypt_inout_detached(&nonce, context.as_bytes(), buffer.as_mut_slice().into(), &tag)
            .map_err(|_| SecretError::Tampered { key_id: key.id.clone() })?;
        let plaintext = String::from_utf8(buffer).map_err(|_| SecretError::Malformed)?;
        Ok(Opened { plaintext, sealed })
    }

    /// Writes a key generated by [`Keyring::from_env`] to the data directory (mode 0600), or
    /// makes an existing data-directory key file private. Called once at start, after the
    /// data directory exists. When another process wrote the file first, its key is used.
    pub fn persist_generated(&mut self) -> std::io::Result<KeyFile> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

        match (&self.origin, self.generated_hex.take()) {
            (KeyOrigin::Generated(path), Some(hex)) => {
                let path = path.clone();
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                match created {
                    Ok(mut file) => {
                        file.write_all(format!("{hex}\n").as_bytes())?;
                        file.sync_all()?;
                        Ok(KeyFile::Generated(path))
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&path)?;
                        self.current = SecretKey::parse(&text)
                            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
                        self.origin = KeyOrigin::DataDir(path);
                        Ok(KeyFile::Unchanged)
                    }
                    Err(err) => Err(err),
                }
            }
            (KeyOrigin::DataDir(path), _) => {
                let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
                if mode & 0o077 == 0 {
                    return Ok(KeyFile::Unchanged);
                }
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(KeyFile::Tightened {
                    path: path.clone(),
                    previous_mode: mode,
                })
            }
            _ => Ok(KeyFile::Unchanged),
        }
    }
}

/// A key from `value_var`, else from the file `file_var` names; both set is an error.
fn read_setting(
    env: &BTreeMap<String, String>,
    value_var: &str,
    file_var: &str,
) -> Result<Option<(SecretKey, KeyOrigin)>, String> {
    let value = env.get(value_var).filter(|v| !v.trim().is_empty());
    let file = env.get(file_var).filter(|v| !v.trim().is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("{file_var}: set either {value_var} or {file_var}, not both")),
        (Some(text), None) => SecretKey::parse(text)
            .map(|key| Some((key, KeyOrigin::Env)))
            .map_err(|err| format!("{value_var}: {err}")),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|err| format!("{file_var}: cannot read `{path}`: {err}"))?;
            SecretKey::parse(&text)
                .map(|key| Some((key, KeyOrigin::File(PathBuf::from(path)))))
                .map_err(|err| format!("{file_var}: `{path}`: {err}"))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_B: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn key(text: &str) -> SecretKey {
        SecretKey::parse(text).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn round_trip_and_format() {
        let keys = Keyring::new(key(KEY_A), None);
        let sealed = keys.seal("s3cret", "source:s1:secret");
        let prefix = format!("enc:v1:{}:", keys.current_id());
        assert!(sealed.starts_with(&prefix), "{sealed}");
        assert!(!sealed.contains("s3cret"));
        let packed = BASE64.decode(&sealed[prefix.len()..]).unwrap();
        assert_eq!(packed.len(), NONCE_BYTES + TAG_BYTES + "s3cret".len());
        assert_eq!(
            keys.open(&sealed, "source:s1:secret").unwrap(),
            Opened {
                plaintext: "s3cret".into(),
                sealed: Sealed::Current
            }
        );
        assert_eq!(keys.open("", "c").unwrap().plaintext, "");
        assert_eq!(keys.open(&keys.seal("", "c"), "c").unwrap().plaintext, "");
    }

    #[test]
    fn nonce_differs_per_value() {
        let keys = Keyring::new(key(KEY_A), None);
        let first = keys.seal("same", "c");
        let second = keys.seal("same", "c");
        assert_ne!(first, second);
        assert_ne!(first[..30], second[..30]);
    }

    #[test]
    fn wrong_key_fails_with_a_clear_error() {
        let written = Keyring::new(key(KEY_A), None).seal("s3cret", "c");
        let other = Keyring::new(key(KEY_B), None);
        let err = other.open(&written, "c").unwrap_err();
        let id_a = key(KEY_A).id().to_string();
        let id_b = key(KEY_B).id().to_string();
        assert_eq!(
            err.to_string(),
            format!(
                "stored secret was encrypted under key `{id_a}`, which is neither KICI_SECRET_KEY (key `{id_b}`) nor KICI_SECRET_KEY_OLD (hint: start the orchestrator with the key it was written under in KICI_SECRET_KEY_OLD, then run `kici-admin rotate-key`)"
            )
        );
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn old_key_decrypts_what_it_wrote() {
        let written = Keyring::new(key(KEY_A), None).seal("s3cret", "c");
        let rotating = Keyring::new(key(KEY_B), Some(key(KEY_A)));
        assert_eq!(
            rotating.open(&written, "c").unwrap(),
            Opened {
                plaintext: "s3cret".into(),
                sealed: Sealed::Old
            }
        );
        let resealed = rotating.seal("s3cret", "c");
        assert!(resealed.starts_with(&format!("enc:v1:{}:", key(KEY_B).id())));
        assert_eq!(rotating.open(&resealed, "c").unwrap().sealed, Sealed::Current);
    }

    #[test]
    fn tampered_values_fail() {
        let keys = Keyring::new(key(KEY_A), None);
        let sealed = keys.seal("s3cret", "source:s1:secret");
        let (head, payload) = sealed.rsplit_once(':').unwrap();
        let mut packed = BASE64.decode(payload).unwrap();
        let last = packed.len() - 1;
        packed[last] ^= 1;
        let tampered = format!("{head}:{}", BASE64.encode(&packed));
        let tampered_error = SecretError::Tampered {
            key_id: keys.current_id().to_string(),
        };
        assert_eq!(keys.open(&tampered, "source:s1:secret"), Err(tampered_error.clone()));
        // The same value read as another field's.
        assert_eq!(keys.open(&sealed, "source:s2:secret"), Err(tampered_error));
        assert_eq!(keys.open("enc:v1", "c"), Err(SecretError::Malformed));
        assert_eq!(
            keys.open(&format!("enc:v1:{}:!!", keys.current_id()), "c"),
            Err(SecretError::Malformed)
        );
        assert_eq!(
            keys.open(&format!("enc:v1:{}:AAAA", keys.current_id()), "c"),
            Err(SecretError::Malformed)
        );
        assert_eq!(
            keys.open("enc:v9:x:AAAA", "c"),
            Err(SecretError::UnsupportedVersion("v9".into()))
        );
    }

    #[test]
    fn key_forms() {
        let hex = key(KEY_A);
        let base64 = key(&BASE64.encode((0u8..32).collect::<Vec<u8>>()));
        assert_eq!(hex.id(), base64.id());
        assert_eq!(key(&format!(" {KEY_A}\n")).id(), hex.id());
        assert_eq!(hex.id().len(), 8);
        assert_ne!(hex.id(), key(KEY_B).id());
        assert_eq!(
            SecretKey::parse("abcd").unwrap_err().to_string(),
            "Encryption key must be exactly 32 bytes, got 3 bytes. Use 64 hex characters or the base64 of 32 bytes (hint: `openssl rand -hex 32`)"
        );
        assert_eq!(
            SecretKey::parse("not a key!").unwrap_err(),
            KeyFormatError::NotHexOrBase64
        );
        assert_eq!(
            SecretKey::parse(&BASE64.encode([7u8; 16])).unwrap_err(),
            KeyFormatError::WrongLength { bytes: 16 }
        );
        assert!(!format!("{hex:?}").contains("0001"), "{hex:?}");
    }

    #[test]
    fn keys_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::from_env(&env(&[("KICI_SECRET_KEY", KEY_A)]), dir.path()).unwrap();
        assert_eq!(
            (keys.current_id(), keys.old_id(), keys.origin()),
            (key(KEY_A).id(), None, &KeyOrigin::Env)
        );

        let file = dir.path().join("key");
        std::fs::write(&file, format!("{KEY_B}\n")).unwrap();
        let keys = Keyring::from_env(
            &env(&[
                ("KICI_SECRET_KEY_FILE", file.to_str().unwrap()),
                ("KICI_SECRET_KEY_OLD", KEY_A),
            ]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            (keys.current_id(), keys.old_id(), keys.origin()),
            (key(KEY_B).id(), Some(key(KEY_A).id()), &KeyOrigin::File(file.clone()))
        );
        let keys = Keyring::from_env(
            &env(&[
                ("KICI_SECRET_KEY", KEY_A),
                ("KICI_SECRET_KEY_FILE_OLD", file.to_str().unwrap()),
            ]),
            dir.path(),
        )
        .unwrap();
        assert_eq!(keys.old_id(), Some(key(KEY_B).id()));

        let errors = Keyring::from_env(
            &env(&[
                ("KICI_SECRET_KEY", "0123"),
                ("KICI_SECRET_KEY_OLD", KEY_A),
                ("KICI_SECRET_KEY_FILE_OLD", "/nowhere"),
            ]),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "KICI_SECRET_KEY: Encryption key must be exactly 32 bytes, got 3 bytes. Use 64 hex characters or the base64 of 32 bytes (hint: `openssl rand -hex 32`)",
                "KICI_SECRET_KEY_FILE_OLD: set either KICI_SECRET_KEY_OLD or KICI_SECRET_KEY_FILE_OLD, not both",
            ]
        );
        let errors = Keyring::from_env(&env(&[("KICI_SECRET_KEY_FILE", "/nowhere/key")]), dir.path()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("KICI_SECRET_KEY_FILE: cannot read `/nowhere/key`: "),
            "{errors:?}"
        );
        let errors = Keyring::from_env(
            &env(&[("KICI_SECRET_KEY", KEY_A), ("KICI_SECRET_KEY_OLD", KEY_A)]),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            ["KICI_SECRET_KEY_OLD: is the same key as the current one (hint: put the previous key there, or unset it)"]
        );
    }

    #[test]
    fn generated_key_is_written_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        let mut keys = Keyring::from_env(&env(&[]), dir.path()).unwrap();
        assert_eq!(keys.origin(), &KeyOrigin::Generated(path.clone()));
        assert!(!path.exists(), "reading the configuration writes nothing");
        assert_eq!(keys.persist_generated().unwrap(), KeyFile::Generated(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(keys.persist_generated().unwrap(), KeyFile::Unchanged);

        let mut again = Keyring::from_env(&env(&[]), dir.path()).unwrap();
        assert_eq!(again.origin(), &KeyOrigin::DataDir(path.clone()));
        assert_eq!(again.current_id(), keys.current_id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            again.persist_generated().unwrap(),
            KeyFile::Tightened {
                path: path.clone(),
                previous_mode: 0o644
            }
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        std::fs::write(&path, "short").unwrap();
        let errors = Keyring::from_env(&env(&[]), dir.path()).unwrap_err();
        assert!(
            errors[0].ends_with(
                "Encryption key is neither 64 hex characters nor base64 (hint: `openssl rand -hex 32`) (hint: restore the file from a backup, or set KICI_SECRET_KEY)"
            ),
            "{errors:?}"
        );
    }
}
