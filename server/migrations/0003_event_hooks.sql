-- The event outbox: one row per (event, hook), written in the same
-- transaction as the change that caused it, delivered in order per hook.

CREATE TABLE event_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event_id        TEXT NOT NULL,
    hook_id         TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    gateway_id      TEXT NOT NULL,
    source          TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,          -- unix milliseconds
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX event_deliveries_by_hook ON event_deliveries (hook_id, status, seq);
CREATE INDEX event_deliveries_by_gateway ON event_deliveries (gateway_id, seq);
