-- Per-organization limits and text identity (issue 17), set by the operator (`oncall org set`). NULL: the
-- server's setting ([sip] max_calls alone, [paging] max_pages_per_hour, [texts] from).
ALTER TABLE organizations ADD COLUMN max_calls BIGINT;
ALTER TABLE organizations ADD COLUMN max_pages_per_hour BIGINT;
ALTER TABLE organizations ADD COLUMN text_from TEXT;
