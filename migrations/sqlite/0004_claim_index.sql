-- The scheduler's "earliest next wake-up" (next unclaimed fire time, or the expiry of a lease on
-- a due job) as two index range reads, whatever the number of stored jobs (MySQL has this
-- index since its 0002).
CREATE INDEX IF NOT EXISTS ruqijobs_claim_next ON ruqi_jobs (claim_owner, next_run_time);
