-- Remote control on this broker (`artel inspect`, `artel control`): requests for every
-- worker, read in id order, and replies kept by ticket. Rows older than a minute are
-- deleted as requests are posted.
CREATE TABLE control_requests (
    id        BIGSERIAL PRIMARY KEY,
    posted_at BIGINT NOT NULL,
    body      BYTEA  NOT NULL
);
CREATE TABLE control_replies (
    id        BIGSERIAL PRIMARY KEY,
    ticket    TEXT   NOT NULL,
    posted_at BIGINT NOT NULL,
    body      BYTEA  NOT NULL
);
CREATE INDEX control_replies_by_ticket ON control_replies (ticket);
