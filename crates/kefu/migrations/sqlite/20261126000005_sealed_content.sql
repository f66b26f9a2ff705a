-- With encryption at rest on, content holds AES-256-GCM ciphertext (base64) and key_id names the
-- key it was sealed with; NULL is plain text.
ALTER TABLE messages ADD COLUMN key_id TEXT NULL;
ALTER TABLE notes ADD COLUMN key_id TEXT NULL;
