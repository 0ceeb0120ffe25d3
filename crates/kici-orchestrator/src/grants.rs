//! Grants: what a dispatched job presents to the orchestrator's own APIs (the cache API): an
//! HS256 JWT under a key of this process, naming the job, its run and its repository, with an
//! expiry. The token is the authorization, so it never reaches a log (`CacheGrant`'s `Debug`).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kici_engine::ids::{JobId, RunId};
use kici_engine::protocol::{CacheGrant, JobDispatch};
use serde::{Deserialize, Serialize};

/// How long a grant stays valid: past the longest job timeout an author is likely to set, and
/// bounded so a leaked token soon expires.
const GRANT_TTL: Duration = Duration::from_secs(6 * 3600);

/// The signing key of this process's grants.
pub struct GrantKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl GrantKeys {
    pub fn generate() -> GrantKeys {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system provides randomness");
        GrantKeys {
            encoding: EncodingKey::from_secret(&secret).expect("a 32-byte HMAC key is valid"),
            decoding: DecodingKey::from_secret(&secret).expect("a 32-byte HMAC key is valid"),
        }
    }
}

/// What a grant says: the job (`sub`), its run, its repository and the expiry (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: JobId,
    pub run: RunId,
    pub repo: String,
    pub exp: u64,
}

/// A grant for `dispatch`'s job in repository `repo`, for the API at `url`.
pub fn issue(keys: &GrantKeys, dispatch: &JobDispatch, repo: &str, url: String, now_ms: i64) -> CacheGrant {
    let claims = Claims {
        sub: dispatch.job_id.clone(),
        run: dispatch.run_id.clone(),
        repo: repo.to_string(),
        exp: (now_ms.max(0) as u64 / 1000) + GRANT_TTL.as_secs(),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
        .expect("HS256 signing does not fail");
    CacheGrant { url, token }
}

/// The claims of a valid grant, or why it is not one.
pub fn verify(keys: &GrantKeys, token: &str) -> Result<Claims, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the cache grant has expired".to_string(),
            _ => "the cache grant is not valid".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch() -> JobDispatch {
        serde_json::from_value(serde_json::json!({
            "runId": "r1", "jobId": "j1", "repoUrl": "file:///x", "gitRef": "refs/heads/main", "sha": "abc",
            "jobConfig": {"kind": "execute", "workflowName": "w", "workflowFile": "f", "contentHash": "h",
                          "jobName": "a", "displayName": "a"},
            "event": {"type": "push"}, "timestamp": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_grant_names_its_job_and_repository_and_expires() {
        let keys = GrantKeys::generate();
        let now = 1_800_000_000_000;
        let grant = issue(&keys, &dispatch(), "acme/app", "http://127.0.0.1:4000".into(), now);
        let claims = verify(&keys, &grant.token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.run.as_str(), claims.repo.as_str()),
            ("j1", "r1", "acme/app")
        );
        assert!(!format!("{grant:?}").contains(&grant.token));
        // Another process's key, a tampered token, an expired one: refused.
        assert_eq!(
            verify(&GrantKeys::generate(), &grant.token).unwrap_err(),
            "the cache grant is not valid"
        );
        assert!(verify(&keys, &format!("{}x", grant.token)).is_err());
        let old = issue(&keys, &dispatch(), "acme/app", String::new(), 1_000_000);
        assert_eq!(verify(&keys, &old.token).unwrap_err(), "the cache grant has expired");
    }
}
