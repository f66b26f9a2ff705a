-- Agent capacity and availability, CSAT, private notes, canned replies and attachments.
ALTER TABLE users ADD COLUMN capacity INTEGER NOT NULL DEFAULT 5;
ALTER TABLE users ADD COLUMN away INTEGER NOT NULL DEFAULT 0;
-- When the agent last got a conversation: routing's tie-break goes to the one idle longest.
ALTER TABLE users ADD COLUMN last_assigned_at INTEGER NOT NULL DEFAULT 0;

ALTER TABLE conversations ADD COLUMN rating INTEGER;
ALTER TABLE conversations ADD COLUMN rating_comment TEXT;
ALTER TABLE conversations ADD COLUMN rated_at INTEGER;
ALTER TABLE conversations ADD COLUMN resolved_by INTEGER REFERENCES users (id);
CREATE INDEX conversations_resolved ON conversations (resolved_at);

-- Private notes live apart from messages: no query a customer can reach reads this table.
CREATE TABLE notes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    author_id       INTEGER NOT NULL REFERENCES users (id),
    content         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notes_by_conversation ON notes (conversation_id, id);

-- owner_id NULL: shared by every agent (managed by admins).
CREATE TABLE canned_replies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER REFERENCES users (id),
    shortcut   TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX canned_replies_shortcut ON canned_replies (COALESCE(owner_id, 0), shortcut);

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    uploader_id     INTEGER NOT NULL REFERENCES users (id),
    name            TEXT    NOT NULL,
    mime            TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    -- the file's name under the attachment directory
    stored_as       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX attachments_by_conversation ON attachments (conversation_id);
ALTER TABLE messages ADD COLUMN attachment_id INTEGER REFERENCES attachments (id);
