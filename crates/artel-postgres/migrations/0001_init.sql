-- Messages waiting, delayed or leased, as in artel-sqlite: a row is claimable when
-- visible_at <= now; a claim pushes visible_at to the lease's end and records the
-- holder's token, a heartbeat keeps pushing it, and every later write by the holder is
-- guarded by the token. Churned hard (insert, update, delete), hence the fill factor
-- (updates stay on their page) and the eager autovacuum.
CREATE TABLE messages (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT     NOT NULL,
    priority    SMALLINT NOT NULL DEFAULT 0,
    visible_at  BIGINT   NOT NULL,          -- unix ms
    lease_token TEXT,
    deliveries  INTEGER  NOT NULL DEFAULT 0,
    task_id     TEXT     NOT NULL,
    envelope    BYTEA    NOT NULL           -- kombu JSON envelope (artel_core::Message)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE INDEX messages_claim ON messages (queue, priority DESC, visible_at, id);
CREATE INDEX messages_holder ON messages (lease_token) WHERE lease_token IS NOT NULL;

-- Rejected messages with the reason, kept until retried or purged.
CREATE TABLE dead (
    id         BIGSERIAL PRIMARY KEY,
    queue      TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    died_at    BIGINT  NOT NULL,
    deliveries INTEGER NOT NULL,
    envelope   BYTEA   NOT NULL
);

-- Task results in Celery's JSON format.
CREATE TABLE results (
    task_id    TEXT PRIMARY KEY,
    state      TEXT   NOT NULL,
    result     BYTEA  NOT NULL,
    expires_at BIGINT                       -- unix ms; NULL keeps it
) WITH (fillfactor = 80);
CREATE INDEX results_expiry ON results (expires_at) WHERE expires_at IS NOT NULL;

-- Chord members' results, by group and member index.
CREATE TABLE chord_parts (
    group_id   TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    result     BYTEA   NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (group_id, idx)
);

-- Revocations in order; workers read those after their cursor.
CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    task_id    TEXT    NOT NULL,
    terminate  BOOLEAN NOT NULL,
    expires_at BIGINT  NOT NULL             -- unix ms
);
