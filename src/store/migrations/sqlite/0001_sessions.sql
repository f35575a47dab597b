-- Sessions, their messages and turns. Times are microseconds since the Unix epoch;
-- enums are stored as their snake_case domain names, never as proto numbers.
CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY NOT NULL,
    display_name         TEXT NOT NULL,
    model                TEXT,
    reasoning_effort     TEXT NOT NULL,
    working_dir          TEXT NOT NULL,
    permission_mode      TEXT NOT NULL,
    system_prompt        TEXT NOT NULL,
    labels               TEXT NOT NULL,           -- JSON object
    pinned               INTEGER NOT NULL,
    source               TEXT NOT NULL,
    message_count        INTEGER NOT NULL,
    last_message_preview TEXT NOT NULL,
    input_tokens         INTEGER NOT NULL,
    output_tokens        INTEGER NOT NULL,
    reasoning_tokens     INTEGER NOT NULL,
    cached_input_tokens  INTEGER NOT NULL,
    create_time          INTEGER NOT NULL,
    update_time          INTEGER NOT NULL,
    last_active_time     INTEGER NOT NULL,
    revision             INTEGER NOT NULL,
    forked_from          TEXT
) STRICT;

-- The list order: pinned first, most recent activity first, id as tie-breaker.
CREATE INDEX sessions_list_order ON sessions (pinned DESC, last_active_time DESC, id DESC);

CREATE TABLE turns (
    id                    TEXT PRIMARY KEY NOT NULL,
    session_id            TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    status                TEXT NOT NULL,
    user_message_id       TEXT,
    model                 TEXT,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cached_input_tokens   INTEGER NOT NULL,
    latency_micros        INTEGER,
    first_token_micros    INTEGER,
    error_reason          TEXT,
    error_message         TEXT,
    create_time           INTEGER NOT NULL,
    start_time            INTEGER,
    end_time              INTEGER,
    step_count            INTEGER NOT NULL,
    tool_calls            TEXT NOT NULL           -- JSON array of tool call records
) STRICT;

CREATE INDEX turns_by_session ON turns (session_id, id);

CREATE TABLE messages (
    id          TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_id     TEXT,
    role        TEXT NOT NULL,
    parts       TEXT NOT NULL,                    -- JSON array of parts
    create_time INTEGER NOT NULL,
    incomplete  INTEGER NOT NULL,
    model       TEXT
) STRICT;

-- History is read per session in id (= time) order.
CREATE INDEX messages_by_session ON messages (session_id, id);
