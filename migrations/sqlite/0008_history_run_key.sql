-- At most one history row per job and scheduled fire time, as before, but only for the runs a
-- fire time makes (scheduled runs and retries, and rows written before runs had a trigger): a run
-- started by hand or a backfill of a fire time that already ran gets a row of its own. The unique
-- index becomes partial; it keeps the key's size, so writing history costs what it did.
DROP INDEX IF EXISTS ruqijobshistory_job_fire;
CREATE UNIQUE INDEX IF NOT EXISTS ruqijobshistory_job_fire ON ruqi_jobs_history (job_id, fire_time)
    WHERE run_trigger IS NULL OR run_trigger NOT IN ('manual', 'backfill');
