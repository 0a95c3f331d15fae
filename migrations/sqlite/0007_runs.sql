-- Runs as first-class rows (run control): one row per run, keyed by its `run_id` (stable for a
-- job's scheduled fire time, so a takeover after a failover continues the same row), with the
-- node that runs it, its state and lease, a kill request any node may set, and its whole output
-- (a BLOB: bytes as the command printed them, appended while it runs for a live tail). History
-- keeps RuQi's row and gains the run's id, times, attempt, trigger and outcome.
CREATE TABLE IF NOT EXISTS ruqi_runs (
    run_id VARCHAR(64) NOT NULL PRIMARY KEY,
    job_id VARCHAR(255) NOT NULL,
    job_name VARCHAR(255) NOT NULL,
    cmd TEXT NOT NULL,
    fire_time DOUBLE NOT NULL,
    run_trigger VARCHAR(16) NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    node VARCHAR(255) NOT NULL,
    state VARCHAR(16) NOT NULL,          -- running | ended
    started DOUBLE NOT NULL,
    ended DOUBLE DEFAULT NULL,
    lease_until DOUBLE NOT NULL,
    outcome VARCHAR(16) DEFAULT NULL,    -- success | failed | timeout | killed | lost
    kill_requested INTEGER NOT NULL DEFAULT 0,
    params TEXT DEFAULT NULL,
    output BLOB NOT NULL DEFAULT X''
);
-- Running rows are few (at most the nodes' concurrency): one index on (state, node) finds a node's
-- running runs and the running runs whose lease ran out, whatever the number of ended rows.
CREATE INDEX IF NOT EXISTS ruqiruns_state_node ON ruqi_runs (state, node);
CREATE INDEX IF NOT EXISTS ruqiruns_started ON ruqi_runs (started);
ALTER TABLE ruqi_jobs_history ADD COLUMN run_id VARCHAR(64) DEFAULT NULL;
ALTER TABLE ruqi_jobs_history ADD COLUMN started DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs_history ADD COLUMN ended DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs_history ADD COLUMN attempt INTEGER DEFAULT NULL;
ALTER TABLE ruqi_jobs_history ADD COLUMN run_trigger VARCHAR(16) DEFAULT NULL;
ALTER TABLE ruqi_jobs_history ADD COLUMN outcome VARCHAR(16) DEFAULT NULL;
-- A job's pending retry (its `retries` policy): when it is due, which attempt it is, and the fire
-- time it retries. Kept on the job's row, written in the transaction that records the failed run,
-- so a retry survives the death of the node that planned it; `next_run_time` is then the earlier
-- of the retry and the next fire time.
ALTER TABLE ruqi_jobs ADD COLUMN retry_at DOUBLE DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN retry_attempt INTEGER DEFAULT NULL;
ALTER TABLE ruqi_jobs ADD COLUMN retry_fire DOUBLE DEFAULT NULL;
