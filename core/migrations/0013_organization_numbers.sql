-- Organizations for real (issue 17): the numbers each one answers, and switching one off.
--
-- `address` is normalized (core::inbound::normalize): an E.164 number, the digits a PBX sends, or user@host.
-- `source` is the `[[trunks]]` entry a number is tied to ('' = calls from anywhere); the same address may be
-- owned once per source, so two PBXs may both send extension 4100 for different organizations.
-- A disabled organization keeps its data but its numbers get the unknown-number answer and its people
-- cannot sign in.
ALTER TABLE organizations ADD COLUMN disabled_at BIGINT;

CREATE TABLE organization_numbers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    address TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (address, source)
);
CREATE INDEX organization_numbers_org ON organization_numbers (org_id);
