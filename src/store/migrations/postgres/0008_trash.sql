-- The trash (issue 17, AIP-164 soft delete): a session moved to the trash keeps its rows
-- with delete_time set (microseconds) until expire_time, when a retention pass purges it.
ALTER TABLE sessions ADD COLUMN delete_time BIGINT;
ALTER TABLE sessions ADD COLUMN expire_time BIGINT;
-- Retention passes find expired sessions in the trash without a scan.
CREATE INDEX sessions_trash ON sessions (expire_time) WHERE delete_time IS NOT NULL;
-- The list orders besides the default one (ListSessions order_by).
CREATE INDEX sessions_by_create_time ON sessions (create_time DESC, id DESC);
CREATE INDEX sessions_by_display_name ON sessions (display_name, id);
