-- A re-run names the run it started again; the original lists its re-runs through this.
ALTER TABLE runs ADD COLUMN rerun_of TEXT;
CREATE INDEX runs_rerun_of ON runs (rerun_of);
