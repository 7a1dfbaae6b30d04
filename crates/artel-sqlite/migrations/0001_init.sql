-- Messages waiting, delayed or leased. A row is claimable when visible_at <= now:
-- publish sets it to the ETA (or now), a claim pushes it to now + lease, a heartbeat
-- keeps pushing it while the holder lives; when the holder dies the lease lapses and
-- the row is claimable again. lease_token names the holder; every write by a holder
-- is guarded by it, so a stale holder can never ack a message someone else rescued.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    visible_at  INTEGER NOT NULL,           -- unix ms
    lease_token TEXT,
    deliveries  INTEGER NOT NULL DEFAULT 0,
    task_id     TEXT    NOT NULL,
    envelope    BLOB    NOT NULL            -- kombu JSON envelope (artel_core::Message)
);
CREATE INDEX messages_claim ON messages (queue, priority DESC, visible_at, id);
CREATE INDEX messages_holder ON messages (lease_token) WHERE lease_token IS NOT NULL;

-- Rejected messages with the reason, kept until retried or purged.
CREATE TABLE dead (
    id         INTEGER PRIMARY KEY,
    queue      TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    died_at    INTEGER NOT NULL,
    deliveries INTEGER NOT NULL,
    envelope   BLOB    NOT NULL
);

-- Task results in Celery's JSON format.
CREATE TABLE results (
    task_id    TEXT PRIMARY KEY,
    state      TEXT    NOT NULL,
    result     BLOB    NOT NULL,
    expires_at INTEGER                      -- unix ms; NULL keeps it
);
CREATE INDEX results_expiry ON results (expires_at) WHERE expires_at IS NOT NULL;

-- Live workers: heartbeat and stats, for `artel stats`.
CREATE TABLE workers (
    name         TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL,
    stats        TEXT    NOT NULL
);
