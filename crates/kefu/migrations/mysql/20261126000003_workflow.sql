-- Agent capacity and availability, CSAT, private notes, canned replies and attachments.
ALTER TABLE users ADD COLUMN capacity BIGINT NOT NULL DEFAULT 5;
ALTER TABLE users ADD COLUMN away BIGINT NOT NULL DEFAULT 0;
-- When the agent last got a conversation: routing's tie-break goes to the one idle longest.
ALTER TABLE users ADD COLUMN last_assigned_at BIGINT NOT NULL DEFAULT 0;

ALTER TABLE conversations ADD COLUMN rating BIGINT;
ALTER TABLE conversations ADD COLUMN rating_comment VARCHAR(4000);
ALTER TABLE conversations ADD COLUMN rated_at BIGINT;
ALTER TABLE conversations ADD COLUMN resolved_by BIGINT;
ALTER TABLE conversations ADD CONSTRAINT conversations_resolved_by FOREIGN KEY (resolved_by) REFERENCES users (id);
CREATE INDEX conversations_resolved ON conversations (resolved_at);

-- Private notes live apart from messages: no query a customer can reach reads this table.
CREATE TABLE notes (
    id              BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT     NOT NULL,
    author_id       BIGINT     NOT NULL,
    content         MEDIUMTEXT NOT NULL,
    created_at      BIGINT     NOT NULL,
    KEY notes_by_conversation (conversation_id, id),
    CONSTRAINT notes_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT notes_author FOREIGN KEY (author_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- owner_key 0: shared by every agent (managed by admins); MySQL has no expression index here.
CREATE TABLE canned_replies (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner_id   BIGINT,
    owner_key  BIGINT AS (COALESCE(owner_id, 0)) STORED,
    shortcut   VARCHAR(64)  NOT NULL,
    content    MEDIUMTEXT   NOT NULL,
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    UNIQUE KEY canned_replies_shortcut (owner_key, shortcut),
    CONSTRAINT canned_replies_owner FOREIGN KEY (owner_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE attachments (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT       NOT NULL,
    uploader_id     BIGINT       NOT NULL,
    name            VARCHAR(255) NOT NULL,
    mime            VARCHAR(128) NOT NULL,
    size            BIGINT       NOT NULL,
    -- the file's name under the attachment directory
    stored_as       VARCHAR(128) NOT NULL,
    created_at      BIGINT       NOT NULL,
    KEY attachments_by_conversation (conversation_id),
    CONSTRAINT attachments_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT attachments_uploader FOREIGN KEY (uploader_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
ALTER TABLE messages ADD COLUMN attachment_id BIGINT;
ALTER TABLE messages ADD CONSTRAINT messages_attachment FOREIGN KEY (attachment_id) REFERENCES attachments (id);
