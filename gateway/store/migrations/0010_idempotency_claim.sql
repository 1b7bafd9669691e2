-- A request's claim on its idempotency key, taken before it publishes and removed with its
-- answer stored (gateway/web/submissions.py: key_claimed). The key's advisory lock keeps two
-- requests apart while its connection lives; this row also holds when that connection is lost
-- (a database restart) with the request still publishing: a retry on another replica finds the
-- claim and is answered 503 instead of publishing a second time. A claim older than its lease
-- (the replica died) may be taken over. claimed_at is the database's clock.
CREATE TABLE idempotency_claim (
    scope text NOT NULL,
    key text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
