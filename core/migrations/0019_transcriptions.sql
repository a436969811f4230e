-- What the caller said, in words (issue 23). Each message recording (and each bridged conversation) gets a
-- transcription job when it is stored; the table is the queue, like webhook_deliveries: a worker leases a due
-- job, runs the configured engine off the media threads and writes the text, or a retry time, or the reason it
-- gave up. The request keeps the message's text too (`requests.transcript`), so lists and search need no join.
CREATE TABLE transcriptions (
    recording_id BIGINT PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    -- pending, done, empty (nothing to transcribe: silence, no words), failed (gave up; see reason)
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    engine TEXT,
    language TEXT,
    text TEXT,
    -- 0..1 where the engine gives one
    confidence DOUBLE PRECISION,
    low_quality BIGINT NOT NULL DEFAULT 0,
    reason TEXT,
    audio_ms BIGINT,
    engine_ms BIGINT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX transcriptions_due ON transcriptions (status, next_attempt_at);
CREATE INDEX transcriptions_org ON transcriptions (org_id);

ALTER TABLE requests ADD COLUMN transcript TEXT;
-- The language its callers speak (BCP 47 such as en, en-US, de), for the engines; NULL: [transcription] language.
ALTER TABLE organizations ADD COLUMN language TEXT;
