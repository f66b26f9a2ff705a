-- MariaDB/MySQL compare VARCHAR ignoring trailing spaces (PAD SPACE collations), so the unique
-- key took clientMsgIds "k" and "k " for one and refused the second message as a retry of the
-- first. Compared as bytes, each id is itself (at most 64 characters of 4 bytes).
ALTER TABLE messages MODIFY client_msg_id VARBINARY(256) NULL;
