-- Inbound triggers (issue 17). config is the whole trigger as JSON, its signing secret
-- included (never returned by the API, as models' api_key).
CREATE TABLE triggers (
    id          TEXT COLLATE "C" PRIMARY KEY,
    create_time BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    config      TEXT NOT NULL
);

-- One row per verified call: the delivery log and the replay store. replay_key is the
-- signed webhook-id (or, for GitHub's scheme, the signature), unique per trigger.
-- session_id and turn_id are not foreign keys: the log outlives purged sessions.
CREATE TABLE trigger_deliveries (
    id            TEXT COLLATE "C" PRIMARY KEY,
    trigger_id    TEXT COLLATE "C" NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    replay_key    TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    event         TEXT NOT NULL,
    status        TEXT NOT NULL,
    receive_time  BIGINT NOT NULL,
    payload_bytes BIGINT NOT NULL,
    attempts      BIGINT NOT NULL,
    session_id    TEXT,
    turn_id       TEXT,
    error         TEXT NOT NULL,
    UNIQUE (trigger_id, replay_key)
);

CREATE INDEX trigger_deliveries_newest ON trigger_deliveries (trigger_id, id DESC);
