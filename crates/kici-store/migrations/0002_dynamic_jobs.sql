-- Jobs made by dynamic job generators: the generator's index in the workflow's jobs and the
-- generated job's definition (a lock-file static job as JSON).
ALTER TABLE jobs ADD COLUMN dynamic_index BIGINT;
ALTER TABLE jobs ADD COLUMN definition TEXT;
