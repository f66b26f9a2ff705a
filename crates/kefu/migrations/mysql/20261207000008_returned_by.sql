-- Who handed a conversation back to the queue, and when: the queue does not give it straight
-- back to that agent (docs/protocol.md, `transfer`).
ALTER TABLE conversations ADD COLUMN returned_by BIGINT NULL;
ALTER TABLE conversations ADD COLUMN returned_at BIGINT NULL;
