-- What high availability and our fixes need on top of the seed's tables (existing rows kept):
-- * utf8mb4: any job id or output text fits (the seed's utf8 is MySQL's 3-byte subset); the
--   collation stays case-insensitive as in RuQi 1.x (`a` and `A` are one job id on MySQL);
-- * claims that survive a node's death: `claim_owner` + `lease_until` (epoch seconds), and a
--   `revision` bumped by every API change, so a run ending after a change leaves it be;
-- * microsecond `u_time`/`c_time` (history sorts in run order; the API shows microseconds);
-- * history: BIGINT id, the whole `cmd` (TEXT; the seed's varchar(64) cut long cmds), a wider
--   `scheduler_name` (`host:port:pid`), and `fire_time` with UNIQUE (job_id, fire_time): at
--   most one row per job and fire time even if two nodes race — enforced by the schema.
ALTER TABLE `ruqi_jobs` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `ruqi_jobs`
    ADD COLUMN `claim_owner` varchar(255) DEFAULT NULL COMMENT "持有租约的节点 host:port:pid",
    ADD COLUMN `lease_until` double DEFAULT NULL COMMENT "租约到期时间戳",
    ADD COLUMN `revision` bigint NOT NULL DEFAULT 1 COMMENT "接口修改次数",
    MODIFY `u_time` datetime(6) NOT NULL COMMENT "更新时间",
    MODIFY `c_time` datetime(6) NOT NULL COMMENT "创建时间",
    ADD KEY `ruqijobs_claim_next` (`claim_owner`, `next_run_time`),
    ADD KEY `ruqijobs_c_time` (`c_time`);
ALTER TABLE `ruqi_jobs_history` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
ALTER TABLE `ruqi_jobs_history`
    MODIFY `id` bigint NOT NULL AUTO_INCREMENT COMMENT "自增 id",
    MODIFY `cmd` text NOT NULL COMMENT "执行命令",
    MODIFY `scheduler_name` varchar(255) NOT NULL COMMENT "执行的 scheduler 名称 host:port:pid",
    MODIFY `c_time` datetime(6) NOT NULL COMMENT "创建时间",
    ADD COLUMN `fire_time` double DEFAULT NULL COMMENT "本次执行对应的触发时间戳",
    ADD UNIQUE KEY `ruqijobshistory_job_fire` (`job_id`, `fire_time`),
    ADD KEY `ruqijobshistory_c_time` (`c_time`);
