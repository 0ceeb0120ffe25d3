-- The dispatcher reads waiting entries by label set: only the sets an idle agent fits, each a
-- page at a time, oldest first. `label_set` is the job's `runs_on` and `exclude_labels` as
-- stored (two JSON arrays, one after the other); `concurrency_key` is the job's repository and
-- concurrency group, so an entry can tell whether its group is taken. Entries without them
-- (queued before this migration, or by an older build during a rolling upgrade) are given
-- them by the dispatcher before it reads the queue.
ALTER TABLE dispatch_queue ADD COLUMN label_set TEXT;
ALTER TABLE dispatch_queue ADD COLUMN concurrency_key TEXT;
CREATE INDEX dispatch_queue_label_sets ON dispatch_queue (status, label_set, enqueued_at, job_id);
CREATE INDEX dispatch_queue_concurrency ON dispatch_queue (concurrency_key, status, enqueued_at);
