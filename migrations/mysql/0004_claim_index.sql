-- Kept in step with SQLite's 0004 (its claim index); MySQL has had `ruqijobs_claim_next` since 0002.
SELECT 1;
