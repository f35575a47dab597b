-- Inbound triggers (issue 17). config is the whole trigger as JSON, its signing secret
-- included (never returned by the API, as models' api_key).
CREATE TABLE triggers (
    id          TEXT PRIMARY KEY NOT NULL,
    create_time INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    config      TEXT NOT NULL
) STRICT;

-- One row per verified call: the delivery log and the replay store. replay_key is the
-- signed webhook-id (or, for GitHub's scheme, the signature), unique per trigger.
-- session_id and turn_id are not foreign keys: the log outlives purged sessions.
CREATE TABLE trigger_deliveries (
    id            TEXT PRIMARY KEY NOT NULL,
    trigger_id    TEXT NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    replay_key    TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    event         TEXT NOT NULL,
    status        TEXT NOT NULL,
    receive_time  INTEGER NOT NULL,
    payload_bytes INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    session_id    TEXT,
    turn_id       TEXT,
    error         TEXT NOT NULL,
    UNIQUE (trigger_id, replay_key)
) STRICT;

CREATE INDEX trigger_deliveries_newest ON trigger_deliveries (trigger_id, id DESC);
