-- Business hours per organization and deferred paging (issue 7 items 1 and 2).
--
-- `business_hours`: at most one row per organization; no row means always open. `weekly` is JSON, one
-- key per weekday (`{"monday": "08:00-18:00", "saturday": "closed", ...}`, the same text as the config
-- file and the web form), read back through `oncall_core::business_hours::parse_day`.
--
-- `business_closures`: whole local days the organization is closed (holidays), with a label.
--
-- `requests.page_at`: a "normal" request opened after hours waits for the next opening. Any instance
-- claims due rows with one `UPDATE ... SET page_at = NULL WHERE page_at <= now AND status = 'received'
-- RETURNING id`, so exactly one instance starts each escalation, and a request acknowledged or completed on
-- the web before then is never paged.

CREATE TABLE business_hours (
    org_id BIGINT PRIMARY KEY REFERENCES organizations (id),
    time_zone TEXT NOT NULL,
    weekly TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE business_closures (
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    day TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (org_id, day)
);

ALTER TABLE requests ADD COLUMN page_at BIGINT;
CREATE INDEX requests_page_at ON requests (page_at);
