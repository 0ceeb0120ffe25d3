-- The orchestrators sharing this database: each beats here and says since when it holds the
-- leader's advisory lock (0: it does not), the leader running the singleton duties (sweeps,
-- schedules, pruning). Of two rows that say they lead (one just died), the later one does.
CREATE TABLE orchestrator_instances (
    instance_id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_beat_at BIGINT NOT NULL,
    leading_since BIGINT NOT NULL
);
