-- Requests from monitoring (issue 20): integration keys and alert requests.
--
-- An integration key belongs to one organization and optionally names the escalation policy its alerts page
-- with (else the organization's first enabled one). The secret is shown once; only its SHA-256 digest is kept.
-- A request opened by an alert carries its integration and de-duplication key (Alertmanager's groupKey, an
-- Events-v2 dedup_key): a second alert with the same key while the request is open counts on it instead of
-- opening (and paging) another.
CREATE TABLE integration_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    policy_id BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX integration_keys_org ON integration_keys (org_id);

ALTER TABLE requests ADD COLUMN source TEXT NOT NULL DEFAULT 'call';
ALTER TABLE requests ADD COLUMN integration_id BIGINT;
ALTER TABLE requests ADD COLUMN dedup_key TEXT;
ALTER TABLE requests ADD COLUMN alert_count BIGINT NOT NULL DEFAULT 0;
CREATE INDEX requests_dedup ON requests (org_id, integration_id, dedup_key);
