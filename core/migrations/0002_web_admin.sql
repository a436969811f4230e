-- The web admin (issue 5): login sessions, API tokens, disabling people/users/policies, private
-- calendar feeds and the per-organization IVR menu edited on the web.
--
-- Secrets that log someone in (session cookies, API tokens) are stored only as SHA-256 hex
-- digests: a leaked database does not log anyone in. Calendar feed tokens are kept in clear so
-- the person's page can show the feed URL again; a feed only reveals shift times, read-only.

CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Per-session CSRF token, put in every form and compared on every POST.
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- The first characters of the token, shown in the list so a user can tell tokens apart.
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (org_id, user_id);

ALTER TABLE people ADD COLUMN disabled_at BIGINT;
ALTER TABLE people ADD COLUMN calendar_token TEXT;
CREATE UNIQUE INDEX people_calendar_token ON people (calendar_token);
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE escalation_policies ADD COLUMN disabled_at BIGINT;

-- The IVR menu as edited on the web: oncall_ivr::IvrConfig serialized as JSON, and the storage
-- key of the uploaded greeting (relative to storage.data_dir), if any.
CREATE TABLE ivr_settings (
    org_id BIGINT NOT NULL PRIMARY KEY REFERENCES organizations (id),
    menu_json TEXT NOT NULL,
    greeting_key TEXT,
    updated_at BIGINT NOT NULL
);
