-- The audit log and the webhook outbox. Ids increase with insertion: the audit log's page cursor,
-- and the outbox's order of delivery within a stream.

CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    room_id  TEXT,
    actor    TEXT,
    subject  TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_room ON audit_log (room_id, id);

CREATE TABLE webhook_outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint   TEXT NOT NULL,
    stream     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_at    BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_stream ON webhook_outbox (endpoint, stream, id);
