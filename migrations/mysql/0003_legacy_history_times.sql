-- RuQi 1.x wrote `ruqi_jobs_history.c_time` in its node's local time; RuQi writes UTC. This flag
-- tells them apart: 1 (the default, so a row any 1.x node writes is marked) = local time of a
-- 1.x node, 0 = UTC. Rows we wrote before this migration are ours (they have a fire time).
-- Adoption (`ruqi migrate`, or `serve` at start) converts the flagged rows to UTC.
ALTER TABLE `ruqi_jobs_history`
    ADD COLUMN `c_time_local` tinyint(1) NOT NULL DEFAULT 1 COMMENT "c_time 是 1.x 节点的本地时间";
UPDATE `ruqi_jobs_history` SET `c_time_local` = 0 WHERE `fire_time` IS NOT NULL;
