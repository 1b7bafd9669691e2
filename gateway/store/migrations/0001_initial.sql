-- The state every replica of the gateway shares (GATEWAY_STATE_URL). Applied once, in a
-- transaction, by the first replica to start (gateway/store/postgres/database.py).

-- Web submissions: the first answer given for an Idempotency-Key, kept 7 days.
CREATE TABLE idempotency (
    scope text NOT NULL,
    key text NOT NULL,
    body_sha256 text NOT NULL,
    response json NOT NULL,  -- json, not jsonb: an answer is given again byte for byte
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created);

-- The contacts given with each complaint, as keyed hashes: "send documents" checks them.
CREATE TABLE complaint_contacts (
    reference text NOT NULL,
    contact_hash text NOT NULL,
    PRIMARY KEY (reference, contact_hash)
);

-- IMAP: where each mailbox was read up to, and the messages each replica claimed.
CREATE TABLE imap_checkpoint (
    mailbox text PRIMARY KEY,
    uidvalidity bigint NOT NULL,
    last_uid bigint NOT NULL
);
CREATE TABLE imap_claim (
    owner text NOT NULL,
    mailbox text NOT NULL,
    uidvalidity bigint NOT NULL,
    uid bigint NOT NULL,
    modseq bigint NOT NULL,
    PRIMARY KEY (owner, mailbox, uidvalidity, uid)
);

-- Inputs already published (a redelivered mail), by source key.
CREATE TABLE processed_source (
    source_key text PRIMARY KEY,
    event_id text NOT NULL,
    processed timestamptz NOT NULL DEFAULT now()
);

-- The notifier: one row per notification (claimed before it is sent), and how to reach the
-- person of each complaint.
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    reference text NOT NULL,
    purpose text NOT NULL,
    medium text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    provider_message_id text,
    updated timestamptz NOT NULL DEFAULT now(),
    recipient text,
    values_json jsonb,
    claimed_by text,
    claimed_until timestamptz
);
CREATE INDEX notifications_by_reference ON notifications (reference, medium);
CREATE INDEX notifications_by_recipient ON notifications (recipient, medium);
CREATE TABLE notifier_contacts (
    reference text PRIMARY KEY,
    name text,
    email text,
    phone text,
    postal_address text,
    language text,
    updated timestamptz NOT NULL DEFAULT now()
);

-- Near-duplicate complaints of one person: their recent texts' shingles, by person key.
CREATE TABLE duplicate_index (
    person_key text NOT NULL,
    received_at double precision NOT NULL,
    reference text NOT NULL,
    shingles bytea NOT NULL,
    PRIMARY KEY (person_key, reference)
);
CREATE INDEX duplicate_index_recent ON duplicate_index (person_key, received_at DESC);
CREATE INDEX duplicate_index_received ON duplicate_index (received_at);

-- Rate limits: token buckets every replica counts against (per client, per form, SMS...).
CREATE TABLE rate_bucket (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    updated double precision NOT NULL
);
CREATE INDEX rate_bucket_updated ON rate_bucket (updated);

-- take_token: the bucket's wait in seconds (NULL: go on), taking a token when counted and
-- one is there. One statement, the row locked: two replicas never spend one token twice.
-- Time is the database's clock, the one clock every replica shares.
CREATE FUNCTION take_token(
    bucket text, rate double precision, burst double precision, counted boolean
) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    held double precision;
    last double precision;
    wait double precision;
BEGIN
    INSERT INTO rate_bucket VALUES (bucket, burst, now_s) ON CONFLICT (key) DO NOTHING;
    SELECT tokens, updated INTO held, last FROM rate_bucket WHERE key = bucket FOR UPDATE;
    held := least(burst, held + greatest(0, now_s - last) * rate);
    wait := CASE WHEN held >= 1 THEN NULL ELSE (1 - held) / rate END;
    IF counted THEN
        UPDATE rate_bucket
        SET tokens = CASE WHEN wait IS NULL THEN held - 1 ELSE held END, updated = now_s
        WHERE key = bucket;
    END IF;
    RETURN wait;
END
$$;

-- Secrets of the installation every replica must share: the key of the email links, the
-- pepper of the contact hashes. Created once by whichever replica needs one first.
CREATE TABLE installation_secret (
    name text PRIMARY KEY,
    value bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
