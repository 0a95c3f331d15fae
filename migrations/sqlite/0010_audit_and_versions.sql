-- The audit trail: one row per change made through the API (its route, the caller as its token
-- names it, the peer, the node, the job or run it changed, and for a job the fields before and
-- after, as JSON), and the versions of each job's definition (the job_add parameters that make
-- it, as JSON), numbered from 1 per job.
CREATE TABLE IF NOT EXISTS ruqi_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at DOUBLE NOT NULL,
    node VARCHAR(255) NOT NULL,
    caller VARCHAR(255) NOT NULL,
    peer VARCHAR(64) NOT NULL,
    action VARCHAR(32) NOT NULL,
    job_id VARCHAR(255) DEFAULT NULL,
    run_id VARCHAR(64) DEFAULT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ruqiaudit_at ON ruqi_audit (at);
CREATE INDEX IF NOT EXISTS ruqiaudit_job ON ruqi_audit (job_id, id);
CREATE INDEX IF NOT EXISTS ruqiaudit_caller ON ruqi_audit (caller, id);
CREATE TABLE IF NOT EXISTS ruqi_job_versions (
    job_id VARCHAR(255) NOT NULL,
    version INTEGER NOT NULL,
    at DOUBLE NOT NULL,
    caller VARCHAR(255) NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (job_id, version)
);
