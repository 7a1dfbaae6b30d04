-- Cached values every process shares (artel_cache::CacheStore: memoized task results),
-- and the state of rate limits every worker shares (artel_core::rates).
CREATE TABLE cache (
    key        TEXT   PRIMARY KEY,
    value      BYTEA  NOT NULL,
    version    BIGINT NOT NULL,             -- above the last one and the clock in µs
    expires_at BIGINT                       -- unix ms; NULL: kept until deleted
);
CREATE INDEX cache_expiry ON cache (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE rate_limit (
    key    TEXT   PRIMARY KEY,
    ready  BIGINT NOT NULL,                 -- unix µs the next run may start
    booked BIGINT NOT NULL                  -- unix µs where the booked slots end
);
