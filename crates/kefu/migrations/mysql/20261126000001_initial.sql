-- Ids are database-generated; times are milliseconds since the Unix epoch.
-- Integers are BIGINT and short strings VARCHAR so that every column maps to one portable type.
CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role          VARCHAR(16)  NOT NULL,
    username      VARCHAR(64)  NOT NULL,
    display_name  VARCHAR(256) NOT NULL,
    email         VARCHAR(254),
    password_hash VARCHAR(255),
    disabled      BIGINT       NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL,
    UNIQUE KEY users_username (username)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE conversations (
    id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT      NOT NULL,
    agent_id    BIGINT,
    status      VARCHAR(16) NOT NULL DEFAULT 'open',
    -- the customer's id while open, NULL once resolved: at most one open conversation per customer
    open_key    BIGINT,
    last_seq    BIGINT      NOT NULL DEFAULT 0,
    created_at  BIGINT      NOT NULL,
    updated_at  BIGINT      NOT NULL,
    assigned_at BIGINT,
    resolved_at BIGINT,
    UNIQUE KEY conversations_open_key (open_key),
    KEY conversations_by_customer (customer_id, id),
    KEY conversations_by_agent (agent_id, status),
    KEY conversations_queue (status, agent_id, id),
    CONSTRAINT conversations_customer FOREIGN KEY (customer_id) REFERENCES users (id),
    CONSTRAINT conversations_agent FOREIGN KEY (agent_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT      NOT NULL,
    seq             BIGINT      NOT NULL,
    sender_id       BIGINT      NOT NULL,
    kind            VARCHAR(16) NOT NULL DEFAULT 'text',
    content         MEDIUMTEXT  NOT NULL,
    client_msg_id   VARCHAR(64),
    created_at      BIGINT      NOT NULL,
    UNIQUE KEY messages_conversation_seq (conversation_id, seq),
    UNIQUE KEY messages_sender_client_msg_id (sender_id, client_msg_id),
    CONSTRAINT messages_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT messages_sender FOREIGN KEY (sender_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE read_states (
    user_id         BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    last_read_seq   BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id),
    CONSTRAINT read_states_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT read_states_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
