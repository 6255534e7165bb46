-- The audit log: every change made through the API or the web UI, and
-- the appliances' own audit events. Append-only: rows are never changed,
-- and only rows older than the retention may be removed.

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    -- The container the change happened in (0 when it has none, e.g. a
    -- failed login of an unknown user name: visible to the root only).
    container_id INTEGER NOT NULL,
    -- Who: 'token', 'user', 'appliance' or 'hub', and its id.
    actor_kind   TEXT    NOT NULL,
    actor_id     INTEGER NOT NULL,
    -- What: the route ("POST /api/v1/container/{id}/condition") or the
    -- event ("login", "appliance audit").
    action       TEXT    NOT NULL,
    -- Which object: its kind and id (0 when none).
    object_kind  TEXT    NOT NULL DEFAULT '',
    object_id    INTEGER NOT NULL DEFAULT 0,
    address      TEXT    NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    -- The HTTP status of the answer, or 0.
    status       INTEGER NOT NULL DEFAULT 0,
    detail       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_container ON audit_log (container_id, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- 400 days: a year and a month, for yearly audits.
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN old.at > CAST(strftime('%s', 'now') AS INTEGER) - 400 * 86400
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries are kept 400 days');
END;
