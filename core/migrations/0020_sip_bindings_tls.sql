-- Phones register over TLS too (issue 21): a binding's transport may be 'tls'. Neither SQLite nor a portable
-- ALTER changes a CHECK, so the table is rebuilt; binding ids are referenced nowhere and are renumbered.
CREATE TABLE sip_bindings_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES sip_accounts (id) ON DELETE CASCADE,
    contact TEXT NOT NULL,
    source_addr TEXT NOT NULL,
    transport TEXT NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    expires_at BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    cseq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (account_id, contact)
);
INSERT INTO sip_bindings_new (account_id, contact, source_addr, transport, expires_at, call_id, cseq, updated_at)
    SELECT account_id, contact, source_addr, transport, expires_at, call_id, cseq, updated_at FROM sip_bindings;
DROP TABLE sip_bindings;
ALTER TABLE sip_bindings_new RENAME TO sip_bindings;
CREATE INDEX sip_bindings_expires ON sip_bindings (expires_at);
