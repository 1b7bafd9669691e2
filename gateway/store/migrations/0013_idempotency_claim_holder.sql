-- Which process holds each idempotency claim (gateway/store/process_identity.py: boot id, PID
-- namespace, pid, start time). A replica on the same machine that finds the holder gone (killed,
-- crashed) takes the claim over at once rather than answering 503 until the lease ends; holders
-- elsewhere are known by their lease alone, as are claims of earlier versions (NULL).
ALTER TABLE idempotency_claim ADD COLUMN holder text;
