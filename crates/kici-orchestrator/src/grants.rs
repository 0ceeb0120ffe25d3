//! Grants: what a dispatched job presents to the orchestrator's own APIs (the cache API, the
//! git server of local sources): an HS256 JWT naming the job, what it may reach and an expiry,
//! for one audience, under a key derived from the secret key, so any orchestrator sharing the
//! key (behind one load balancer, or after a restart) verifies it. The token is the authorization, so it never
//! reaches a log (`CacheGrant`'s and `ServedRepository`'s `Debug`).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kici_engine::ids::{AgentId, JobId, RunId, SourceId};
use kici_engine::protocol::{CacheGrant, JobDispatch};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long a grant stays valid: past the longest job timeout an author is likely to set, and
/// bounded so a leaked token soon expires.
const GRANT_TTL: Duration = Duration::from_secs(6 * 3600);

/// The audience of cache grants.
const CACHE: &str = "kici-cache";
/// The audience of git grants.
const GIT: &str = "kici-git";

/// The signing key of grants, and the keys they are verified with.
pub struct GrantKeys {
    encoding: EncodingKey,
    /// The current key's, then the previous one's while a rotation runs: an orchestrator not
    /// restarted yet still signs with it.
    decoding: Vec<DecodingKey>,
}

impl GrantKeys {
    /// The grant keys of secret key `key`, and of `old` during a rotation.
    pub fn of(key: &crate::secret_key::SecretKey, old: Option<&crate::secret_key::SecretKey>) -> GrantKeys {
        let decoding = |key: &crate::secret_key::SecretKey| {
            DecodingKey::from_secret(key.grant_key()).expect("a 32-byte HMAC key is valid")
        };
        GrantKeys {
            encoding: EncodingKey::from_secret(key.grant_key()).expect("a 32-byte HMAC key is valid"),
            decoding: std::iter::once(key).chain(old).map(decoding).collect(),
        }
    }

    fn sign(&self, claims: &impl Serialize) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing does not fail")
    }

    /// The claims of a valid grant for `audience`; Err names what the grant is for (`what`)
    /// and why it is refused.
    fn verify<C: DeserializeOwned>(&self, token: &str, audience: &str, what: &str) -> Result<C, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.set_audience(&[audience]);
        validation.leeway = 0;
        let mut refused = format!("the {what} is not valid");
        for key in &self.decoding {
            match jsonwebtoken::decode::<C>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(err) if *err.kind() == jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    refused = format!("the {what} has expired");
                }
                Err(_) => {}
            }
        }
        Err(refused)
    }
}

fn expiry(now_ms: i64) -> u64 {
    (now_ms.max(0) as u64 / 1000) + GRANT_TTL.as_secs()
}

/// What a cache grant says: the job (`sub`), its run, its repository and the expiry (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: JobId,
    pub run: RunId,
    pub repo: String,
    pub aud: String,
    pub exp: u64,
}

/// A cache grant for `dispatch`'s job in repository `repo`, for the API at `url`.
pub fn issue(keys: &GrantKeys, dispatch: &JobDispatch, repo: &str, url: String, now_ms: i64) -> CacheGrant {
    let claims = Claims {
        sub: dispatch.job_id.clone(),
        run: dispatch.run_id.clone(),
        repo: repo.to_string(),
        aud: CACHE.to_string(),
        exp: expiry(now_ms),
    };
    CacheGrant {
        url,
        token: keys.sign(&claims),
    }
}

/// The claims of a valid cache grant, or why it is not one.
pub fn verify(keys: &GrantKeys, token: &str) -> Result<Claims, String> {
    keys.verify(token, CACHE, "cache grant")
}

/// What a git grant says: the job (`sub`) and the agent it was sent to, the source whose
/// repository it reads and the one commit it may fetch. The server also checks that the job
/// still runs on that agent, so the grant ends with the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitClaims {
    pub sub: JobId,
    pub agent: AgentId,
    pub source: SourceId,
    pub sha: String,
    pub aud: String,
    pub exp: u64,
}

/// A git grant for `dispatch`'s job on `agent`, reading `source`'s repository at the job's
/// commit.
pub fn issue_git(keys: &GrantKeys, dispatch: &JobDispatch, agent: &AgentId, source: &SourceId, now_ms: i64) -> String {
    keys.sign(&GitClaims {
        sub: dispatch.job_id.clone(),
        agent: agent.clone(),
        source: source.clone(),
        sha: dispatch.sha.clone(),
        aud: GIT.to_string(),
        exp: expiry(now_ms),
    })
}

/// The claims of a valid git grant, or why it is not one.
pub fn verify_git(keys: &GrantKeys, token: &str) -> Result<GitClaims, String> {
    keys.verify(token, GIT, "job's git credential")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other_keys() -> GrantKeys {
        GrantKeys::of(&crate::secret_key::SecretKey::generate().0, None)
    }

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
        let secret = crate::secret_key::SecretKey::generate().0;
        let keys = GrantKeys::of(&secret, None);
        let now = 1_800_000_000_000;
        let grant = issue(&keys, &dispatch(), "acme/app", "http://127.0.0.1:4000".into(), now);
        let claims = verify(&keys, &grant.token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.run.as_str(), claims.repo.as_str()),
            ("j1", "r1", "acme/app")
        );
        assert!(!format!("{grant:?}").contains(&grant.token));
        // Another orchestrator with the same secret key verifies it (a cluster, a restart).
        assert!(verify(&GrantKeys::of(&secret, None), &grant.token).is_ok());
        // So does one that rotated to a new key while the old one is KICI_SECRET_KEY_OLD.
        let rotated = crate::secret_key::SecretKey::generate().0;
        assert!(verify(&GrantKeys::of(&rotated, Some(&secret)), &grant.token).is_ok());
        // Another secret key, a tampered token, an expired one: refused.
        assert_eq!(
            verify(&other_keys(), &grant.token).unwrap_err(),
            "the cache grant is not valid"
        );
        assert!(verify(&keys, &format!("{}x", grant.token)).is_err());
        let old = issue(&keys, &dispatch(), "acme/app", String::new(), 1_000_000);
        assert_eq!(verify(&keys, &old.token).unwrap_err(), "the cache grant has expired");
        // A cache grant is no git credential, nor the other way round.
        assert_eq!(
            verify_git(&keys, &grant.token).unwrap_err(),
            "the job's git credential is not valid"
        );
        let git = issue_git(&keys, &dispatch(), &"agent-1".into(), &"src-1".into(), now);
        assert!(verify(&keys, &git).is_err());
        let claims = verify_git(&keys, &git).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.agent.as_str(),
                claims.source.as_str(),
                claims.sha.as_str()
            ),
            ("j1", "agent-1", "src-1", "abc")
        );
    }
}
