-- A shared mailbox whose replicas share this database: each message is claimed here by the
-- replica that publishes it (gateway/channels/imap_database_claims.py), one row per message.
-- A claim is won by INSERT ... ON CONFLICT DO UPDATE ... WHERE the row is the claimer's own or
-- older than the claim timeout, RETURNING uid: one statement, so two replicas never both win
-- one message. claimed_at is the database's clock, the same for every replica.
CREATE TABLE imap_message_claim (
    mailbox text NOT NULL,
    uidvalidity bigint NOT NULL,
    uid bigint NOT NULL,
    owner text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox, uidvalidity, uid)
);
-- a replica's own claims, read back after a restart
CREATE INDEX imap_message_claim_owner ON imap_message_claim (owner, mailbox, uidvalidity);
