-- The hub's state: the container tree, assets, their collectors and checks,
-- the latest result of every check, and API tokens.
-- Ids are never reused (AUTOINCREMENT): a deleted asset's id must not
-- name another tenant's asset later.
-- Times are Unix seconds. Booleans are 0/1 integers so the same queries run
-- on PostgreSQL.

CREATE TABLE containers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id  INTEGER REFERENCES containers (id),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX containers_parent ON containers (parent_id);

CREATE TABLE assets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX assets_container ON assets (container_id, name);

CREATE TABLE asset_collectors (
    asset_id   INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    collector  TEXT    NOT NULL,
    config     TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (asset_id, collector)
);

CREATE TABLE asset_checks (
    asset_id   INTEGER NOT NULL,
    collector  TEXT    NOT NULL,
    check_key  TEXT    NOT NULL,
    interval_s INTEGER NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (asset_id, collector, check_key),
    FOREIGN KEY (asset_id, collector) REFERENCES asset_collectors (asset_id, collector) ON DELETE CASCADE
);

CREATE TABLE check_results (
    asset_id       INTEGER NOT NULL,
    collector      TEXT    NOT NULL,
    check_key      TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    changed_at     INTEGER NOT NULL,
    last_seen_at   INTEGER,
    result         TEXT,
    error_message  TEXT,
    error_severity INTEGER,
    duration       REAL    NOT NULL DEFAULT 0,
    version        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (asset_id, collector, check_key),
    FOREIGN KEY (asset_id, collector) REFERENCES asset_collectors (asset_id, collector) ON DELETE CASCADE
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    permissions  INTEGER NOT NULL,
    created_by   INTEGER,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX tokens_container ON tokens (container_id);
