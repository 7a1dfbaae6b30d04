-- Remote control on this broker (`artel inspect`, `artel control`): requests for every
-- worker, read in id order (AUTOINCREMENT: an id is never reused, so a reader's cursor
-- never skips a later request), and replies kept by ticket. Rows older than a minute
-- are deleted as requests are posted.
CREATE TABLE control_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    posted_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE control_replies (
    id INTEGER PRIMARY KEY,
    ticket TEXT NOT NULL,
    posted_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX control_replies_by_ticket ON control_replies (ticket);
