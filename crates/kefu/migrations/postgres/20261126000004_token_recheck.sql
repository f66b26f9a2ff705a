-- Connected sockets are re-checked for revoked tokens by asking which accounts had their tokens
-- revoked (a sign-out, a disabled account) since the last check.
CREATE INDEX users_tokens_valid_from ON users (tokens_valid_from);
