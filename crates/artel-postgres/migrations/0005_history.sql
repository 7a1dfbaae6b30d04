-- The recent-tasks index (artel_core::TaskHistory): one row per task, whose `seq` is
-- drawn anew on every update so it orders rows by last update; the oldest beyond the
-- bound are trimmed by seq. Finished tasks are also counted per minute for the overview.
CREATE SEQUENCE history_seq;
CREATE TABLE history (
    task_id TEXT   PRIMARY KEY,
    seq     BIGINT NOT NULL DEFAULT nextval('history_seq'),
    state   TEXT   NOT NULL,
    task    TEXT   NOT NULL,
    queue   TEXT   NOT NULL,
    updated BIGINT NOT NULL,                -- unix ms
    record  TEXT   NOT NULL                 -- artel_core::TaskRecord as JSON
) WITH (fillfactor = 70);
CREATE INDEX history_by_seq ON history (seq);
CREATE INDEX history_by_state ON history (state, seq);

CREATE TABLE minutes (
    at_ms     BIGINT PRIMARY KEY,           -- the minute's start, unix ms
    succeeded BIGINT NOT NULL,
    failed    BIGINT NOT NULL
);
