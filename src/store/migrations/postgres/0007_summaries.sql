-- A session's context summary (compaction, issue 14): at most one per session, the
-- whole record as JSON; the replaced messages stay in `messages`.
CREATE TABLE session_summaries (
    session_id       TEXT COLLATE "C" PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    through_position BIGINT NOT NULL,
    summary          TEXT NOT NULL
);
