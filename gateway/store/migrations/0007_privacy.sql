-- Keeping personal data as the law asks (gateway/store/privacy.py): references on legal hold
-- (kept whatever their retention), erasures made on request (reference and time only), and
-- every read of a stored object by an operator or a command (who, what, why, when).
CREATE TABLE legal_hold (
    reference text PRIMARY KEY,
    placed_at timestamptz NOT NULL DEFAULT now(),
    placed_by text NOT NULL,
    note text NOT NULL
);
CREATE TABLE erasure (
    reference text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
CREATE TABLE access_record (
    id bigserial PRIMARY KEY,
    who text NOT NULL,
    what text NOT NULL,
    why text NOT NULL,
    at timestamptz NOT NULL,
    sha256 text,
    reference text
);
CREATE INDEX access_record_reference ON access_record (reference, at);
CREATE INDEX access_record_sha256 ON access_record (sha256, at);
CREATE INDEX access_record_at ON access_record (at);
-- retention and erasure find a complaint's rows by reference
CREATE INDEX IF NOT EXISTS duplicate_index_reference ON duplicate_index (reference);
CREATE INDEX IF NOT EXISTS idempotency_reference ON idempotency ((response->>'reference'));
