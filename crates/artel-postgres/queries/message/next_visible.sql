-- When the next message of a queue becomes claimable (delayed or leased ones).
SELECT min(visible_at) FROM messages WHERE queue = $1
