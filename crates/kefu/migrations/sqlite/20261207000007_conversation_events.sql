-- What happened to a conversation besides its messages: assigned, transferred, returned to the
-- queue, resolved, rated. Written in the same transaction as the change itself, so a transcript
-- (and anything that follows the changes) never misses one.
CREATE TABLE conversation_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    -- 'assigned', 'transferred', 'queued', 'resolved', 'rated'
    kind            TEXT    NOT NULL,
    -- who did it (an agent, the customer); NULL when kefu did (routing)
    actor_id        INTEGER REFERENCES users (id),
    -- the agent it concerns: assigned to, transferred to
    agent_id        INTEGER REFERENCES users (id),
    -- a rating's score
    score           INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX conversation_events_by_conversation ON conversation_events (conversation_id, id);
