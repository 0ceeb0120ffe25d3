-- When a run with a workflow `timeout` must be over: created_at + timeout. The sweeper cancels
-- the runs still going past it and clears it, so each is cancelled once.
ALTER TABLE runs ADD COLUMN deadline_at BIGINT;
CREATE INDEX runs_deadline_at ON runs (deadline_at) WHERE deadline_at IS NOT NULL;
