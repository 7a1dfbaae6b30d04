-- Tasks that failed for good, newest kept (trimmed per queue), with the message's
-- envelope so `artel failed retry` can publish them again.
CREATE TABLE failed (
    id        INTEGER PRIMARY KEY,
    task_id   TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    task      TEXT    NOT NULL,
    failed_at INTEGER NOT NULL,             -- unix ms
    entry     TEXT    NOT NULL,             -- artel_core::FailedTask as JSON
    envelope  BLOB    NOT NULL
);
CREATE INDEX failed_by_queue ON failed (queue, id);
CREATE INDEX failed_by_task_id ON failed (task_id);
