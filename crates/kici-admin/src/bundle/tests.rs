//! The bundle's layout, redaction and summary from hand-made API answers, and the read-back by
//! `inspect-bundle`. The CLI end to end is in `tests/cli.rs`.

use serde_json::json;

use super::*;

const T0: i64 = 1_795_000_000_123;
const CANARY: &str = "canary-0123456789";

fn fetched() -> Fetched {
    Fetched {
        diagnose: Ok(json!({"status": "degraded", "timestamp": T0, "checks": [
            {"name": "Database connectivity", "status": "pass", "message": "Connected (1ms latency)", "durationMs": 1},
            {"name": "Agent connectivity", "status": "warn", "message": "No agents connected", "durationMs": 0,
             "details": {"url": "postgres://u:p@h/db", "port": 5432}}
        ]})),
        config: Ok(json!({"mode": "independent", "port": 4000, "apiToken": CANARY,
                          "database": {"url": "postgres://kici:pw@db/kici"}, "labels": [CANARY]})),
        system_info: Err("GET /api/v1/admin/system-info failed: boom".to_string()),
        cluster_health: Ok(json!({"status": "ok", "agentCount": 2})),
        metrics: Ok(format!("# HELP x\nkici_orch_agents_active 2\n# {CANARY}\n")),
        recent_executions: Ok(
            json!({"runs": [{"status": "failed"}, {"status": "success"}, {"status": "failed"}], "total": 3}),
        ),
    }
}

fn input(fetched: Fetched, logs: Option<LogOptions>) -> BundleInput {
    BundleInput {
        fetched,
        orchestrator_url: "http://127.0.0.1:4000".into(),
        generated_at_ms: T0,
        logs,
        mask: SecretMask::new([("KICI_CANARY_TOKEN".to_string(), CANARY.to_string())], &[]),
    }
}

fn entry<'a>(bundle: &'a Bundle, name: &str) -> &'a str {
    let (_, content) = bundle
        .entries
        .iter()
        .find(|(entry, _)| entry == name)
        .unwrap_or_else(|| panic!("no {name}"));
    std::str::from_utf8(content).unwrap()
}

#[test]
fn default_names_replace_colons_and_dots() {
    assert_eq!(default_file_name(T0), "kici-debug-2026-11-18T11-06-40-123Z.zip");
}

#[test]
fn layout_redaction_and_summary() {
    let bundle = assemble(input(fetched(), None));
    let names: Vec<&str> = bundle.entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            MANIFEST,
            DIAGNOSTICS,
            CONFIG,
            SYSTEM_INFO,
            CLUSTER_HEALTH,
            METRICS,
            RECENT_EXECUTIONS,
            SUMMARY
        ]
    );
    for (name, content) in &bundle.entries {
        assert!(!String::from_utf8_lossy(content).contains(CANARY), "{name}");
    }
    let config: Value = serde_json::from_str(entry(&bundle, CONFIG)).unwrap();
    assert_eq!(
        config,
        json!({"mode": "independent", "port": 4000, "apiToken": "****", "database": {"url": "****"}, "labels": ["****"]})
    );
    let diagnostics: Value = serde_json::from_str(entry(&bundle, DIAGNOSTICS)).unwrap();
    assert_eq!(
        diagnostics["checks"][1]["details"],
        json!({"url": "****", "port": 5432})
    );
    let info: Value = serde_json::from_str(entry(&bundle, SYSTEM_INFO)).unwrap();
    assert_eq!(info["platform"], std::env::consts::OS);
    let manifest: Value = serde_json::from_str(entry(&bundle, MANIFEST)).unwrap();
    assert_eq!(
        manifest,
        json!({
            "version": "1.0",
            "generated_at": "2026-11-18T11:06:40.123Z",
            "source": "kici-admin debug-bundle",
            "orchestrator_url": "http://127.0.0.1:4000",
            "kici_admin_version": env!("CARGO_PKG_VERSION"),
            "platform": platform(),
            "parts": {
                "diagnostics/results.json": "ok",
                "config/config.json": "ok",
                "system/info.json": "GET /api/v1/admin/system-info failed: boom — wrote the facts of the machine kici-admin ran on instead",
                "cluster/health.json": "ok",
                "system/metrics.txt": "ok",
                "executions/recent.json": "ok",
                "logs/": "No log dir given (--log-dir or KICI_LOG_DIR) — skipping logs/"
            }
        })
    );
    assert_eq!(
        entry(&bundle, SUMMARY),
        format!(
            "\
KiCI debug bundle
Generated:     2026-11-18T11:06:40.123Z
Orchestrator:  http://127.0.0.1:4000
kici-admin:    {} ({})

Diagnostics: degraded
  WARN  Agent connectivity: No agents connected
Recent executions: 3 (failed 2, success 1)
Connected agents: 2
Logs: not collected (see Parts)

Parts:
  diagnostics/results.json: ok
  config/config.json: ok
  system/info.json: GET /api/v1/admin/system-info failed: boom — wrote the facts of the machine kici-admin ran on instead
  cluster/health.json: ok
  system/metrics.txt: ok
  executions/recent.json: ok
  logs/: No log dir given (--log-dir or KICI_LOG_DIR) — skipping logs/
",
            env!("CARGO_PKG_VERSION"),
            platform()
        )
    );
}

#[test]
fn every_part_may_fail_and_the_bundle_is_still_made() {
    let down = || Err("GET x failed: cannot reach the orchestrator".to_string());
    let fetched = Fetched {
        diagnose: down(),
        config: down(),
        system_info: down(),
        cluster_health: down(),
        metrics: Err("GET /metrics failed: cannot reach the orchestrator".to_string()),
        recent_executions: down(),
    };
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        dir: dir.path().join("missing"),
        now: SystemTime::now(),
        window: Duration::from_secs(3600),
        max_bytes: 1000,
    };
    let bundle = assemble(input(fetched, Some(options)));
    let names: Vec<&str> = bundle.entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, [MANIFEST, SYSTEM_INFO, SUMMARY]);
    let logs_status = &bundle.parts.iter().find(|(part, _)| part == LOGS).unwrap().1;
    assert_eq!(
        logs_status,
        &format!(
            "Log dir {} does not exist — skipping logs/",
            dir.path().join("missing").display()
        )
    );
    assert!(entry(&bundle, SUMMARY).contains("Diagnostics: unavailable (see Parts)\n"));
}

#[test]
fn inspect_reads_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir).unwrap();
    std::fs::write(
        log_dir.join("orchestrator-2026-11-18.log"),
        "{\"level\":\"error\",\"message\":\"a\"}\n{\"level\":\"info\",\"message\":\"b\"}\n",
    )
    .unwrap();
    let options = LogOptions {
        dir: log_dir,
        now: SystemTime::now(),
        window: Duration::from_secs(3600),
        max_bytes: 1000,
    };
    let bundle = assemble(input(fetched(), Some(options)));
    let path = dir.path().join("bundle.zip");
    archive::write(&path, &bundle.entries, archive::zip_time(T0)).unwrap();
    let mut inspection = inspect::inspect(&path).unwrap();
    inspection.path = "bundle.zip".into();
    let sizes: Vec<u64> = bundle.entries.iter().map(|(_, content)| content.len() as u64).collect();
    let text = inspect::render(&inspection);
    let expected_head = "\
Debug bundle summary: bundle.zip

Bundle info
  Generated:      2026-11-18T11:06:40.123Z
  Source:         kici-admin debug-bundle
  Orchestrator:   http://127.0.0.1:4000
  Bundle version: 1.0
";
    assert!(text.starts_with(expected_head), "{text}");
    let expected_middle = format!(
        "\
Parts
  PART                      STATUS
  diagnostics/results.json  ok
  config/config.json        ok
  system/info.json          GET /api/v1/admin/system-info failed: boom — wrote the facts of the machine kici-admin ran on instead
  cluster/health.json       ok
  system/metrics.txt        ok
  executions/recent.json    ok
  logs/                     ok

Health checks: degraded
  Status  Check               Message
  WARN    Agent connectivity  No agents connected

Logs
  Files:       1
  Total lines: 2
  Errors:      1
  Warnings:    0
  Total bytes: 63

Files
  BYTES  NAME
  {:<5}  manifest.json
",
        sizes[0]
    );
    assert!(text.contains(&expected_middle), "{text}");
    assert!(
        text.ends_with(&format!("  {:<5}  summary.txt\n", sizes[sizes.len() - 1])),
        "{text}"
    );
    let names: Vec<&str> = inspection.files.iter().map(|file| file.name.as_str()).collect();
    assert_eq!(
        names,
        [
            MANIFEST,
            DIAGNOSTICS,
            CONFIG,
            SYSTEM_INFO,
            CLUSTER_HEALTH,
            METRICS,
            RECENT_EXECUTIONS,
            "logs/orchestrator-2026-11-18.log",
            LOG_SUMMARY,
            SUMMARY
        ]
    );
}

#[test]
fn inspect_refuses_what_is_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.zip");
    std::fs::write(&text_file, "hello").unwrap();
    let err = inspect::inspect(&text_file).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "Invalid debug bundle: {} is not a ZIP archive (",
            text_file.display()
        )),
        "{err}"
    );
    let no_manifest = dir.path().join("other.zip");
    archive::write(
        &no_manifest,
        &[("a.txt".to_string(), b"a".to_vec())],
        archive::zip_time(T0),
    )
    .unwrap();
    assert_eq!(
        inspect::inspect(&no_manifest).unwrap_err().to_string(),
        "Invalid debug bundle: missing manifest.json"
    );
}
