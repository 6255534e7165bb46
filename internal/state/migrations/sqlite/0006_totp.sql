-- The web UI's second factor: single-use recovery codes (hashes only), and
-- containers whose users must have a second factor.

CREATE TABLE recovery_codes (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT    NOT NULL,
    PRIMARY KEY (user_id, hash)
);

ALTER TABLE containers ADD COLUMN require_totp INTEGER NOT NULL DEFAULT 0;
