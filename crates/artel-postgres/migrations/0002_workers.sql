-- Live workers: heartbeat and stats, for `artel stats`; a stop asked of a worker (the
-- dashboard's "stop") is taken at its next report.
CREATE TABLE workers (
    name           TEXT PRIMARY KEY,
    heartbeat_at   BIGINT  NOT NULL,
    stats          TEXT    NOT NULL,
    stop_requested BOOLEAN NOT NULL DEFAULT false
);
