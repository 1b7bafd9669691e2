-- The office's note for the person, in the tracker's entries (details->'note') and complaints
-- (status_note), sealed with the master keys (gateway/store/sealed.py: TrackerNotes); the key's
-- id beside it. NULL: written in clear by an earlier version, sealed by 'intake-gateway keys
-- rotate'.
ALTER TABLE tracker_entry ADD COLUMN key_id text;
CREATE INDEX tracker_entry_key_id ON tracker_entry (key_id);
ALTER TABLE tracked_complaint ADD COLUMN status_note_key_id text;
CREATE INDEX tracked_complaint_status_note_key_id ON tracked_complaint (status_note_key_id);
