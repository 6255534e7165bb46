-- Users of the web UI, their access to containers, and their sessions.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Lower case: user names compare without case.
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    -- The password was given to the user (first admin, invitation) and
    -- must be changed at the next login.
    must_change    INTEGER NOT NULL DEFAULT 0,
    -- Sealed TOTP secret; '' when the user has no second factor.
    totp_secret    TEXT    NOT NULL DEFAULT '',
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    disabled_at    INTEGER
);

-- A user's permission flags on a container, inherited down the tree.
CREATE TABLE memberships (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    permissions  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, container_id)
);
CREATE INDEX memberships_container ON memberships (container_id);

-- A container that stops inheritance is seen only by its own members:
-- the customer decides whether its MSP's users see it.
ALTER TABLE containers ADD COLUMN inherit_access INTEGER NOT NULL DEFAULT 1;

CREATE TABLE sessions (
    -- SHA-256 of the cookie value: the database never holds a usable
    -- session.
    id_hash      TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    -- 'password' after the password, 'full' after the second factor (or
    -- when there is none).
    stage        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    remote_addr  TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
