-- The tracker (gateway/store/tracker.py): every event of a complaint's life it folds, keyed by
-- the CloudEvent's id (a redelivery changes nothing), and where each complaint stands now.
-- No contact and no text of the person: the case system's note for the person only.
CREATE TABLE tracker_entry (
    event_id text PRIMARY KEY,
    reference text NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    details jsonb NOT NULL
);
CREATE INDEX tracker_entry_reference ON tracker_entry (reference, at);

CREATE TABLE tracked_complaint (
    reference text PRIMARY KEY,
    channel text,
    kind text,
    policy text,
    received_at timestamptz,
    month text,
    acknowledge_by date,
    respond_by date,
    complete boolean NOT NULL,
    reachable boolean NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    acknowledge_delay integer,
    acknowledged_in_time boolean,
    status text NOT NULL,
    status_at timestamptz,
    status_note text,
    status_event_id text,
    answered_at timestamptz,
    answer_delay integer,
    answered_in_time boolean,
    closed_at timestamptz,
    documents integer NOT NULL,
    last_document_at timestamptz,
    rating smallint CHECK (rating BETWEEN 1 AND 5),
    rated_at timestamptz
);
-- open complaints past their respond-by date (intake-gateway indicators --overdue)
CREATE INDEX tracked_complaint_open ON tracked_complaint (policy, respond_by)
    WHERE answered_at IS NULL;
-- the indicators' counts, read from the index alone (a complaint's policy is set with its
-- receipt; an "in time" is set exactly when the step is done)
CREATE INDEX tracked_complaint_figures ON tracked_complaint (
    policy, month, channel, complete, reachable, acknowledged_in_time, acknowledge_by,
    answered_in_time, respond_by, acknowledge_delay, answer_delay, rating
);
