-- The floor event sequences of a session restart from (see runtime::live), and a
-- cheap way to find the turns a crash left unfinished.
ALTER TABLE sessions ADD COLUMN event_sequence INTEGER NOT NULL DEFAULT 0;
CREATE INDEX turns_unfinished ON turns (status) WHERE status IN ('queued', 'running');
