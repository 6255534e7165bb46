-- Appliances and what they need: the zone of every asset (0–9, InfraSonar's
-- model), stable numeric ids for checks (the appliance stream names checks
-- by number), and the appliances themselves with the certificate each was
-- enrolled with.

ALTER TABLE assets ADD COLUMN zone INTEGER NOT NULL DEFAULT 0;

CREATE TABLE check_ids (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id  INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    collector TEXT    NOT NULL,
    check_key TEXT    NOT NULL,
    UNIQUE (asset_id, collector, check_key)
);

CREATE TABLE appliances (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id     INTEGER NOT NULL REFERENCES containers (id),
    name             TEXT    NOT NULL,
    zone             INTEGER NOT NULL DEFAULT 0,
    -- The token the appliance enrolled with; revoking it does not revoke
    -- the appliance (its certificate is its identity from then on).
    token_id         INTEGER,
    cert_fingerprint TEXT,
    cert_not_after   INTEGER,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER,
    revoked_at       INTEGER
);
CREATE INDEX appliances_container ON appliances (container_id);
