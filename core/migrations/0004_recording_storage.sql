-- Recording storage (issue 4): where each recording's archived copy is and how to check it.
-- `object_key` is NULL while the recording waits in the local spool for its upload; once the
-- archive holds a verified copy it is set with the copy's SHA-256 (hex), size and time.
ALTER TABLE recordings ADD COLUMN object_key TEXT;
ALTER TABLE recordings ADD COLUMN sha256 TEXT;
ALTER TABLE recordings ADD COLUMN size_bytes BIGINT;
ALTER TABLE recordings ADD COLUMN uploaded_at BIGINT;
CREATE INDEX recordings_pending ON recordings (uploaded_at, id);
CREATE INDEX recordings_created ON recordings (org_id, created_at);
CREATE INDEX recordings_storage_key ON recordings (storage_key);
