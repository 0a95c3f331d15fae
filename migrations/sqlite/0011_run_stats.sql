-- Rollups the dashboard's charts read instead of history (their cost does not grow with history):
-- per minute, outcome and node, the runs, their cost and a histogram of fire-time lateness
-- (l0..l13: up to 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60 s, and longer), and the
-- same per hour; per day (UTC), job and node, the runs, failed ones and cost. Written with the runs' ends (one statement per
-- group of ends and table, a node's own rows), kept 8 days.
CREATE TABLE IF NOT EXISTS ruqi_stats_minute (
    minute DOUBLE NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    cost_sum DOUBLE NOT NULL DEFAULT 0,
    late_n INTEGER NOT NULL DEFAULT 0,
    l0 INTEGER NOT NULL DEFAULT 0, l1 INTEGER NOT NULL DEFAULT 0, l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0, l4 INTEGER NOT NULL DEFAULT 0, l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0, l7 INTEGER NOT NULL DEFAULT 0, l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0, l10 INTEGER NOT NULL DEFAULT 0, l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0, l13 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, outcome, node)
);
CREATE TABLE IF NOT EXISTS ruqi_stats_hour (
    hour DOUBLE NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    cost_sum DOUBLE NOT NULL DEFAULT 0,
    late_n INTEGER NOT NULL DEFAULT 0,
    l0 INTEGER NOT NULL DEFAULT 0, l1 INTEGER NOT NULL DEFAULT 0, l2 INTEGER NOT NULL DEFAULT 0,
    l3 INTEGER NOT NULL DEFAULT 0, l4 INTEGER NOT NULL DEFAULT 0, l5 INTEGER NOT NULL DEFAULT 0,
    l6 INTEGER NOT NULL DEFAULT 0, l7 INTEGER NOT NULL DEFAULT 0, l8 INTEGER NOT NULL DEFAULT 0,
    l9 INTEGER NOT NULL DEFAULT 0, l10 INTEGER NOT NULL DEFAULT 0, l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0, l13 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, outcome, node)
);
CREATE TABLE IF NOT EXISTS ruqi_stats_job_day (
    day DOUBLE NOT NULL,
    job_id VARCHAR(255) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    cost_sum DOUBLE NOT NULL DEFAULT 0,
    cost_max DOUBLE NOT NULL DEFAULT 0,
    PRIMARY KEY (day, job_id, node)
);
