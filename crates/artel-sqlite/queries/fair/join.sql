-- Adds a group to its queue's rotation, with '' (the messages without a group) beside it.
INSERT OR IGNORE INTO fair_groups (queue, grp) VALUES (:queue, :grp), (:queue, '')
