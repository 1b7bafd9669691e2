-- The dead-letter queue as a work queue (gateway/store/dlq.py): every rejected input reported
-- on intake.dlq.v1 by the intake, keyed by the intake.rejected event's id, open until an
-- operator redrives or dismisses it; and what was done to each (who, when, what came of it).
CREATE TABLE dlq_record (
    id text PRIMARY KEY,
    channel text NOT NULL,
    reason_code text NOT NULL,
    reason text NOT NULL,
    details jsonb NOT NULL,
    source_key text NOT NULL,
    source text NOT NULL,
    source_id text,
    source_uri text,
    received_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'redriven', 'dismissed')),
    attempts integer NOT NULL DEFAULT 0,
    claimed_by text,
    claimed_until timestamptz,
    closed_by text,
    closed_at timestamptz,
    event_ids jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX dlq_record_open ON dlq_record (status, recorded_at);
-- id LIKE 'prefix%' (an operator types the first characters of an id)
CREATE INDEX dlq_record_id_prefix ON dlq_record (id text_pattern_ops);

CREATE TABLE dlq_action (
    id bigserial PRIMARY KEY,
    record_id text NOT NULL REFERENCES dlq_record (id),
    action text NOT NULL,
    actor text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL,
    detail text NOT NULL
);
CREATE INDEX dlq_action_record ON dlq_action (record_id, id);
