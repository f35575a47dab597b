-- Agent profiles (issue 17): the reusable part of a session's setup. As for models, the
-- fields no query looks at are one JSON document (`config`); at most one default, and
-- the store's transactions keep exactly one while any profile exists.
CREATE TABLE profiles (
    id          TEXT PRIMARY KEY NOT NULL,
    is_default  INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    config      TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX profiles_one_default ON profiles (is_default) WHERE is_default = 1;

-- The profile (id) a session was set up from; NULL when none applied. Not a foreign
-- key: a session keeps its record after the profile is deleted.
ALTER TABLE sessions ADD COLUMN profile TEXT;
