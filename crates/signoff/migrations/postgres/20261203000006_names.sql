-- One name, one account (issue 19). Usernames are compared as RFC 8265 (PRECIS)
-- UsernameCaseMapped, and names that read the same (UTS #39 skeletons) are one name. Neither can be
-- computed in SQL: the server gives existing accounts their new key and readings at start-up
-- (auth/ssr/names.rs, `adopt_old_names`), renaming the newer of two accounts whose names now
-- collide and recording it below.

-- Which rules made username_key: 0 = trimmed and lower-cased (before this migration, and what an
-- older instance still writes during a rolling upgrade), 1 = PRECIS.
ALTER TABLE users ADD COLUMN name_rules INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_old_name_rules ON users (id) WHERE name_rules = 0;

-- How each name reads: the confusable skeletons of the name as shown and of its key (one row when
-- they are the same). A reading belongs to one account, so a new name that reads like an existing
-- one is refused, atomically with the insert of the account. An old account whose name reads like
-- an older account's keeps its name without the readings already taken.
CREATE TABLE username_readings (
    reading TEXT    PRIMARY KEY NOT NULL,
    user_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX username_readings_user ON username_readings (user_id);

-- Accounts renamed by the adoption, for the operator to tell their owners.
CREATE TABLE username_changes (
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    old_username TEXT    NOT NULL,
    new_username TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    changed_at   BIGINT  NOT NULL  -- Unix milliseconds
);
