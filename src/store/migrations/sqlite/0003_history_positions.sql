-- A message's place in the conversation the model sees. It is set when the message
-- joins that conversation (a queued turn's message when the turn starts, a steered
-- message at the next step), so it can differ from arrival (id) order; NULL while the
-- message waits.
ALTER TABLE messages ADD COLUMN position INTEGER;
UPDATE messages SET position = (
    SELECT COUNT(*) FROM messages AS earlier
    WHERE earlier.session_id = messages.session_id AND earlier.id <= messages.id
);
CREATE INDEX messages_history ON messages (session_id, position) WHERE position IS NOT NULL;

-- Tools the user allowed for the rest of the session (ALLOW_ALWAYS), as a JSON array.
ALTER TABLE sessions ADD COLUMN allowed_tools TEXT NOT NULL DEFAULT '[]';
