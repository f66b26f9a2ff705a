-- E-mail (docs/mail.md): the outbox that survives a restart and is shared by the nodes, customers
-- who opted out of mail, and what each conversation has been mailed about, so that a trigger
-- fires once.

-- One e-mail to send. A row is sent by the node that claimed it (claimed_until in the future);
-- a failed attempt is tried again at due_at, with a growing pause, for at least 24 hours.
CREATE TABLE mail_outbox (
    id              BIGSERIAL PRIMARY KEY,
    recipient       TEXT NOT NULL,
    -- 'waiting' | 'unanswered' | 'reply' | 'transcript'
    kind            VARCHAR(16) NOT NULL,
    conversation_id BIGINT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NULL,
    -- Threading: this mail's Message-ID, and what it answers (References holds the chain).
    message_id      TEXT NOT NULL,
    in_reply_to     TEXT NULL,
    refs            TEXT NULL,
    -- The one-click unsubscribe link (List-Unsubscribe), for mails to customers.
    unsubscribe_url TEXT NULL,
    -- When it is to be sent (or tried again).
    due_at          BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    claimed_until   BIGINT NULL,
    sent_at         BIGINT NULL,
    -- Given up on (after 24 hours of failures); last_error says why.
    failed_at       BIGINT NULL,
    last_error      TEXT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX mail_outbox_pending ON mail_outbox (sent_at, failed_at, due_at);
CREATE INDEX mail_outbox_by_recipient ON mail_outbox (recipient, sent_at);

-- A customer who unsubscribed gets no more mails of agents' replies (a transcript it asks for
-- is still sent).
ALTER TABLE users ADD COLUMN mail_opt_out BIGINT NOT NULL DEFAULT 0;
-- The highest seq of an agent's message mailed to the customer, and of a customer's message the
-- agent was told is unanswered; when agents were told the conversation waits with nobody online.
ALTER TABLE conversations ADD COLUMN mailed_customer_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN mailed_unanswered_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN mailed_waiting_at BIGINT NULL;
