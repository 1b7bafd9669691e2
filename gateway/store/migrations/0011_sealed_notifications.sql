-- The recipient and values of each notification sealed with the master keys
-- (gateway/store/sealed.py), each with its key's id; the recipient also as a keyed hash, to
-- tie an inbound SMS to the complaint last written to that number. Rows of an earlier version
-- keep recipient and values_json in clear (no key id) until 'intake-gateway keys rotate'.
ALTER TABLE notifications
    ADD COLUMN recipient_key_id text,
    ADD COLUMN recipient_hash text,
    ADD COLUMN values_sealed text,
    ADD COLUMN values_key_id text;
CREATE INDEX notifications_by_recipient_hash ON notifications (recipient_hash, medium);
CREATE INDEX notifications_recipient_key_id ON notifications (recipient_key_id);
CREATE INDEX notifications_values_key_id ON notifications (values_key_id);
