-- The dispatcher reads waiting entries a page at a time, oldest first.
CREATE INDEX dispatch_queue_pages ON dispatch_queue (status, enqueued_at, job_id);
