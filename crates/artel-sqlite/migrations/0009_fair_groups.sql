-- Fair scheduling between the groups (tenants) of a queue: each message's group ('' for
-- none), and the groups of each queue that has any, with when each was last served. A
-- queue with no group rows is claimed as before, oldest first; one with groups is claimed
-- a few messages per group, the group served longest ago first ('' is a group then).
ALTER TABLE messages ADD COLUMN grp TEXT NOT NULL DEFAULT '';
DROP INDEX messages_claim;
CREATE INDEX messages_claim ON messages (queue, grp, priority DESC, visible_at, id);
CREATE TABLE fair_groups (
    queue  TEXT    NOT NULL,
    grp    TEXT    NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,      -- unix µs of its last claim; 0: never
    PRIMARY KEY (queue, grp)
);
