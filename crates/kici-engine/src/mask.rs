//! Masking in text: agent tokens (a `kat_` followed by 64 hex digits becomes `kat_***`; service
//! logs pass every line through it, `kici-admin debug-bundle` every file), and a job's secret
//! values ([`SecretMasker`]: every value and the forms a careless step prints it in becomes
//! `***`; the agent passes every log line of the job through it, after the runner did).
//!
//! Not here: the bundle's allowlist redaction (in `kici-admin`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

/// Values (and forms of values) shorter than this are not masked: masking one to three
/// characters would garble every log line while hiding nothing.
pub const MIN_MASKED_LEN: usize = 4;

/// Replaces secret values in text with `***`.
#[derive(Clone, Default)]
pub struct SecretMasker {
    /// Longest first, so a value containing another is masked whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for SecretMasker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretMasker({} forms)", self.needles.len())
    }
}

impl SecretMasker {
    /// Masks each value, its base64 (standard and URL-safe), its percent-encoded form, its
    /// JSON-escaped form, and each line of a multi-line value.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> SecretMasker {
        let mut needles = Vec::new();
        for value in values {
            needles.push(value.to_string());
            needles.push(STANDARD.encode(value));
            needles.push(URL_SAFE.encode(value));
            needles.push(URL_SAFE_NO_PAD.encode(value));
            needles.push(percent_encode(value));
            let json = serde_json::to_string(value).expect("a string serializes");
            needles.push(json[1..json.len() - 1].to_string());
            needles.extend(value.lines().map(|line| line.trim().to_string()));
        }
        needles.retain(|needle| needle.chars().count() >= MIN_MASKED_LEN);
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        SecretMasker { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut masked = text.to_string();
        for needle in &self.needles {
            if masked.contains(needle.as_str()) {
                masked = masked.replace(needle.as_str(), "***");
            }
        }
        masked
    }
}

/// `encodeURIComponent`: everything but `A–Z a–z 0–9 - _ . ! ~ * ' ( )` as `%XX` of its UTF-8.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Replaces every `kat_` followed by 64 hex digits with `kat_***`.
pub fn mask_agent_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("kat_") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 4..];
        let hex_len = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex_len >= 64 {
            out.push_str("kat_***");
            rest = &after[hex_len..];
        } else {
            out.push_str("kat_");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_in_every_careless_form() {
        let canary = "canary-9f8e7d6c5b4a";
        let multi = "-----BEGIN KEY-----\nline-two-abcdef\nend";
        let masker = SecretMasker::new([canary, multi, "abc"]);
        let printed = [
            format!("echo {canary}"),
            format!("{{\"v\":\"{canary}\"}}"),
            STANDARD.encode(canary),
            URL_SAFE_NO_PAD.encode(multi),
            format!("url={}", percent_encode("a b/canary-9f8e7d6c5b4a")),
            "line-two-abcdef".to_string(),
            serde_json::to_string(multi).unwrap(),
        ];
        for line in &printed {
            let masked = masker.mask(line);
            assert!(
                !masked.contains(canary) && !masked.contains("line-two-abcdef"),
                "{line} -> {masked}"
            );
            assert!(masked.contains("***"), "{line} -> {masked}");
        }
        assert_eq!(
            masker.mask("abc stays: too short to mask"),
            "abc stays: too short to mask"
        );
        assert_eq!(masker.mask(&format!("x{canary}y")), "x***y");
        assert!(SecretMasker::new([]).is_empty());
    }

    #[test]
    fn agent_tokens_are_masked() {
        let token = format!("kat_{}", "ab".repeat(32));
        assert_eq!(mask_agent_tokens(&format!("token={token} x")), "token=kat_*** x");
        assert_eq!(mask_agent_tokens("kat_short"), "kat_short");
    }
}
