-- Tokens issued before this time (seconds since the Unix epoch) are no longer accepted: set when
-- an account is disabled, so that enabling it again does not revive the tokens it had.
ALTER TABLE users ADD COLUMN tokens_valid_from BIGINT NOT NULL DEFAULT 0;
