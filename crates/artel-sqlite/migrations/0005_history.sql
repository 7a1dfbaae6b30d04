-- The recent-tasks index (artel_core::TaskHistory): one row per task, re-inserted on
-- every update so `seq` orders rows by last update; the oldest beyond the bound are
-- trimmed by seq. Finished tasks are also counted per minute for the overview.
CREATE TABLE history (
    seq     INTEGER PRIMARY KEY,              -- rowid: max + 1 on insert
    task_id TEXT    NOT NULL UNIQUE,
    state   TEXT    NOT NULL,
    task    TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    updated INTEGER NOT NULL,               -- unix ms
    record  TEXT    NOT NULL                -- artel_core::TaskRecord as JSON
);
CREATE INDEX history_by_state ON history (state, seq);

CREATE TABLE minutes (
    at_ms     INTEGER PRIMARY KEY,          -- the minute's start, unix ms
    succeeded INTEGER NOT NULL,
    failed    INTEGER NOT NULL
);
