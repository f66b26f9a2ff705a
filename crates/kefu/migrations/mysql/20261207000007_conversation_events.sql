-- What happened to a conversation besides its messages: assigned, transferred, returned to the
-- queue, resolved, rated. Written in the same transaction as the change itself, so a transcript
-- (and anything that follows the changes) never misses one.
CREATE TABLE conversation_events (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT      NOT NULL,
    -- 'assigned', 'transferred', 'queued', 'resolved', 'rated'
    kind            VARCHAR(32) NOT NULL,
    -- who did it (an agent, the customer); NULL when kefu did (routing)
    actor_id        BIGINT,
    -- the agent it concerns: assigned to, transferred to
    agent_id        BIGINT,
    -- a rating's score
    score           BIGINT,
    created_at      BIGINT      NOT NULL,
    KEY conversation_events_by_conversation (conversation_id, id),
    CONSTRAINT conversation_events_conversation FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    CONSTRAINT conversation_events_actor FOREIGN KEY (actor_id) REFERENCES users (id),
    CONSTRAINT conversation_events_agent FOREIGN KEY (agent_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
