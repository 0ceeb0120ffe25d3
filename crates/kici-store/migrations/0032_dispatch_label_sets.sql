-- The dispatcher reads waiting entries by label set: only the sets an idle agent fits, each a
-- page at a time, oldest first. `label_set` is the job's `runs_on` and `exclude_labels` as
-- stored (two JSON arrays, one after the other); `concurrency_key` is the job's repository and
-- concurrency group, so an entry can tell whether an older one of its group still waits.
-- Entries queued before this migration have no concurrency key: they wait as before, but do
-- not hold their group against younger entries of another label set.
ALTER TABLE dispatch_queue ADD COLUMN label_set TEXT;
ALTER TABLE dispatch_queue ADD COLUMN concurrency_key TEXT;
UPDATE dispatch_queue SET label_set = (
    SELECT j.runs_on || j.exclude_labels FROM jobs j WHERE j.job_id = dispatch_queue.job_id
);
CREATE INDEX dispatch_queue_label_sets ON dispatch_queue (status, label_set, enqueued_at, job_id);
CREATE INDEX dispatch_queue_concurrency ON dispatch_queue (concurrency_key, status, enqueued_at);
