-- What the event stream carries, shared by every replica: a replica appends an event here and
-- NOTIFYs `deployer_events`; every replica (itself too) reads it back in id order and pushes it to
-- its viewers. The id is the SSE event id, so a browser can resume on any replica.
CREATE TABLE live_events (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
