-- OnCall's schema, shared by SQLite and PostgreSQL.
--
-- Portable SQL only: instants are BIGINT epoch milliseconds, flags would be BIGINT 0/1, JSON is
-- TEXT. The one dialect difference, auto-increment ids, is written the SQLite way
-- ("INTEGER PRIMARY KEY AUTOINCREMENT") and rewritten for PostgreSQL when the migrator is
-- built (see store/migrations.rs).
--
-- Tenancy: every table carries org_id, and children reference parents by (org_id, id), so the
-- database itself refuses a row that points into another organization.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    email TEXT,
    role TEXT NOT NULL CHECK (role IN ('manager', 'employee')),
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, id),
    UNIQUE (org_id, email)
);

CREATE TABLE contact_methods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('phone', 'sip')),
    address TEXT NOT NULL,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_methods_person ON contact_methods (org_id, person_id);

CREATE TABLE notification_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('call', 'text')),
    delay_ms BIGINT NOT NULL CHECK (delay_ms >= 0),
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id) ON DELETE CASCADE
);
CREATE INDEX notification_rules_person ON notification_rules (org_id, person_id);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, id),
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    org_id BIGINT NOT NULL,
    team_id BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    PRIMARY KEY (team_id, person_id),
    FOREIGN KEY (org_id, team_id) REFERENCES teams (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id) ON DELETE CASCADE
);

CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE schedule_layers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    schedule_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    shift_unit TEXT NOT NULL CHECK (shift_unit IN ('hours', 'days', 'weeks')),
    shift_count BIGINT NOT NULL CHECK (shift_count > 0),
    -- Schedule-local wall clock, 'YYYY-MM-DDTHH:MM:SS': the rotation start and handoff time.
    start_local TEXT NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, schedule_id) REFERENCES schedules (org_id, id) ON DELETE CASCADE
);

CREATE TABLE layer_members (
    org_id BIGINT NOT NULL,
    layer_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    PRIMARY KEY (layer_id, position),
    FOREIGN KEY (org_id, layer_id) REFERENCES schedule_layers (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id)
);

CREATE TABLE schedule_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    schedule_id BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (starts_at < ends_at),
    FOREIGN KEY (org_id, schedule_id) REFERENCES schedules (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id)
);
CREATE INDEX schedule_overrides_schedule ON schedule_overrides (org_id, schedule_id, starts_at);

CREATE TABLE escalation_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    repeat_count BIGINT NOT NULL CHECK (repeat_count >= 0),
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE escalation_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    policy_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    wait_ms BIGINT NOT NULL CHECK (wait_ms > 0),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, policy_id) REFERENCES escalation_policies (org_id, id) ON DELETE CASCADE
);

CREATE TABLE escalation_targets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    step_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    person_id BIGINT,
    schedule_id BIGINT,
    -- exactly one of person / schedule
    CHECK ((person_id IS NULL AND schedule_id IS NOT NULL) OR (person_id IS NOT NULL AND schedule_id IS NULL)),
    FOREIGN KEY (org_id, step_id) REFERENCES escalation_steps (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id),
    FOREIGN KEY (org_id, schedule_id) REFERENCES schedules (org_id, id)
);

-- Logins of the web admin. E-mail is unique across organizations: it is what people log in with.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    person_id BIGINT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('manager', 'employee')),
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id)
);

CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    call_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    called TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT,
    digits TEXT NOT NULL DEFAULT '',
    recording_path TEXT,
    recording_duration_ms BIGINT,
    UNIQUE (org_id, id)
);
CREATE INDEX calls_received ON calls (org_id, received_at);

CREATE TABLE requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    call_row_id BIGINT,
    caller TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('received', 'notifying', 'answered', 'acknowledged', 'completed', 'abandoned', 'exhausted')),
    received_at BIGINT NOT NULL,
    notifying_at BIGINT,
    answered_at BIGINT,
    answered_by TEXT,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    completed_at BIGINT,
    completed_by TEXT,
    abandoned_at BIGINT,
    abandoned_by TEXT,
    exhausted_at BIGINT,
    -- A status implies its stamp (the Rust type says the same).
    CHECK (status <> 'notifying' OR notifying_at IS NOT NULL),
    CHECK (status <> 'answered' OR (answered_at IS NOT NULL AND answered_by IS NOT NULL)),
    CHECK (status <> 'acknowledged' OR (acknowledged_at IS NOT NULL AND acknowledged_by IS NOT NULL)),
    CHECK (status <> 'completed' OR (completed_at IS NOT NULL AND completed_by IS NOT NULL)),
    CHECK (status <> 'abandoned' OR (abandoned_at IS NOT NULL AND abandoned_by IS NOT NULL)),
    CHECK (status <> 'exhausted' OR exhausted_at IS NOT NULL),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, call_row_id) REFERENCES calls (org_id, id)
);
CREATE INDEX requests_received ON requests (org_id, received_at);

-- Append-only: the store has no UPDATE or DELETE for it.
CREATE TABLE request_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    request_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id)
);
CREATE INDEX request_events_request ON request_events (org_id, request_id, id);

CREATE TABLE recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    request_id BIGINT,
    kind TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    peak DOUBLE PRECISION NOT NULL,
    rms DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id)
);
CREATE INDEX recordings_request ON recordings (org_id, request_id);

-- Escalations in flight, so any instance can pick one up (issue 10). `state` is the engine,
-- serialized as JSON; `due_at` is its poll_timeout(); a lease keeps two instances from
-- driving the same escalation at once.
CREATE TABLE escalation_work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    request_id BIGINT NOT NULL UNIQUE,
    due_at BIGINT,
    state TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id)
);
CREATE INDEX escalation_work_due ON escalation_work (org_id, due_at);

-- Every notification ever sent. The unique key is the engine's NotificationKey: whoever
-- inserts it first sends it, so a replayed escalation never pages anyone twice.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    request_id BIGINT NOT NULL,
    stage BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('call', 'text')),
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (request_id, stage, person_id, channel),
    FOREIGN KEY (org_id, request_id) REFERENCES requests (org_id, id),
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id)
);
