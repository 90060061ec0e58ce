-- Admin tokens may expire and can be revoked; both are refused at once
-- (UNAUTHENTICATED) and stay listed for the record.

ALTER TABLE admin_tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;  -- unix ms; 0: never
ALTER TABLE admin_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;  -- unix ms; 0: live
