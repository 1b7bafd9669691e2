-- The notifier's contacts sealed value by value with the master keys (gateway/store/sealed.py):
-- key_id names the key of GATEWAY_ENCRYPTION_KEYS sealing the row; NULL is a row written in
-- clear by an earlier version, read as it is and sealed by 'intake-gateway keys rotate'.
ALTER TABLE notifier_contacts ADD COLUMN key_id text;
CREATE INDEX notifier_contacts_key_id ON notifier_contacts (key_id);
