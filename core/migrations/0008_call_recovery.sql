-- Calls cut by a crash (issue 9): which instance carried a call, and what its recording was for, written when the
-- recording starts. The instance that restarts closes the calls it left open and opens the requests their
-- messages were for, instead of leaving open rows and request-less recordings behind.
ALTER TABLE calls ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN recording_kind TEXT;
CREATE INDEX calls_open_by_instance ON calls (instance, ended_at);
