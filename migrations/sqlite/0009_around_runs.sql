-- What goes on around runs. On a job's row: its consecutive failed runs (`fail_streak`, kept
-- for jobs with alerts or a circuit breaker), why the breaker paused it and when its probe run
-- is due (`paused_reason`, `probe_at`, `probe_wait` seconds, doubled after each failed probe),
-- and the fire time whose deadline is watched (`deadline_fire`, due at `deadline_at`).
ALTER TABLE ruqi_jobs ADD COLUMN fail_streak INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ruqi_jobs ADD COLUMN paused_reason TEXT DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN probe_at DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN probe_wait DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN deadline_fire DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN deadline_at DOUBLE DEFAULT NULL;
-- Partial indexes: only the jobs the breaker paused or whose deadline is watched are in them, so
-- adding, rescheduling and deleting any other job costs what it did.
CREATE INDEX IF NOT EXISTS ruqijobs_probe_at ON ruqi_jobs (probe_at) WHERE probe_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ruqijobs_deadline_at ON ruqi_jobs (deadline_at) WHERE deadline_at IS NOT NULL;
-- Alerts: one row per alert and target, queued in the transaction that records what caused it
-- and sent by any node (claimed like a job: `claim_owner`, `claim_until`), retried with backoff.
-- `suppressed` counts the alerts of the same job and kind the quiet window held back after it.
CREATE TABLE IF NOT EXISTS ruqi_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id VARCHAR(255) NOT NULL,
    job_name VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    target TEXT NOT NULL,
    fire_time DOUBLE DEFAULT NULL,
    run_id VARCHAR(64) DEFAULT NULL,
    node VARCHAR(255) NOT NULL,
    outcome VARCHAR(16) DEFAULT NULL,
    output TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    created DOUBLE NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try DOUBLE NOT NULL,
    claim_owner VARCHAR(255) DEFAULT NULL,
    claim_until DOUBLE DEFAULT NULL,
    sent DOUBLE DEFAULT NULL,
    answer TEXT DEFAULT NULL,
    suppressed INTEGER NOT NULL DEFAULT 0,
    earlier_suppressed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ruqialerts_state_next ON ruqi_alerts (state, next_try);
CREATE INDEX IF NOT EXISTS ruqialerts_job_kind ON ruqi_alerts (job_id, kind, id);
-- Runs queued by a chain (`state = 'pending'`, no node yet) are found through ruqi_runs' (state, node) index.
