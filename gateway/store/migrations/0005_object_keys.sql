-- Encryption at rest: each stored object's data key, wrapped by a master key of
-- GATEWAY_ENCRYPTION_KEYS (gateway/store/datakeys.py). The object's header names its key by
-- key_id; sha256 is the object the key was made for (it opens no other); deleting an object's
-- rows destroys it for good (crypto-shredding), whatever copies of its bytes remain.
CREATE TABLE object_key (
    key_id text PRIMARY KEY,
    sha256 text NOT NULL,
    master_key_id text NOT NULL,
    wrapped bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_key_sha256 ON object_key (sha256);
CREATE INDEX object_key_master ON object_key (master_key_id);
