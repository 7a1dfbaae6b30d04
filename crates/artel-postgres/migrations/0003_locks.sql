-- Locks held with a lease (artel_lock::Leased), values only the newest lock holder may
-- advance (artel_lock::Fenced), and the keys of unique tasks while they are queued or run.
CREATE TABLE lock (
    key        TEXT   PRIMARY KEY,
    token      TEXT,                        -- holder's token; NULL when free
    expires_at BIGINT NOT NULL,             -- unix ms the lease lapses
    fence      BIGINT NOT NULL              -- last fencing token handed out
);
CREATE TABLE fenced (
    key   TEXT   PRIMARY KEY,
    fence BIGINT NOT NULL,                  -- largest fence that wrote
    value BIGINT NOT NULL
);
CREATE TABLE unique_key (
    key        TEXT   PRIMARY KEY,
    task_id    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL              -- unix ms; a crashed sender's key lapses
);
