-- A history row is unique by its run's id, not by its job and fire time: a scheduled run's id is
-- derived from its job and fire time (so a fire time still gets one row, whichever node ran it),
-- while a run started by hand or a backfill of a fire time that already ran gets an id of its own
-- and a row of its own. Rows written before runs had ids (NULL) are not constrained. The
-- (job_id, fire_time) index stays, no longer unique, for the listings that filter by job.
DROP INDEX IF EXISTS ruqijobshistory_job_fire;
CREATE INDEX IF NOT EXISTS ruqijobshistory_job_fire ON ruqi_jobs_history (job_id, fire_time);
CREATE UNIQUE INDEX IF NOT EXISTS ruqijobshistory_run ON ruqi_jobs_history (run_id);
