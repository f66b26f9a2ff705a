-- Ids are database-generated; times are milliseconds since the Unix epoch.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    role          TEXT    NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    email         TEXT,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES users (id),
    agent_id    INTEGER REFERENCES users (id),
    status      TEXT    NOT NULL DEFAULT 'open',
    -- the customer's id while open, NULL once resolved: at most one open conversation per customer
    open_key    INTEGER UNIQUE,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    assigned_at INTEGER,
    resolved_at INTEGER
);
CREATE INDEX conversations_by_customer ON conversations (customer_id, id);
CREATE INDEX conversations_by_agent ON conversations (agent_id, status);
CREATE INDEX conversations_queue ON conversations (status, agent_id, id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    sender_id       INTEGER NOT NULL REFERENCES users (id),
    kind            TEXT    NOT NULL DEFAULT 'text',
    content         TEXT    NOT NULL,
    client_msg_id   TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_msg_id)
);

CREATE TABLE read_states (
    user_id         INTEGER NOT NULL REFERENCES users (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    last_read_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
