-- The seed's two tables (RuQi document §2.1), verbatim but for IF NOT EXISTS, so tables an
-- operator already has from RuQi 1.x are adopted as they are and upgraded by 0002.
CREATE TABLE IF NOT EXISTS `ruqi_jobs` (
`id` varchar(255) NOT NULL COMMENT "任务 id",
`next_run_time` double DEFAULT NULL COMMENT "下次执行时间时间戳",
`job_state` blob NOT NULL COMMENT "任务数据",
`job_lock` tinyint(1) NOT NULL COMMENT "任务锁",
`job_name` varchar(64) DEFAULT NULL COMMENT "任务名称,用于分类使用",
`job_trigger` varchar(16) DEFAULT NULL COMMENT "触发器类型",
`job_rule` varchar(64) DEFAULT NULL COMMENT "定时任务规则",
`u_time` datetime NOT NULL COMMENT "更新时间",
`c_time` datetime NOT NULL COMMENT "创建时间",
PRIMARY KEY (`id`),
KEY `ruqijobs_next_run_time` (`next_run_time`),
KEY `ruqijobs_job_lock` (`job_lock`),
KEY `ruqijobs_job_name` (`job_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COMMENT='如期-定时任务数据';
CREATE TABLE IF NOT EXISTS `ruqi_jobs_history` (
`id` int(11) NOT NULL AUTO_INCREMENT COMMENT "自增 id",
`job_id` varchar(255) NOT NULL COMMENT "任务 id",
`job_name` varchar(255) NOT NULL COMMENT "任务名称,用于分类使用",
`cmd` varchar(64) NOT NULL COMMENT "执行命令",
`cmd_is_success` tinyint(1) NOT NULL COMMENT "是否执行成功",
`cmd_output` varchar(4096) NOT NULL COMMENT "程序输出",
`cmd_cost` double NOT NULL COMMENT "执行耗时",
`scheduler_name` varchar(64) NOT NULL COMMENT "执行的 scheduler 名称",
`c_time` datetime NOT NULL COMMENT "创建时间",
PRIMARY KEY (`id`),
KEY `ruqijobshistory_job_id` (`job_id`),
KEY `ruqijobshistory_job_name` (`job_name`),
KEY `ruqijobshistory_cmd_is_success` (`cmd_is_success`),
KEY `ruqijobshistory_cmd_cost` (`cmd_cost`)
) ENGINE=InnoDB AUTO_INCREMENT=1 DEFAULT CHARSET=utf8 COMMENT='如期-定时任务执行历史';
