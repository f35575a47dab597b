-- Several servers on one database (issue 12): the server registry and session leases.
-- Times are BIGINT microseconds since the Unix epoch, as everywhere; lease times are
-- taken from the database's clock (clock_timestamp()), which every server shares.
--
-- A server row is written by the server itself (register, heartbeat) and deleted when
-- it shuts down cleanly; a dead server's row stays, with its old heartbeat.
CREATE TABLE servers (
    id             TEXT COLLATE "C" PRIMARY KEY,
    address        TEXT COLLATE "C" NOT NULL,   -- where other servers reach it
    start_time     BIGINT NOT NULL,
    heartbeat_time BIGINT NOT NULL
);

-- Who owns a live session. The row outlives its owner (released: owner '', expire_time
-- 0) so a session's epochs never repeat; it goes with its session. Owner is a server id
-- but not a foreign key: a lease survives its server's row until it expires. Fenced
-- writes hold this row FOR SHARE, so taking the lease waits for them.
CREATE TABLE session_leases (
    session_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    owner       TEXT COLLATE "C" NOT NULL,
    epoch       BIGINT NOT NULL,
    expire_time BIGINT NOT NULL
);

-- A server's own leases, for its heartbeat and its shutdown.
CREATE INDEX session_leases_by_owner ON session_leases (owner);
