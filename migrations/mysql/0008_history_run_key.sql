-- At most one history row per job and scheduled fire time, as before, but only for the runs a
-- fire time makes (scheduled runs and retries, and rows written before runs had a trigger): a run
-- started by hand or a backfill of a fire time that already ran gets a row of its own. The unique
-- key moves to a stored generated column that is NULL for those runs (a NULL never collides);
-- it keeps the key's size, so writing history costs what it did.
ALTER TABLE `ruqi_jobs_history`
    ADD COLUMN `scheduled_fire` double AS (IF(`run_trigger` IN ('manual', 'backfill'), NULL, `fire_time`)) STORED
        COMMENT "fire_time of a run a fire time made; NULL for runs by hand and backfills",
    DROP INDEX `ruqijobshistory_job_fire`,
    ADD UNIQUE KEY `ruqijobshistory_job_fire` (`job_id`, `scheduled_fire`);
