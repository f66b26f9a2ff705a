-- The offline path (docs/protocol.md, "When nobody can answer"): conversations left through the
-- offline form, customers who went away, conversations that ended without an agent, a customer's
-- wait for the agent it asked for, and timers that one node of a cluster runs at a time.

-- Left through the offline form (留言): it stays in the queue for the next agent however long the
-- customer is away.
ALTER TABLE conversations ADD COLUMN offline BIGINT NOT NULL DEFAULT 0;
-- Since when the customer has had no connection (NULL while it has one); set and cleared by the
-- timers, so that it survives a restart and is the same on every node.
ALTER TABLE conversations ADD COLUMN customer_gone_at BIGINT NULL;
-- How a conversation ended when kefu ended it: 'abandoned' (left the queue unanswered) or 'idle'
-- (resolved after nothing was said while the customer was away); NULL when someone resolved it.
ALTER TABLE conversations ADD COLUMN ended_as VARCHAR(16) NULL;
-- The agent the customer asked for (csId) while it was offline, and until when the conversation
-- waits for that agent only.
ALTER TABLE conversations ADD COLUMN requested_agent_id BIGINT NULL;
ALTER TABLE conversations ADD COLUMN requested_until BIGINT NULL;
-- A customer's phone, from the offline form.
ALTER TABLE users ADD COLUMN phone VARCHAR(64) NULL;
-- Since when a staff member has had no connection (NULL while it has one), set by the timers.
ALTER TABLE users ADD COLUMN gone_at BIGINT NULL;

-- A timer that must fire once in a cluster is run by the node holding its lease.
CREATE TABLE leases (
    name   VARCHAR(64) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    held_until BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Shop-wide settings set in admin (business hours), one JSON document per key.
CREATE TABLE site_settings (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    value      MEDIUMTEXT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
