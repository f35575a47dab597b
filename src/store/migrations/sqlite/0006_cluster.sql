-- Several servers on one database (issue 12): the server registry and session leases.
-- Times are microseconds since the Unix epoch, as everywhere.
--
-- A server row is written by the server itself (register, heartbeat) and deleted when
-- it shuts down cleanly; a dead server's row stays, with its old heartbeat.
CREATE TABLE servers (
    id             TEXT PRIMARY KEY NOT NULL,
    address        TEXT NOT NULL,   -- where other servers reach it
    start_time     INTEGER NOT NULL,
    heartbeat_time INTEGER NOT NULL
) STRICT;

-- Who owns a live session. The row outlives its owner (released: owner '', expire_time
-- 0) so a session's epochs never repeat; it goes with its session. Owner is a server id
-- but not a foreign key: a lease survives its server's row until it expires.
CREATE TABLE session_leases (
    session_id  TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    expire_time INTEGER NOT NULL
) STRICT;

-- A server's own leases, for its heartbeat and its shutdown.
CREATE INDEX session_leases_by_owner ON session_leases (owner);
