DELETE FROM results WHERE rowid IN (
    SELECT rowid FROM results WHERE expires_at <= :now LIMIT :limit
)
