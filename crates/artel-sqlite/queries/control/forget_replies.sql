DELETE FROM control_replies WHERE posted_at < :before
