-- Runs as first-class rows (run control): one row per run, keyed by its `run_id` (stable for a
-- job's scheduled fire time, so a takeover after a failover continues the same row), with the
-- node that runs it, its state and lease, a kill request any node may set, and its whole output
-- (bytes as the command printed them, appended while it runs for a live tail), kept apart from
-- the history row so history listings read no more than before. Running rows are few (at most the
-- nodes' concurrency): one index on (state, node) finds a node's running runs and the running runs
-- whose lease ran out, whatever the number of ended rows. History keeps RuQi's row and
-- gains the run's id, times, attempt, trigger and outcome. RuQi 1.x never reads these.
CREATE TABLE IF NOT EXISTS `ruqi_runs` (
`run_id` varchar(64) NOT NULL COMMENT "执行 id",
`job_id` varchar(255) NOT NULL COMMENT "任务 id",
`job_name` varchar(255) NOT NULL COMMENT "任务名称",
`cmd` text NOT NULL COMMENT "执行命令",
`fire_time` double NOT NULL COMMENT "触发时间戳",
`run_trigger` varchar(16) NOT NULL COMMENT "scheduled | manual | retry | backfill",
`attempt` int NOT NULL DEFAULT 1 COMMENT "第几次尝试",
`node` varchar(255) NOT NULL COMMENT "执行节点 host:port:pid",
`state` varchar(16) NOT NULL COMMENT "running | ended",
`started` double NOT NULL COMMENT "开始时间戳",
`ended` double DEFAULT NULL COMMENT "结束时间戳",
`lease_until` double NOT NULL COMMENT "租约到期时间戳",
`outcome` varchar(16) DEFAULT NULL COMMENT "success | failed | timeout | killed | lost",
`kill_requested` tinyint(1) NOT NULL DEFAULT 0 COMMENT "已请求终止",
`params` text DEFAULT NULL COMMENT "手动执行的参数",
`output` mediumblob NOT NULL COMMENT "完整输出",
PRIMARY KEY (`run_id`),
KEY `ruqiruns_state_node` (`state`, `node`),
KEY `ruqiruns_started` (`started`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-执行';
ALTER TABLE `ruqi_jobs_history`
    ADD COLUMN `run_id` varchar(64) DEFAULT NULL COMMENT "执行 id",
    ADD COLUMN `started` double DEFAULT NULL COMMENT "开始时间戳",
    ADD COLUMN `ended` double DEFAULT NULL COMMENT "结束时间戳",
    ADD COLUMN `attempt` int DEFAULT NULL COMMENT "第几次尝试",
    ADD COLUMN `run_trigger` varchar(16) DEFAULT NULL COMMENT "scheduled | manual | retry | backfill",
    ADD COLUMN `outcome` varchar(16) DEFAULT NULL COMMENT "success | failed | timeout | killed | lost";
-- A job's pending retry (its `retries` policy): when it is due, which attempt it is, and the fire
-- time it retries. Kept on the job's row, written in the transaction that records the failed run,
-- so a retry survives the death of the node that planned it; `next_run_time` is then the earlier
-- of the retry and the next fire time.
ALTER TABLE `ruqi_jobs`
    ADD COLUMN `retry_at` double DEFAULT NULL COMMENT "待重试时间戳",
    ADD COLUMN `retry_attempt` int DEFAULT NULL COMMENT "重试是第几次尝试",
    ADD COLUMN `retry_fire` double DEFAULT NULL COMMENT "重试对应的触发时间戳";
