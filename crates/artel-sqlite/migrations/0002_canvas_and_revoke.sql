-- Chord members recorded so far: one row per member, so a redelivered member
-- overwrites its own row and the set counts each member once.
CREATE TABLE chord_parts (
    group_id   TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    result     BLOB    NOT NULL,            -- the member's TaskResult JSON
    expires_at INTEGER,                     -- unix ms; NULL keeps it
    PRIMARY KEY (group_id, idx)
) WITHOUT ROWID;

-- Revoked task ids; workers read the rows after the last seq they saw.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT    NOT NULL,
    terminate  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL             -- unix ms
);
