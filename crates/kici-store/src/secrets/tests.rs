use kici_engine::api::secrets::AuditEntry;
use kici_engine::protection::{ApproverClause, Environment};

use super::*;
use crate::tests::stores;

fn audit(id: &str, action: &str, keys: &[&str], at: i64) -> NewAudit {
    NewAudit {
        entry_id: id.to_string(),
        org_id: "default".to_string(),
        entry: AuditEntry {
            timestamp: at,
            action: action.to_string(),
            context_name: Some("production".to_string()),
            secret_keys: keys.iter().map(|k| k.to_string()).collect(),
            outcome: "success".to_string(),
            run_id: None,
            job_id: None,
            actor: "ops".to_string(),
            role: Some("owner".to_string()),
            metadata: None,
        },
    }
}

fn secret(value: &str) -> SealedSecret {
    SealedSecret {
        org_id: "default".into(),
        scope: "production".into(),
        key: "DEPLOY_KEY".into(),
        value: value.into(),
    }
}

#[tokio::test]
async fn secrets_are_set_revealed_and_deleted_with_an_audit_entry_each() {
    for (db, store, _dir) in stores().await {
        assert_eq!(
            store
                .put_secret(&secret("enc:v1:a:1"), &audit("a1", "secret.set", &["DEPLOY_KEY"], 10))
                .await
                .unwrap(),
            Upsert::Created,
            "{db}"
        );
        assert_eq!(
            store
                .put_secret(&secret("enc:v1:a:2"), &audit("a2", "secret.set", &["DEPLOY_KEY"], 20))
                .await
                .unwrap(),
            Upsert::Updated,
            "{db}"
        );
        let listed = store.list_secrets("default", None).await.unwrap();
        assert_eq!(listed.len(), 1, "{db}");
        assert_eq!((listed[0].created_at, listed[0].updated_at), (10, 20), "{db}");
        assert!(
            store.list_secrets("default", Some("staging")).await.unwrap().is_empty(),
            "{db}"
        );
        assert_eq!(
            store
                .reveal_secret(
                    "default",
                    "production",
                    "DEPLOY_KEY",
                    &audit("a3", "secret.reveal", &["DEPLOY_KEY"], 30),
                )
                .await
                .unwrap()
                .as_deref(),
            Some("enc:v1:a:2"),
            "{db}"
        );
        assert_eq!(
            store
                .reveal_secret(
                    "default",
                    "production",
                    "NOPE",
                    &audit("a4", "secret.reveal", &["NOPE"], 31),
                )
                .await
                .unwrap(),
            None,
            "{db}"
        );
        assert!(
            store
                .delete_secret(
                    "default",
                    "production",
                    "DEPLOY_KEY",
                    &audit("a5", "secret.delete", &["DEPLOY_KEY"], 40)
                )
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .delete_secret(
                    "default",
                    "production",
                    "DEPLOY_KEY",
                    &audit("a6", "secret.delete", &["DEPLOY_KEY"], 50)
                )
                .await
                .unwrap(),
            "{db}"
        );
        let actions: Vec<(String, i64)> = store
            .list_audit("default", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.timestamp))
            .collect();
        let expected = [
            ("secret.delete", 40),
            ("secret.reveal", 30),
            ("secret.set", 20),
            ("secret.set", 10),
        ];
        assert_eq!(
            actions,
            expected.map(|(a, t)| (a.to_string(), t)),
            "{db}: no entry for what changed nothing"
        );
        assert_eq!(
            store
                .list_audit("default", Some("secret.reveal"), 10)
                .await
                .unwrap()
                .len(),
            1,
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_change_whose_audit_entry_fails_is_not_made() {
    for (db, store, _dir) in stores().await {
        store
            .put_secret(&secret("enc:v1:a:1"), &audit("dup", "secret.set", &["DEPLOY_KEY"], 10))
            .await
            .unwrap();
        // The same entry id again: the audit insert fails, so the new value must not land.
        assert!(
            store
                .put_secret(&secret("enc:v1:a:2"), &audit("dup", "secret.set", &["DEPLOY_KEY"], 20))
                .await
                .is_err(),
            "{db}"
        );
        assert!(
            store
                .delete_secret(
                    "default",
                    "production",
                    "DEPLOY_KEY",
                    &audit("dup", "secret.delete", &[], 30)
                )
                .await
                .is_err(),
            "{db}"
        );
        let sealed = store.sealed_secrets(Some("default")).await.unwrap();
        assert_eq!(sealed, vec![secret("enc:v1:a:1")], "{db}");
        let environment = Environment {
            name: "production".into(),
            description: None,
            disabled: false,
            scopes: vec!["production".into()],
            branches: vec!["main".into()],
            reviewers: vec![ApproverClause::User("alice".into())],
            wait_timer_seconds: 0,
            hold_expiry_seconds: 3600,
        };
        assert!(
            store
                .put_environment(
                    "default",
                    &environment,
                    true,
                    &audit("dup", "environment.create", &[], 40)
                )
                .await
                .is_err(),
            "{db}"
        );
        assert!(store.list_environments("default").await.unwrap().is_empty(), "{db}");
    }
}

#[tokio::test]
async fn environments_and_variables_round_trip() {
    for (db, store, _dir) in stores().await {
        let mut environment = Environment {
            name: "production".into(),
            description: Some("live".into()),
            disabled: false,
            scopes: vec!["production/**".into()],
            branches: vec!["main".into()],
            reviewers: vec![ApproverClause::Team("ops".into())],
            wait_timer_seconds: 2,
            hold_expiry_seconds: 600,
        };
        assert!(
            store
                .put_environment(
                    "default",
                    &environment,
                    true,
                    &audit("e1", "environment.create", &[], 1)
                )
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .put_environment(
                    "default",
                    &environment,
                    true,
                    &audit("e2", "environment.create", &[], 2)
                )
                .await
                .unwrap(),
            "{db}: created twice"
        );
        environment.disabled = true;
        assert!(
            store
                .put_environment(
                    "default",
                    &environment,
                    false,
                    &audit("e3", "environment.update", &[], 3)
                )
                .await
                .unwrap(),
            "{db}"
        );
        assert_eq!(
            store.get_environment("default", "production").await.unwrap(),
            Some(environment.clone()),
            "{db}"
        );
        assert_eq!(
            store.list_environments("default").await.unwrap(),
            vec![environment],
            "{db}"
        );
        assert!(
            store
                .delete_environment("default", "production", &audit("e4", "environment.delete", &[], 4))
                .await
                .unwrap(),
            "{db}"
        );
        assert_eq!(
            store.get_environment("default", "production").await.unwrap(),
            None,
            "{db}"
        );

        assert_eq!(
            store
                .put_variable(
                    "default",
                    "production",
                    "REGION",
                    "eu",
                    &audit("v1", "variable.set", &["REGION"], 5),
                )
                .await
                .unwrap(),
            Upsert::Created,
            "{db}"
        );
        let variables = store.list_variables("default", None).await.unwrap();
        assert_eq!(
            (variables[0].name.as_str(), variables[0].value.as_str()),
            ("REGION", "eu"),
            "{db}"
        );
        assert!(
            store
                .delete_variable(
                    "default",
                    "production",
                    "REGION",
                    &audit("v2", "variable.delete", &["REGION"], 6)
                )
                .await
                .unwrap(),
            "{db}"
        );
        assert!(store.list_variables("default", None).await.unwrap().is_empty(), "{db}");
    }
}

#[tokio::test]
async fn sealed_secrets_are_replaced_only_while_unchanged() {
    for (db, store, _dir) in stores().await {
        store
            .put_secret(&secret("enc:v1:old:1"), &audit("r1", "secret.set", &["DEPLOY_KEY"], 1))
            .await
            .unwrap();
        assert!(
            !store
                .replace_sealed_secret(&secret("enc:v1:new:1"), "enc:v1:other:1")
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            store
                .replace_sealed_secret(&secret("enc:v1:new:1"), "enc:v1:old:1")
                .await
                .unwrap(),
            "{db}"
        );
        assert_eq!(
            store.sealed_secrets(None).await.unwrap(),
            vec![secret("enc:v1:new:1")],
            "{db}"
        );
    }
}

fn pending_job(run_id: &str, job_id: &str) -> crate::NewJob {
    crate::NewJob {
        status: kici_engine::status::JobStatus::Pending,
        ..crate::tests::job(run_id, job_id, "deploy", vec![], 0)
    }
}

fn hold(run_id: &str, job_id: &str, hold_id: &str, expires_at: i64) -> crate::NewHold {
    crate::NewHold {
        hold_id: hold_id.into(),
        run_id: run_id.into(),
        job_id: job_id.into(),
        scope: "production".into(),
        clauses: vec![ApproverClause::User("alice".into())],
        reason: Some("deploy".into()),
        created_at: 100,
        expires_at,
    }
}

#[tokio::test]
async fn a_hold_moves_its_job_and_is_decided_once() {
    use kici_engine::api::secrets::HoldStatus;
    use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
    use kici_engine::ids::JobId;
    use kici_engine::protection::Approver;
    use kici_engine::status::{JobEvent, JobStatus};

    for (db, store, _dir) in stores().await {
        let jobs = [
            pending_job("r1", "j1"),
            pending_job("r1", "j2"),
            pending_job("r1", "j3"),
        ];
        store
            .insert_run(&crate::tests::run("r1", 10), &jobs, &[])
            .await
            .unwrap();
        assert!(store.hold_job(&hold("r1", "j1", "h1", 5_000)).await.unwrap(), "{db}");
        assert!(
            !store.hold_job(&hold("r1", "j1", "h1b", 5_000)).await.unwrap(),
            "{db}: held twice"
        );
        assert!(store.hold_job(&hold("r1", "j2", "h2", 5_000)).await.unwrap(), "{db}");
        assert!(store.hold_job(&hold("r1", "j3", "h3", 200)).await.unwrap(), "{db}");
        let status = |job: &'static str| {
            let store = store.clone();
            async move { store.get_job(&JobId::from(job)).await.unwrap().unwrap().job.status }
        };
        assert_eq!(status("j1").await, JobStatus::Held, "{db}");
        let pending = store
            .holds(Some(&"r1".into()), Some(HoldStatus::Pending))
            .await
            .unwrap();
        assert_eq!(pending.len(), 3, "{db}");
        assert_eq!(
            pending.iter().find(|h| h.hold_id == "h1").unwrap().job_name,
            "deploy",
            "{db}"
        );

        let alice = Approver {
            name: "alice".into(),
            teams: vec![],
        };
        let h1 = pending.iter().find(|h| h.hold_id == "h1").unwrap().clone();
        assert!(
            store
                .add_approval("h1", &[], std::slice::from_ref(&alice))
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .add_approval("h1", &[], std::slice::from_ref(&alice))
                .await
                .unwrap(),
            "{db}: stale approvals"
        );
        let approved = crate::HoldDecisionRecord {
            status: HoldStatus::Approved,
            decided_by: "alice".into(),
            reason: None,
            at: 300,
        };
        let queue = crate::tests::entry("r1", "j1", None);
        assert!(
            store
                .decide_hold(&h1, &approved, crate::HoldOutcome::Queue(&queue))
                .await
                .unwrap(),
            "{db}"
        );
        assert!(
            !store
                .decide_hold(&h1, &approved, crate::HoldOutcome::Queue(&queue))
                .await
                .unwrap(),
            "{db}: decided twice"
        );
        assert_eq!(status("j1").await, JobStatus::Queued, "{db}");
        assert!(store.queue_entry(&JobId::from("j1")).await.unwrap().is_some(), "{db}");

        let h2 = store
            .holds(Some(&"r1".into()), None)
            .await
            .unwrap()
            .into_iter()
            .find(|h| h.hold_id == "h2")
            .unwrap();
        let init = InitFailure {
            scope: InitFailureScope::Job,
            category: InitFailureCategory::EnvironmentRules,
            message: "Approval rejected for production hold by alice".into(),
            job_name: Some("deploy".into()),
        };
        let rejected = crate::HoldDecisionRecord {
            status: HoldStatus::Rejected,
            decided_by: "alice".into(),
            reason: Some("freeze".into()),
            at: 400,
        };
        let outcome = crate::HoldOutcome::Fail {
            event: JobEvent::Reject,
            error: &init.message,
            init_failure: &init,
        };
        assert!(store.decide_hold(&h2, &rejected, outcome).await.unwrap(), "{db}");
        let j2 = store.get_job(&JobId::from("j2")).await.unwrap().unwrap().job;
        assert_eq!(
            (j2.status, j2.error_message.as_deref()),
            (JobStatus::Failed, Some(init.message.as_str())),
            "{db}"
        );

        let expired = store.expired_holds(300).await.unwrap();
        assert_eq!(
            expired.iter().map(|h| h.hold_id.as_str()).collect::<Vec<_>>(),
            ["h3"],
            "{db}"
        );
        let decided = store
            .holds(Some(&"r1".into()), Some(HoldStatus::Rejected))
            .await
            .unwrap();
        assert_eq!(decided[0].decision_reason.as_deref(), Some("freeze"), "{db}");
    }
}

#[tokio::test]
async fn a_waiting_job_is_due_at_its_time_and_queued_once() {
    use kici_engine::ids::JobId;
    use kici_engine::status::{JobEvent, JobStatus};

    for (db, store, _dir) in stores().await {
        store
            .insert_run(&crate::tests::run("r1", 10), &[pending_job("r1", "j1")], &[])
            .await
            .unwrap();
        assert!(store.wait_job(&JobId::from("j1"), 2_000, 100).await.unwrap(), "{db}");
        assert!(
            !store.wait_job(&JobId::from("j1"), 9_000, 100).await.unwrap(),
            "{db}: waits once"
        );
        assert!(store.waiting_jobs_due(1_999).await.unwrap().is_empty(), "{db}");
        assert_eq!(
            store.waiting_jobs_due(2_000).await.unwrap(),
            vec![("r1".into(), "j1".into())],
            "{db}"
        );
        let queue = crate::tests::entry("r1", "j1", None);
        assert!(
            !store
                .queue_job(&JobId::from("j1"), JobEvent::Enqueue, &queue)
                .await
                .unwrap(),
            "{db}: not pending"
        );
        assert!(
            store
                .queue_job(&JobId::from("j1"), JobEvent::TimerDone, &queue)
                .await
                .unwrap(),
            "{db}"
        );
        let job = store.get_job(&JobId::from("j1")).await.unwrap().unwrap().job;
        assert_eq!(job.status, JobStatus::Queued, "{db}");
        assert!(store.waiting_jobs_due(9_999).await.unwrap().is_empty(), "{db}");
    }
}

/// Writers that read first (the secret's upsert looks for the row, then writes it) run side by
/// side without an error: on SQLite, a transaction that read before another connection
/// committed could not take the write lock and failed at once instead of waiting its turn.
#[tokio::test]
async fn concurrent_writers_that_read_first_all_succeed() {
    for (db, store, _dir) in stores().await {
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..24 {
            let store = store.clone();
            writes.spawn(async move {
                let mut secret = secret("enc:v1:a:1");
                secret.key = format!("KEY_{n}");
                let audit = audit(&format!("c{n}"), "secret.set", &[&secret.key], n);
                (
                    n,
                    store.put_secret(&secret, &audit).await.map_err(|err| err.to_string()),
                )
            });
        }
        while let Some(done) = writes.join_next().await {
            let (n, written) = done.unwrap();
            assert_eq!(written, Ok(Upsert::Created), "{db}: write {n}");
        }
        assert_eq!(store.list_secrets("default", None).await.unwrap().len(), 24, "{db}");
    }
}
