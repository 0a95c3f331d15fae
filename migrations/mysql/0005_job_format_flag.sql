-- Listings show only jobs in our format (a JSON `job_state`), not RuQi 1.x rows that could not
-- be adopted (a pickle). `ruqi_format` says which a row is, computed by the database from
-- `job_state` itself (so rows a RuQi 1.x node writes are classified too), and indexed with
-- `c_time`: a page of the job list and its `total` are index reads, not a scan of every
-- `job_state` BLOB (1.5 s at 1,000,000 jobs before). RuQi 1.x's INSERTs name their columns, so
-- the added column does not disturb a 1.x node still writing to this database.
ALTER TABLE `ruqi_jobs`
    ADD COLUMN `ruqi_format` tinyint AS (LEFT(`job_state`, 1) = '{') PERSISTENT COMMENT "1 = RuQi 格式的任务",
    ADD KEY `ruqijobs_format_c_time` (`ruqi_format`, `c_time`);
