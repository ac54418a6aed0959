-- What the expiry sweep deletes by: each of its batched deletes finds its rows by index, not by
-- reading the whole table.

CREATE INDEX rooms_expires ON rooms (expires_at);
CREATE INDEX invites_expires ON invites (expires_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_revoked ON refresh_tokens (revoked_at);
