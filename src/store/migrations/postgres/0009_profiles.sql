-- Agent profiles (issue 17): the reusable part of a session's setup. As for models, the
-- fields no query looks at are one JSON document (`config`); at most one default, and
-- the store's transactions keep exactly one while any profile exists.
CREATE TABLE profiles (
    id          TEXT COLLATE "C" PRIMARY KEY,
    is_default  BOOLEAN NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    config      TEXT NOT NULL
);

CREATE UNIQUE INDEX profiles_one_default ON profiles (is_default) WHERE is_default;

-- The profile (id) a session was set up from; NULL when none applied. Not a foreign
-- key: a session keeps its record after the profile is deleted.
ALTER TABLE sessions ADD COLUMN profile TEXT;
