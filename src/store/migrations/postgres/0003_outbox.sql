-- The webhook outbox (issue 12): one row per notification to one receiver, written in
-- the transaction of the state change that causes it and kept after delivery for the
-- operator. Times are BIGINT microseconds since the Unix epoch, as everywhere.
--
-- secret is the `whsec_` text the body is signed with (never shown by the API).
-- A claim by a server sets claimed_by and moves next_attempt_time to the claim's end
-- (claims use FOR UPDATE SKIP LOCKED, so servers claiming at once get disjoint rows); a
-- claim never recorded (its server died) makes the row due again by itself.
CREATE TABLE webhook_deliveries (
    id                TEXT COLLATE "C" PRIMARY KEY,   -- msg_…, the webhook-id
    url               TEXT NOT NULL,
    secret            TEXT NOT NULL,
    event_type        TEXT COLLATE "C" NOT NULL,
    payload           TEXT NOT NULL,                  -- the whole JSON body
    create_time       BIGINT NOT NULL,
    state             TEXT COLLATE "C" NOT NULL,      -- pending, delivered, dead
    attempts          BIGINT NOT NULL,
    next_attempt_time BIGINT NOT NULL,
    last_error        TEXT NOT NULL,
    claimed_by        TEXT COLLATE "C" NOT NULL,
    update_time       BIGINT NOT NULL
);

-- The worker's query: pending rows by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_time)
    WHERE state = 'pending';
-- The operator's list, by state, newest first.
CREATE INDEX webhook_deliveries_by_state ON webhook_deliveries (state, id);
