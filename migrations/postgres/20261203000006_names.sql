-- One name, one account (issue 19). Usernames are compared as RFC 8265 (PRECIS)
-- UsernameCaseMapped, and names that read the same (UTS #39 skeleton) are one name. Neither can be
-- computed in SQL: the server gives existing accounts their new key and skeleton at start-up
-- (auth/ssr/names.rs, `adopt_old_names`), renaming the newer of two accounts whose names now
-- collide and recording it below.

-- Which rules made username_key: 0 = trimmed and lower-cased (before this migration, and what an
-- older instance still writes during a rolling upgrade), 1 = PRECIS.
ALTER TABLE users ADD COLUMN name_rules INTEGER NOT NULL DEFAULT 0;
-- The key's confusable skeleton. NULL until adopted, and for an old account whose name reads like
-- an older account's (both keep their names; no new name may look like them).
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
CREATE INDEX users_old_name_rules ON users (id) WHERE name_rules = 0;

-- Accounts renamed by the adoption, for the operator to tell their owners.
CREATE TABLE username_changes (
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    old_username TEXT    NOT NULL,
    new_username TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    changed_at   BIGINT  NOT NULL  -- Unix milliseconds
);
