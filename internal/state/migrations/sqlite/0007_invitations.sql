-- Invitations by one-time link, the members of a container, and each
-- user's time zone for the web UI.

ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';

CREATE TABLE invitations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SHA-256 of the link's secret: the database never holds a usable
    -- link.
    token_hash   TEXT    NOT NULL UNIQUE,
    container_id INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    permissions  INTEGER NOT NULL,
    -- Who the link is for, as the inviter wrote it (shown to admins only).
    note         TEXT    NOT NULL DEFAULT '',
    created_by   INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    used_by      INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_container ON invitations (container_id);
