//! Local sources' repositories served to the jobs that use them, over git's smart HTTP
//! protocol and read only, so an agent in a container, a microVM or on another host fetches a
//! local source the way it clones a forge's. The real `git upload-pack` answers, behind three
//! checks: the request carries a git grant ([`crate::grants::verify_git`]) for this source;
//! the grant's job still runs on the agent it was sent to, so the grant ends with the job; and
//! the request is a fetch of the job's commit into an empty repository, every line of it one
//! this server knows (no `have` probing which objects exist, no tag or ref names). Every ref is
//! hidden, so a job learns no branch, tag or other commit: it gets its commit and the history
//! behind it. A few upload-packs run at a time, each within a deadline; the others wait their
//! turn.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::Stdio;

use kici_engine::protocol::ServedRepository;
use kici_store::SourceKind;

use crate::grants::GitClaims;
use crate::state::Shared;

/// Where a source's repository is served: `/git/<source id>`, below the orchestrator's URL.
pub fn path(source_id: &str) -> String {
    format!("/git/{source_id}")
}

/// The served repository of a job sent to `agent`, when `source`, its run's, is a local one.
pub fn serve_to(
    state: &Shared,
    source: &kici_store::Source,
    dispatch: &kici_engine::protocol::JobDispatch,
    agent: &kici_engine::ids::AgentId,
    now: i64,
) -> Option<ServedRepository> {
    (source.kind == SourceKind::Local).then(|| ServedRepository {
        url: path(source.source_id.as_str()),
        token: crate::grants::issue_git(&state.grant_keys, dispatch, agent, &source.source_id, now),
        source: source.name.clone(),
    })
}

/// How many `git upload-pack`s run at once: each packs a history, which takes a core.
const UPLOAD_PACKS: usize = 4;
static UPLOAD_PACK_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(UPLOAD_PACKS);

/// A turn to run upload-pack, held until it is done.
pub async fn upload_pack_turn() -> tokio::sync::SemaphorePermit<'static> {
    UPLOAD_PACK_TURNS
        .acquire()
        .await
        .expect("the upload-pack semaphore is never closed")
}

/// How long one upload-pack may run: past the agent's own limit on a fetch (2 minutes), so
/// only a client that stopped reading meets it. (Protocol v2's upload-pack has no `--timeout`.)
pub const UPLOAD_PACK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Why a request is not served. Each text says what to do, and git shows it to the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No credential, or one that is not (or no longer) a valid grant.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The orchestrator cannot read the repository.
    #[error("{0}")]
    Unavailable(String),
}

/// What a request may read: the repository and the one commit.
#[derive(Debug)]
pub struct Access {
    pub repository: PathBuf,
    pub sha: String,
}

/// The largest request body (pkt-lines of wants and haves) read; a job's fetch of one commit
/// into an empty repository sends well under a kilobyte.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Checks a request for `source_id`'s repository carrying `token`.
pub async fn authorize(state: &Shared, source_id: &str, token: Option<&str>) -> Result<Access, Refusal> {
    let token = token.ok_or_else(|| {
        Refusal::Unauthorized(
            "the repositories of local sources are served to the jobs that use them: fetch with the credential the job's dispatch carries"
                .to_string(),
        )
    })?;
    let claims = crate::grants::verify_git(&state.grant_keys, token).map_err(|reason| {
        Refusal::Unauthorized(format!(
            "{reason} (hint: a job's git credential is valid while the job runs, on orchestrators that share the secret key of the one that sent it)"
        ))
    })?;
    if claims.source.as_str() != source_id {
        return Err(Refusal::Forbidden(
            "this job's git credential reads its own source's repository, not this one".to_string(),
        ));
    }
    check_job(state, &claims).await?;
    let internal = |err: kici_store::StoreError| {
        tracing::error!(error = %err, "cannot check a git request");
        Refusal::Unavailable("the orchestrator cannot read its database (details are in its log)".to_string())
    };
    let source = state
        .store
        .get_source(&claims.source)
        .await
        .map_err(internal)?
        .filter(|s| s.kind == SourceKind::Local)
        .ok_or_else(|| Refusal::NotFound("no local source has this repository any more".to_string()))?;
    let repository = PathBuf::from(source.path.unwrap_or_default());
    if let Err(err) = std::fs::read_dir(&repository) {
        return Err(Refusal::Unavailable(format!(
            "the orchestrator cannot read source `{}`'s repository at {}: {err} (hint: the source's path must stay readable by the orchestrator's user; see kici-admin source list)",
            source.name,
            repository.display()
        )));
    }
    Ok(Access {
        repository,
        sha: claims.sha,
    })
}

/// The grant's job is unfinished and still on the agent it was sent to.
async fn check_job(state: &Shared, claims: &GitClaims) -> Result<(), Refusal> {
    let job = state.store.get_job(&claims.sub).await.map_err(|err| {
        tracing::error!(error = %err, "cannot check a git request");
        Refusal::Unavailable("the orchestrator cannot read its database (details are in its log)".to_string())
    })?;
    match job {
        Some(job) if !job.job.status.is_terminal() && job.job.agent_id.as_ref() == Some(&claims.agent) => Ok(()),
        Some(job) if job.job.status.is_terminal() => Err(Refusal::Forbidden(format!(
            "job {} has ended ({}): a job's git credential lives as long as the job",
            claims.sub, job.job.status
        ))),
        Some(_) => Err(Refusal::Forbidden(format!(
            "job {} is no longer on agent {}: its git credential went with it",
            claims.sub, claims.agent
        ))),
        None => Err(Refusal::Forbidden(format!("job {} does not exist", claims.sub))),
    }
}

/// A request body as upload-pack reads it: gunzipped when git sent it gzipped.
pub fn request_body(body: &[u8], gzipped: bool) -> Result<Vec<u8>, Refusal> {
    if !gzipped {
        return Ok(body.to_vec());
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|err| Refusal::Forbidden(format!("the request is not valid gzip: {err}")))?;
    if plain.len() > MAX_REQUEST_BYTES {
        return Err(Refusal::Forbidden(format!(
            "the request is larger than {MAX_REQUEST_BYTES} bytes"
        )));
    }
    Ok(plain)
}

/// Checks an upload-pack request (protocol v0 or v2, in pkt-lines): a listing of refs (none is
/// shown) or a fetch of `sha` into an empty repository, with only the lines git sends for one.
/// Refused: another `want`, `want-ref`, `deepen-not` and `include-tag` (they reach refs, hidden
/// ones too), `filter` (a sparse filter names a blob by ref), `have` (it probes which objects
/// exist), and any line this server does not know.
pub fn check_request(body: &[u8], sha: &str) -> Result<(), Refusal> {
    let malformed = || Refusal::Forbidden("the request is not a sequence of git pkt-lines".to_string());
    let mut rest = body;
    while !rest.is_empty() {
        let length = rest
            .get(..4)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(malformed)?;
        // 0000 flush, 0001 delimiter, 0002 response end: no payload.
        if length < 4 {
            rest = &rest[4..];
            continue;
        }
        let line = rest.get(4..length).ok_or_else(malformed)?;
        rest = &rest[length..];
        check_line(String::from_utf8_lossy(line).trim_end_matches('\n'), sha)?;
    }
    Ok(())
}

fn check_line(line: &str, sha: &str) -> Result<(), Refusal> {
    let refused = |why: String| Err(Refusal::Forbidden(why));
    let (word, value) = line
        .split_once([' ', '='])
        .map_or((line, ""), |(word, value)| (word, value));
    match word {
        "want" => {
            // v0's first want carries the client's capabilities after the id.
            let mut words = value.split(' ');
            let want = words.next().unwrap_or_default();
            if !is_object_id(want) {
                return refused("a `want` must name an object id".to_string());
            }
            if want != sha {
                return refused(format!("this job may fetch commit {sha} and its history, not {want}"));
            }
            if words.any(|capability| capability == "include-tag") {
                return refused(TAGS.to_string());
            }
            Ok(())
        }
        "command" if matches!(value, "ls-refs" | "fetch") => Ok(()),
        // v2's capabilities, ls-refs' arguments and fetch's arguments for an empty repository.
        "agent" | "object-format" | "session-id" | "peel" | "symrefs" | "unborn" | "ref-prefix" | "thin-pack"
        | "no-progress" | "ofs-delta" | "sideband-all" | "done" | "deepen" | "deepen-relative" | "deepen-since" => {
            Ok(())
        }
        "include-tag" => refused(TAGS.to_string()),
        "have" => refused("a job fetches into an empty repository: `have` is not served".to_string()),
        "want-ref" | "deepen-not" => refused("a job fetches its commit by id: refs are not served".to_string()),
        _ => refused(format!(
            "`{}` is not served to jobs",
            kici_engine::excerpt::excerpt(line)
        )),
    }
}

const TAGS: &str = "tags are not served to jobs: fetch with --no-tags";

/// 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How long a repository's capability advertisement is reused.
const ADVERTISEMENT_KEPT: std::time::Duration = std::time::Duration::from_secs(60);

/// The v2 capability advertisement of `repository`, reused for [`ADVERTISEMENT_KEPT`]: it
/// depends only on git and the repository's configuration, and making it starts a process,
/// which each job's fetch would wait for.
pub async fn advertisement(repository: &std::path::Path) -> Result<Vec<u8>, String> {
    type Kept = std::collections::BTreeMap<PathBuf, (std::time::Instant, Vec<u8>)>;
    static KEPT: std::sync::Mutex<Kept> = std::sync::Mutex::new(Kept::new());
    let kept = |kept: &mut Kept| {
        kept.retain(|_, (at, _)| at.elapsed() < ADVERTISEMENT_KEPT);
        kept.get(repository).map(|(_, advertisement)| advertisement.clone())
    };
    if let Some(advertisement) = kept(&mut KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
        return Ok(advertisement);
    }
    let output = upload_pack(repository, true)
        .output()
        .await
        .map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(
        repository.to_path_buf(),
        (std::time::Instant::now(), output.stdout.clone()),
    );
    Ok(output.stdout)
}

/// Protocol v0 lists refs before a client may ask for anything, and with every ref hidden there
/// is nothing to list: fetches speak v2, which asks for an object by id.
pub const V2_ONLY: &str = "local sources are served over git's protocol version 2 only (git 2.18 or newer, with protocol.version=2, which the agent sets)";

/// `git upload-pack` serving `repository` statelessly in protocol v2 (its capabilities when
/// `advertise`). Every ref is hidden, and any object may be wanted: [`check_request`] allows
/// the job's commit alone.
pub fn upload_pack(repository: &std::path::Path, advertise: bool) -> tokio::process::Command {
    let mut command = crate::git::command();
    command
        .env("GIT_CONFIG_COUNT", "3")
        .env("GIT_CONFIG_KEY_0", "uploadpack.hideRefs")
        .env("GIT_CONFIG_VALUE_0", "refs")
        .env("GIT_CONFIG_KEY_1", "uploadpack.hideRefs")
        .env("GIT_CONFIG_VALUE_1", "HEAD")
        .env("GIT_CONFIG_KEY_2", "uploadpack.allowAnySHA1InWant")
        .env("GIT_CONFIG_VALUE_2", "true")
        .env("GIT_PROTOCOL", "version=2")
        .arg("upload-pack")
        .arg("--stateless-rpc")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if advertise {
        command.arg("--advertise-refs").stdin(Stdio::null());
    } else {
        command.stdin(Stdio::piped());
    }
    command.arg(repository);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_request_may_fetch_the_jobs_commit_into_an_empty_repository_and_nothing_else() {
        // What git 2.39 sends: `git fetch --no-tags <url> <sha>` in protocol v2 and v0.
        let v2 = format!(
            "{}{}{}0001{}{}{}{}0000",
            pkt("command=fetch\n"),
            pkt("agent=git/2.39.5\n"),
            pkt("object-format=sha1\n"),
            pkt("thin-pack\n"),
            pkt("ofs-delta\n"),
            pkt(&format!("want {SHA}\n")),
            pkt("done\n")
        );
        assert_eq!(check_request(v2.as_bytes(), SHA), Ok(()));
        let v0 = format!(
            "{}0000{}",
            pkt(&format!(
                "want {SHA} multi_ack_detailed no-done side-band-64k thin-pack ofs-delta agent=git/2.39.5\n"
            )),
            pkt("done\n")
        );
        assert_eq!(check_request(v0.as_bytes(), SHA), Ok(()));
        let ls_refs = format!(
            "{}0001{}{}0000",
            pkt("command=ls-refs\n"),
            pkt("peel\n"),
            pkt("symrefs\n")
        );
        assert_eq!(check_request(ls_refs.as_bytes(), SHA), Ok(()));

        let refused = |lines: &[&str]| {
            let body: String = lines.iter().map(|line| pkt(line)).collect::<String>() + "0000";
            match check_request(body.as_bytes(), SHA) {
                Err(Refusal::Forbidden(why)) => why,
                other => panic!("{lines:?} was not refused: {other:?}"),
            }
        };
        assert_eq!(
            refused(&[&format!("want {SHA}\n"), &format!("want {OTHER}\n")]),
            format!("this job may fetch commit {SHA} and its history, not {OTHER}")
        );
        assert_eq!(refused(&["want refs/heads/main\n"]), "a `want` must name an object id");
        assert_eq!(
            refused(&["want-ref refs/heads/main\n"]),
            "a job fetches its commit by id: refs are not served"
        );
        assert_eq!(
            refused(&["deepen-not refs/heads/secret\n"]),
            "a job fetches its commit by id: refs are not served"
        );
        assert_eq!(
            refused(&["include-tag\n"]),
            "tags are not served to jobs: fetch with --no-tags"
        );
        assert_eq!(
            refused(&[&format!("want {SHA} multi_ack include-tag\n")]),
            "tags are not served to jobs: fetch with --no-tags"
        );
        assert_eq!(
            refused(&[&format!("have {OTHER}\n")]),
            "a job fetches into an empty repository: `have` is not served"
        );
        assert_eq!(
            refused(&["command=object-info\n"]),
            "`command=object-info` is not served to jobs"
        );
        assert_eq!(
            refused(&["filter sparse:oid=refs/heads/secret:path\n"]),
            "`filter sparse:oid=refs/heads/secret:path` is not served to jobs"
        );
        assert_eq!(
            refused(&["packfile-uris https\n"]),
            "`packfile-uris https` is not served to jobs"
        );
        for malformed in ["zzzz", "0009want", "00"] {
            assert_eq!(
                check_request(malformed.as_bytes(), SHA),
                Err(Refusal::Forbidden(
                    "the request is not a sequence of git pkt-lines".to_string()
                )),
                "{malformed}"
            );
        }
    }

    #[test]
    fn a_gzipped_request_is_read_within_its_bound() {
        use std::io::Write as _;
        let gzip = |bytes: &[u8]| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        };
        let body = pkt(&format!("want {SHA}\n"));
        assert_eq!(request_body(&gzip(body.as_bytes()), true).unwrap(), body.as_bytes());
        assert_eq!(request_body(body.as_bytes(), false).unwrap(), body.as_bytes());
        assert!(request_body(&gzip(&vec![b'0'; MAX_REQUEST_BYTES + 1]), true).is_err());
        assert!(request_body(b"not gzip", true).is_err());
    }
}
