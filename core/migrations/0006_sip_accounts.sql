-- OnCall as a SIP registrar for employees' own devices (issue 6 item 2; bindings in the database for
-- issue 10, so a registered phone survives the loss of an instance).
--
-- `sip_accounts`: one SIP login per row, owned by a person. Only the digest keys are stored,
-- H(username:realm:password) for MD5 and SHA-256 (RFC 7616 §3.4.2), never the password; `realm` is the
-- realm they were computed for (changing [registrar] realm invalidates them). Usernames are unique across
-- the whole installation because a REGISTER names only the username.
--
-- `sip_bindings`: a device's current registration: its Contact URI, where the REGISTER came from
-- (`source_addr` "ip:port", `transport` udp/tcp), when it expires (epoch ms) and the Call-ID/CSeq that
-- set it (RFC 3261 §10.3 step 7 orders refreshes by them). Expired rows are ignored and purged.

CREATE TABLE sip_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL,
    person_id BIGINT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    realm TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, person_id) REFERENCES people (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sip_accounts_person ON sip_accounts (org_id, person_id);

CREATE TABLE sip_bindings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
    contact TEXT NOT NULL,
    source_addr TEXT NOT NULL,
    transport TEXT NOT NULL CHECK (transport IN ('udp', 'tcp')),
    expires_at BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    cseq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (account_id, contact)
);
CREATE INDEX sip_bindings_expires ON sip_bindings (expires_at);
