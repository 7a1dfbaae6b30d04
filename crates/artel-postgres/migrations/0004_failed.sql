-- Tasks that failed for good, newest kept (trimmed per queue), with the message's
-- envelope so `artel failed retry` can publish them again.
CREATE TABLE failed (
    id        BIGSERIAL PRIMARY KEY,
    task_id   TEXT   NOT NULL,
    queue     TEXT   NOT NULL,
    task      TEXT   NOT NULL,
    failed_at BIGINT NOT NULL,              -- unix ms
    entry     TEXT   NOT NULL,              -- artel_core::FailedTask as JSON
    envelope  BYTEA  NOT NULL
);
CREATE INDEX failed_by_queue ON failed (queue, id);
CREATE INDEX failed_by_task_id ON failed (task_id);
