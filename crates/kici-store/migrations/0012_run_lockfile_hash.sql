-- The lock file's `lockfileHash` (the `.kici/` dependencies' cache key) at the run's commit.
ALTER TABLE runs ADD COLUMN lockfile_hash TEXT;
