-- Messages still waiting to join the conversation (no position yet), per session in id
-- order: ListMessages reads them first without scanning the session's whole history.
CREATE INDEX messages_waiting ON messages (session_id, id) WHERE position IS NULL;
