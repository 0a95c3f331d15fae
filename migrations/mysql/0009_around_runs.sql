-- What goes on around runs. On a job's row: its consecutive failed runs (`fail_streak`, kept
-- for jobs with alerts or a circuit breaker), why the breaker paused it and when its probe run
-- is due (`paused_reason`, `probe_at`, `probe_wait` seconds, doubled after each failed probe),
-- and the fire time whose deadline is watched (`deadline_fire`, due at `deadline_at`). RuQi 1.x
-- never reads these.
ALTER TABLE `ruqi_jobs`
    ADD COLUMN `fail_streak` int NOT NULL DEFAULT 0 COMMENT "连续失败次数",
    ADD COLUMN `paused_reason` text DEFAULT NULL COMMENT "熔断暂停的原因",
    ADD COLUMN `probe_at` double DEFAULT NULL COMMENT "熔断探测时间戳",
    ADD COLUMN `probe_wait` double DEFAULT NULL COMMENT "熔断探测间隔秒",
    ADD COLUMN `deadline_fire` double DEFAULT NULL COMMENT "监视截止时间的触发时间戳",
    ADD COLUMN `deadline_at` double DEFAULT NULL COMMENT "截止时间戳",
    ADD KEY `ruqijobs_probe_at` (`probe_at`),
    ADD KEY `ruqijobs_deadline_at` (`deadline_at`);
-- Alerts: one row per alert and target, queued in the transaction that records what caused it
-- and sent by any node (claimed like a job: `claim_owner`, `claim_until`), retried with backoff.
-- `suppressed` counts the alerts of the same job and kind the quiet window held back after it.
CREATE TABLE IF NOT EXISTS `ruqi_alerts` (
`id` bigint NOT NULL AUTO_INCREMENT,
`job_id` varchar(255) NOT NULL COMMENT "任务 id",
`job_name` varchar(255) NOT NULL COMMENT "任务名称",
`kind` varchar(16) NOT NULL COMMENT "failure | timeout | killed | recovery | missed | deadline | paused",
`target` text NOT NULL COMMENT "告警目标 (插件 cmd)",
`fire_time` double DEFAULT NULL COMMENT "触发时间戳",
`run_id` varchar(64) DEFAULT NULL COMMENT "执行 id",
`node` varchar(255) NOT NULL COMMENT "节点",
`outcome` varchar(16) DEFAULT NULL COMMENT "执行结果",
`output` text NOT NULL COMMENT "输出开头",
`detail` text NOT NULL COMMENT "说明",
`created` double NOT NULL COMMENT "产生时间戳",
`state` varchar(16) NOT NULL DEFAULT 'pending' COMMENT "pending | sent | failed",
`attempts` int NOT NULL DEFAULT 0 COMMENT "已尝试次数",
`next_try` double NOT NULL COMMENT "下次发送时间戳",
`claim_owner` varchar(255) DEFAULT NULL COMMENT "发送节点",
`claim_until` double DEFAULT NULL COMMENT "发送租约到期",
`sent` double DEFAULT NULL COMMENT "发送成功时间戳",
`answer` text DEFAULT NULL COMMENT "目标的应答",
`suppressed` int NOT NULL DEFAULT 0 COMMENT "静默期内未发送的同类告警",
`earlier_suppressed` int NOT NULL DEFAULT 0 COMMENT "上一条告警之后未发送的同类告警",
PRIMARY KEY (`id`),
KEY `ruqialerts_state_next` (`state`, `next_try`),
KEY `ruqialerts_job_kind` (`job_id`, `kind`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-告警';
-- Runs queued by a chain (`state = 'pending'`, no node yet) are found through ruqi_runs' (state, node) index.
