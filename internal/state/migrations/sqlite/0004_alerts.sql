-- Conditions, alerts, monitoring-health notifications, maintenance windows,
-- notification rules and their deliveries (an outbox: a delivery row is
-- written in the same transaction as the alert or notification change it
-- announces, so a restart neither loses nor repeats one).

-- Labels attach conditions to assets.
CREATE TABLE asset_labels (
    asset_id INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    label    TEXT    NOT NULL,
    PRIMARY KEY (asset_id, label)
);

-- The interval a check's results arrive at, learnt from their timestamps,
-- for checks without a configured interval (agents).
ALTER TABLE check_results ADD COLUMN observed_interval_s INTEGER;

CREATE TABLE conditions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    collector    TEXT    NOT NULL DEFAULT '',
    check_key    TEXT    NOT NULL DEFAULT '',
    type_name    TEXT    NOT NULL,
    expression   TEXT    NOT NULL DEFAULT '',
    items        TEXT    NOT NULL DEFAULT '[]',
    labels       TEXT    NOT NULL DEFAULT '[]',
    severity     INTEGER NOT NULL,
    message      TEXT    NOT NULL DEFAULT '',
    ticks        INTEGER NOT NULL DEFAULT 1,
    clear_ticks  INTEGER NOT NULL DEFAULT 1,
    disabled     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- Deleted conditions stay for the history of their alerts.
    deleted_at   INTEGER
);
CREATE INDEX conditions_container ON conditions (container_id);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    asset_id     INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    condition_id INTEGER NOT NULL REFERENCES conditions (id),
    item         TEXT    NOT NULL,
    severity     INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    assigned_to  TEXT    NOT NULL DEFAULT '',
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER,
    close_reason TEXT    NOT NULL DEFAULT ''
);
-- One open alert per (condition, asset, item).
CREATE UNIQUE INDEX alerts_open ON alerts (condition_id, asset_id, item) WHERE status = 'open';
CREATE INDEX alerts_container ON alerts (container_id, status, id);
CREATE INDEX alerts_asset ON alerts (asset_id, status, id);

CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    actor    TEXT    NOT NULL DEFAULT '',
    text     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

CREATE TABLE maintenance (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    asset_id     INTEGER REFERENCES assets (id) ON DELETE CASCADE,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    reason       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX maintenance_container ON maintenance (container_id, ends_at);

CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers (id),
    asset_id     INTEGER REFERENCES assets (id) ON DELETE CASCADE,
    appliance_id INTEGER,
    kind         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    severity     INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE UNIQUE INDEX notifications_open ON notifications (container_id, kind, subject) WHERE status = 'open';
CREATE INDEX notifications_container ON notifications (container_id, status, id);

CREATE TABLE rules (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id              INTEGER NOT NULL REFERENCES containers (id),
    name                      TEXT    NOT NULL,
    channel                   TEXT    NOT NULL,
    url                       TEXT    NOT NULL DEFAULT '',
    recipients                TEXT    NOT NULL DEFAULT '[]',
    secret                    TEXT    NOT NULL DEFAULT '',
    min_severity              INTEGER NOT NULL,
    min_notification_severity INTEGER NOT NULL,
    events                    TEXT    NOT NULL DEFAULT '[]',
    labels                    TEXT    NOT NULL DEFAULT '[]',
    condition_ids             TEXT    NOT NULL DEFAULT '[]',
    schedule                  TEXT    NOT NULL DEFAULT '',
    disabled                  INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);
CREATE INDEX rules_container ON rules (container_id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    container_id    INTEGER NOT NULL,
    -- "alert.open:17", "notification.close:4": one delivery per rule and event.
    event_key       TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (rule_id, event_key)
);
CREATE INDEX deliveries_pending ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_rule ON deliveries (rule_id, id);
