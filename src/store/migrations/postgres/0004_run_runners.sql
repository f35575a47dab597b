-- Who runs a schedule run (issue 12): the id of the server process that claimed or took
-- it over. Only that server writes the run; when it dies (no heartbeat within the lease
-- TTL), a live server takes its unfinished runs over. Runs stored before this column
-- have no runner ('') and are taken over by the next server that starts.
ALTER TABLE schedule_runs ADD COLUMN runner TEXT COLLATE "C" NOT NULL DEFAULT '';
