-- The number of jobs in RuQi's format (what `job_list` counts without a filter), so a listing's
-- total is a read of a few rows, not a count of every job (0.09–0.8 s at 1,000,000 jobs). Kept by
-- triggers on `ruqi_jobs` (so rows a RuQi 1.x node writes are counted too), which the node creates
-- after the migrations when the server lets it (a server writing a binary log refuses them to an
-- account without SUPER unless `log_bin_trust_function_creators` is set; the totals are then
-- counted as before). Each connection adds its changes to a slot of its own (`@ruqi_count_slot`,
-- chosen at random when it connects; 0 for other writers), so two transactions, or two Galera
-- members, rarely write the same row. Slot -1 is the count when the triggers were created, with
-- the insert trigger's creation time (`since`): triggers created again (a table restored from a
-- dump) start the count again. The total is the sum of every slot, used only once slot -1 exists.
CREATE TABLE IF NOT EXISTS `ruqi_job_count` (
    `slot` smallint NOT NULL COMMENT "-1 = 起点, 0 = 其他写入者, 1.. = 连接",
    `n` bigint NOT NULL,
    `since` varchar(32) DEFAULT NULL COMMENT "slot -1: 插入触发器的创建时间",
    PRIMARY KEY (`slot`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-任务数';
