-- The audit trail: one row per change made through the API (its route, the caller as its token
-- names it, the peer, the node, the job or run it changed, and for a job the fields before and
-- after, as JSON), and the versions of each job's definition (the job_add parameters that make
-- it, as JSON), numbered from 1 per job. RuQi 1.x never reads these.
CREATE TABLE IF NOT EXISTS `ruqi_audit` (
`id` bigint NOT NULL AUTO_INCREMENT,
`at` double NOT NULL COMMENT "时间戳",
`node` varchar(255) NOT NULL COMMENT "节点",
`caller` varchar(255) NOT NULL COMMENT "调用者 (令牌名)",
`peer` varchar(64) NOT NULL COMMENT "对端地址",
`action` varchar(32) NOT NULL COMMENT "接口",
`job_id` varchar(255) DEFAULT NULL COMMENT "任务 id",
`run_id` varchar(64) DEFAULT NULL COMMENT "执行 id",
`detail` mediumtext NOT NULL COMMENT "参数与变更前后 (JSON)",
PRIMARY KEY (`id`),
KEY `ruqiaudit_at` (`at`),
KEY `ruqiaudit_job` (`job_id`, `id`),
KEY `ruqiaudit_caller` (`caller`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-审计';
CREATE TABLE IF NOT EXISTS `ruqi_job_versions` (
`job_id` varchar(255) NOT NULL COMMENT "任务 id",
`version` int NOT NULL COMMENT "版本",
`at` double NOT NULL COMMENT "时间戳",
`caller` varchar(255) NOT NULL COMMENT "调用者",
`definition` mediumtext NOT NULL COMMENT "任务定义 (job_add 参数, JSON)",
PRIMARY KEY (`job_id`, `version`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-任务版本';
