-- Rollups the dashboard's charts read instead of history (their cost does not grow with history):
-- per minute, outcome and node, the runs, their cost and a histogram of fire-time lateness
-- (l0..l13: up to 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30, 60 s, and longer), and the
-- same per hour; per day (UTC), job and node, the runs, failed ones and cost. Written with the runs' ends (one statement per
-- group of ends and table, a node's own rows), kept 8 days. RuQi 1.x never reads these.
CREATE TABLE IF NOT EXISTS `ruqi_stats_minute` (
    minute double NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs int NOT NULL DEFAULT 0,
    cost_sum double NOT NULL DEFAULT 0,
    late_n int NOT NULL DEFAULT 0,
    l0 int NOT NULL DEFAULT 0, l1 int NOT NULL DEFAULT 0, l2 int NOT NULL DEFAULT 0,
    l3 int NOT NULL DEFAULT 0, l4 int NOT NULL DEFAULT 0, l5 int NOT NULL DEFAULT 0,
    l6 int NOT NULL DEFAULT 0, l7 int NOT NULL DEFAULT 0, l8 int NOT NULL DEFAULT 0,
    l9 int NOT NULL DEFAULT 0, l10 int NOT NULL DEFAULT 0, l11 int NOT NULL DEFAULT 0,
    l12 int NOT NULL DEFAULT 0, l13 int NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, outcome, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-每分钟执行统计';
CREATE TABLE IF NOT EXISTS `ruqi_stats_hour` (
    hour double NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs int NOT NULL DEFAULT 0,
    cost_sum double NOT NULL DEFAULT 0,
    late_n int NOT NULL DEFAULT 0,
    l0 int NOT NULL DEFAULT 0, l1 int NOT NULL DEFAULT 0, l2 int NOT NULL DEFAULT 0,
    l3 int NOT NULL DEFAULT 0, l4 int NOT NULL DEFAULT 0, l5 int NOT NULL DEFAULT 0,
    l6 int NOT NULL DEFAULT 0, l7 int NOT NULL DEFAULT 0, l8 int NOT NULL DEFAULT 0,
    l9 int NOT NULL DEFAULT 0, l10 int NOT NULL DEFAULT 0, l11 int NOT NULL DEFAULT 0,
    l12 int NOT NULL DEFAULT 0, l13 int NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, outcome, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-每小时执行统计';
CREATE TABLE IF NOT EXISTS `ruqi_stats_job_day` (
    day double NOT NULL,
    job_id VARCHAR(255) NOT NULL,
    node VARCHAR(255) NOT NULL,
    runs int NOT NULL DEFAULT 0,
    failures int NOT NULL DEFAULT 0,
    cost_sum double NOT NULL DEFAULT 0,
    cost_max double NOT NULL DEFAULT 0,
    PRIMARY KEY (day, job_id, node)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-每日任务统计';
