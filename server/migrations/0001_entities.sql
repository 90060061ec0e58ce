-- Every entity of every kind, the references between them, the revision
-- log the data planes stream from, and admin tokens.

CREATE TABLE entities (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- stable list order
    id          TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    gateway_id  TEXT,                               -- NULL for gateways
    scope_id    TEXT NOT NULL,                      -- the parent names are unique in
    name_family TEXT NOT NULL,                      -- kinds that share a name space
    name        TEXT NOT NULL,
    revision    INTEGER NOT NULL,                   -- last change (etag)
    body        BLOB NOT NULL,                      -- protobuf Entity, secrets redacted
    secrets     TEXT NOT NULL DEFAULT '{}',         -- sealed (AES-256-GCM) secret values
    UNIQUE (scope_id, name_family, name)
);
CREATE INDEX entities_by_gateway ON entities (gateway_id, kind, seq);

-- One row per reference field; RESTRICT keeps the database itself from
-- ever holding a dangling reference.
CREATE TABLE entity_refs (
    from_id TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    field   TEXT NOT NULL,
    to_id   TEXT NOT NULL REFERENCES entities (id) ON DELETE RESTRICT,
    PRIMARY KEY (from_id, field)
);
CREATE INDEX entity_refs_by_target ON entity_refs (to_id);

-- The revision log: "every change of gateway G after revision R" is one
-- range scan of revisions_by_gateway.
CREATE TABLE revisions (
    revision    INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    operation   TEXT NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    body        BLOB NOT NULL,                      -- the entity after the change
    secrets     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL                    -- unix milliseconds
);
CREATE INDEX revisions_by_gateway ON revisions (gateway_id, revision);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,                -- sha256 of the token
    created_at INTEGER NOT NULL
);
