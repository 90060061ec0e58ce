-- Certificate authorities (one per gateway, plus the control plane's own
-- for the sync endpoint), data-plane nodes, and the log-compaction mark.

CREATE TABLE certificate_authorities (
    name       TEXT PRIMARY KEY,            -- 'gateway:<id>' or 'control-plane'
    cert_pem   TEXT NOT NULL,
    key_sealed TEXT NOT NULL                -- AES-256-GCM under the master key
);

CREATE TABLE data_plane_nodes (
    id               TEXT NOT NULL,
    gateway_id       TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    version          TEXT NOT NULL,
    certificate_id   TEXT NOT NULL,
    connected        INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,      -- unix milliseconds
    applied_revision INTEGER NOT NULL,
    applied_at       INTEGER NOT NULL,
    rejected_revision INTEGER NOT NULL DEFAULT 0,
    rejected_reason  TEXT NOT NULL DEFAULT '',
    rejected_at      INTEGER NOT NULL DEFAULT 0,
    errors           TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (gateway_id, id)
);

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Revisions at or below this one were compacted away: a node resuming
-- from before it gets a snapshot.
INSERT INTO store_meta (key, value) VALUES ('compacted_through', 0);

-- The SHA-256 fingerprint of a data_plane_certificate, to find the
-- certificate a connecting node presents.
ALTER TABLE entities ADD COLUMN fingerprint TEXT;
CREATE UNIQUE INDEX entities_by_fingerprint ON entities (fingerprint) WHERE fingerprint IS NOT NULL;
