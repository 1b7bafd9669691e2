-- What each stored object of a complaint is (GET /v1/objects answers with its name and type),
-- and every read of one by a case system (who, what, when), for the auditors.
CREATE TABLE stored_object (
    sha256 text NOT NULL,
    reference text NOT NULL,
    filename text NOT NULL,
    media_type text NOT NULL,
    role text NOT NULL,
    recorded timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, reference)
);
CREATE INDEX stored_object_reference ON stored_object (reference);

CREATE TABLE object_read (
    id bigserial PRIMARY KEY,
    consumer text NOT NULL,
    sha256 text NOT NULL,
    byte_range text,
    read_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX object_read_sha256 ON object_read (sha256, read_at);
