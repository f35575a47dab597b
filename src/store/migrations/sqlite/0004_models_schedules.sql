-- Models and schedules. The fields no query looks at are kept as one JSON document
-- (`config`); the columns are what queries and invariants need.
CREATE TABLE models (
    id          TEXT PRIMARY KEY NOT NULL,
    is_default  INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    config      TEXT NOT NULL
) STRICT;

-- At most one default; the store's transactions keep exactly one while any model exists.
CREATE UNIQUE INDEX models_one_default ON models (is_default) WHERE is_default = 1;

CREATE TABLE schedules (
    id            TEXT PRIMARY KEY NOT NULL,
    model         TEXT,
    enabled       INTEGER NOT NULL,
    -- The next fire time not yet claimed; NULL while disabled.
    next_run_time INTEGER,
    create_time   INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    config        TEXT NOT NULL
) STRICT;

CREATE INDEX schedules_due ON schedules (next_run_time) WHERE enabled = 1;

CREATE TABLE schedule_runs (
    id                      TEXT PRIMARY KEY NOT NULL,
    schedule_id             TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    trigger                 TEXT NOT NULL,
    scheduled_time          INTEGER NOT NULL,
    -- The fire time a cron or misfire run claims; unique per schedule, so two servers
    -- sharing this database cannot both fire it. NULL for manual runs.
    fire_time               INTEGER,
    status                  TEXT NOT NULL,
    start_time              INTEGER,
    end_time                INTEGER,
    session_id              TEXT,
    turn_id                 TEXT,
    error                   TEXT NOT NULL,
    attempt                 INTEGER NOT NULL,
    next_retry_delay_micros INTEGER,
    UNIQUE (schedule_id, fire_time)
) STRICT;

CREATE INDEX schedule_runs_newest ON schedule_runs (schedule_id, id DESC);
CREATE INDEX schedule_runs_unfinished ON schedule_runs (status) WHERE status IN ('pending', 'running');
