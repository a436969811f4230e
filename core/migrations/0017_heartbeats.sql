-- Heartbeat monitors (issue 20): an integration key with an interval is a heartbeat. The job it watches hits
-- `/api/v1/heartbeat` with the key at least that often; a missed beat opens a request (de-duplication key
-- `heartbeat`) that the next beat resolves.
ALTER TABLE integration_keys ADD COLUMN heartbeat_secs BIGINT;
ALTER TABLE integration_keys ADD COLUMN last_beat_at BIGINT;
