-- Claims that survive a node's death (owner + lease), a revision so a run finishing after an
-- API change does not overwrite it, and the fire time of each history row with a unique
-- index: at most one row per (job, fire time), enforced by the schema.
-- SQLite does not enforce VARCHAR lengths, so history.cmd needs no widening here.
ALTER TABLE ruqi_jobs ADD COLUMN claim_owner VARCHAR(64) DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN lease_until DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE ruqi_jobs_history ADD COLUMN fire_time DOUBLE DEFAULT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ruqijobshistory_job_fire ON ruqi_jobs_history (job_id, fire_time);
CREATE INDEX IF NOT EXISTS ruqijobshistory_c_time ON ruqi_jobs_history (c_time);
CREATE INDEX IF NOT EXISTS ruqijobs_c_time ON ruqi_jobs (c_time);
