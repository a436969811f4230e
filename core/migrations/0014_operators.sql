-- The operator role (issue 17): whoever runs the server for its client organizations. An operator belongs to no
-- organization, signs in at /operator with a session of its own (a manager's session never opens the operator
-- area, an operator's never opens an organization's pages), and creates, renames, disables and deletes
-- organizations. E-mails are unique among operators; an operator may also be some organization's user.
CREATE TABLE operators (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE operator_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    operator_id BIGINT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
