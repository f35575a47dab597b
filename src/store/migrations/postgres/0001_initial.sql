-- The initial Postgres schema: SQLite's migrations 0001-0005 collapsed into one, since
-- no Postgres database predates this backend. From here on each schema change is a new
-- numbered file for each backend; never edit a released one.
--
-- Parity with SQLite (the same rows, orders and tie-breaks on both): times are BIGINT
-- microseconds since the Unix epoch; enums are their snake_case domain names, never proto
-- numbers; JSON is TEXT; flags are BOOLEAN; every other integer is BIGINT (SQLite's
-- INTEGER). Text that is compared, sorted or searched is COLLATE "C": byte order, which is
-- SQLite's BINARY, whatever the database's locale; and ILIKE then folds ASCII case only,
-- as SQLite's LIKE does.

CREATE TABLE sessions (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    display_name         TEXT COLLATE "C" NOT NULL,
    model                TEXT COLLATE "C",
    reasoning_effort     TEXT COLLATE "C" NOT NULL,
    working_dir          TEXT NOT NULL,
    permission_mode      TEXT COLLATE "C" NOT NULL,
    system_prompt        TEXT NOT NULL,
    labels               TEXT NOT NULL,            -- JSON object
    pinned               BOOLEAN NOT NULL,
    source               TEXT COLLATE "C" NOT NULL,
    message_count        BIGINT NOT NULL,
    last_message_preview TEXT COLLATE "C" NOT NULL,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    reasoning_tokens     BIGINT NOT NULL,
    cached_input_tokens  BIGINT NOT NULL,
    create_time          BIGINT NOT NULL,
    update_time          BIGINT NOT NULL,
    last_active_time     BIGINT NOT NULL,
    revision             BIGINT NOT NULL,
    forked_from          TEXT COLLATE "C",
    -- The floor event sequences of a session restart from (see runtime::live).
    event_sequence       BIGINT NOT NULL DEFAULT 0,
    -- Tools the user allowed for the rest of the session (ALLOW_ALWAYS), a JSON array.
    allowed_tools        TEXT NOT NULL DEFAULT '[]'
);

-- The list order: pinned first, most recent activity first, id as tie-breaker.
CREATE INDEX sessions_list_order ON sessions (pinned DESC, last_active_time DESC, id DESC);

CREATE TABLE turns (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    session_id          TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    status              TEXT COLLATE "C" NOT NULL,
    user_message_id     TEXT COLLATE "C",
    model               TEXT COLLATE "C",
    input_tokens        BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    latency_micros      BIGINT,
    first_token_micros  BIGINT,
    error_reason        TEXT,
    error_message       TEXT,
    create_time         BIGINT NOT NULL,
    start_time          BIGINT,
    end_time            BIGINT,
    step_count          BIGINT NOT NULL,
    tool_calls          TEXT NOT NULL              -- JSON array of tool call records
);

CREATE INDEX turns_by_session ON turns (session_id, id);
-- The turns a crash left unfinished, found without a scan.
CREATE INDEX turns_unfinished ON turns (status) WHERE status IN ('queued', 'running');

CREATE TABLE messages (
    id          TEXT COLLATE "C" PRIMARY KEY,
    session_id  TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_id     TEXT COLLATE "C",
    role        TEXT COLLATE "C" NOT NULL,
    parts       TEXT NOT NULL,                     -- JSON array of parts
    create_time BIGINT NOT NULL,
    incomplete  BOOLEAN NOT NULL,
    model       TEXT COLLATE "C",
    -- The message's place in the conversation the model sees, set when it joins that
    -- conversation (so it can differ from arrival order); NULL while it waits.
    position    BIGINT
);

CREATE INDEX messages_by_session ON messages (session_id, id);
CREATE INDEX messages_history ON messages (session_id, position) WHERE position IS NOT NULL;
-- Messages still waiting to join the conversation, per session in id order.
CREATE INDEX messages_waiting ON messages (session_id, id) WHERE position IS NULL;

-- Models and schedules: the fields no query looks at are one JSON document (`config`);
-- the columns are what queries and invariants need.
CREATE TABLE models (
    id          TEXT COLLATE "C" PRIMARY KEY,
    is_default  BOOLEAN NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    config      TEXT NOT NULL
);

-- At most one default; the store's transactions keep exactly one while any model exists.
CREATE UNIQUE INDEX models_one_default ON models (is_default) WHERE is_default;

CREATE TABLE schedules (
    id            TEXT COLLATE "C" PRIMARY KEY,
    model         TEXT COLLATE "C",
    enabled       BOOLEAN NOT NULL,
    -- The next fire time not yet claimed; NULL while disabled.
    next_run_time BIGINT,
    create_time   BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    revision      BIGINT NOT NULL,
    config        TEXT NOT NULL
);

CREATE INDEX schedules_due ON schedules (next_run_time) WHERE enabled;

CREATE TABLE schedule_runs (
    id                      TEXT COLLATE "C" PRIMARY KEY,
    schedule_id             TEXT COLLATE "C" NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    trigger                 TEXT COLLATE "C" NOT NULL,
    scheduled_time          BIGINT NOT NULL,
    -- The fire time a cron or misfire run claims; unique per schedule, so two servers
    -- sharing this database cannot both fire it. NULL (never equal) for manual runs.
    fire_time               BIGINT,
    status                  TEXT COLLATE "C" NOT NULL,
    start_time              BIGINT,
    end_time                BIGINT,
    session_id              TEXT COLLATE "C",
    turn_id                 TEXT COLLATE "C",
    error                   TEXT NOT NULL,
    attempt                 BIGINT NOT NULL,
    next_retry_delay_micros BIGINT,
    UNIQUE (schedule_id, fire_time)
);

CREATE INDEX schedule_runs_newest ON schedule_runs (schedule_id, id DESC);
CREATE INDEX schedule_runs_unfinished ON schedule_runs (status) WHERE status IN ('pending', 'running');
