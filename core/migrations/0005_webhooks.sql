-- Outbound webhooks (issue 7), driven from the database so several instances share the work
-- (issue 10).
--
-- `webhooks.event_cursor` is the highest `request_events.id` already turned into deliveries for
-- that webhook. Any instance may copy newer status events into `webhook_deliveries` (the unique
-- (webhook_id, event_id) makes a second copy a no-op); a delivery is then leased
-- (`lease_owner`, `lease_expires_at`) by the instance that sends it, so two instances never send
-- the same event at once. Every attempt is logged in `webhook_attempts` for the delivery log.
--
-- The secret is stored in clear: it is the HMAC key OnCall signs with, not a password.

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('json', 'slack')),
    -- Space-separated event names (request.created ...); empty means every event.
    events TEXT NOT NULL,
    event_cursor BIGINT NOT NULL,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    webhook_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES request_events (id),
    request_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (webhook_id, event_id),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_request ON webhook_deliveries (webhook_id, request_id, status);

CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    webhook_id BIGINT NOT NULL,
    delivery_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, delivery_id) REFERENCES webhook_deliveries (org_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (org_id, webhook_id, id);
