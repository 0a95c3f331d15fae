-- The seed's two tables (RuQi document §2.1), in SQLite's dialect: same names, columns and indexes.
CREATE TABLE IF NOT EXISTS ruqi_jobs (
    id VARCHAR(255) NOT NULL PRIMARY KEY,          -- 任务 id
    next_run_time DOUBLE DEFAULT NULL,             -- 下次执行时间时间戳 (epoch seconds; NULL = paused)
    job_state BLOB NOT NULL,                       -- 任务数据
    job_lock TINYINT(1) NOT NULL,                  -- 任务锁
    job_name VARCHAR(64) DEFAULT NULL,             -- 任务名称,用于分类使用
    job_trigger VARCHAR(16) DEFAULT NULL,          -- 触发器类型
    job_rule VARCHAR(64) DEFAULT NULL,             -- 定时任务规则
    u_time DATETIME NOT NULL,                      -- 更新时间
    c_time DATETIME NOT NULL                       -- 创建时间
);
CREATE INDEX IF NOT EXISTS ruqijobs_next_run_time ON ruqi_jobs (next_run_time);
CREATE INDEX IF NOT EXISTS ruqijobs_job_lock ON ruqi_jobs (job_lock);
CREATE INDEX IF NOT EXISTS ruqijobs_job_name ON ruqi_jobs (job_name);

CREATE TABLE IF NOT EXISTS ruqi_jobs_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,          -- 自增 id
    job_id VARCHAR(255) NOT NULL,                  -- 任务 id
    job_name VARCHAR(255) NOT NULL,                -- 任务名称,用于分类使用
    cmd VARCHAR(64) NOT NULL,                      -- 执行命令
    cmd_is_success TINYINT(1) NOT NULL,            -- 是否执行成功
    cmd_output VARCHAR(4096) NOT NULL,             -- 程序输出
    cmd_cost DOUBLE NOT NULL,                      -- 执行耗时
    scheduler_name VARCHAR(64) NOT NULL,           -- 执行的 scheduler 名称
    c_time DATETIME NOT NULL                       -- 创建时间
);
CREATE INDEX IF NOT EXISTS ruqijobshistory_job_id ON ruqi_jobs_history (job_id);
CREATE INDEX IF NOT EXISTS ruqijobshistory_job_name ON ruqi_jobs_history (job_name);
CREATE INDEX IF NOT EXISTS ruqijobshistory_cmd_is_success ON ruqi_jobs_history (cmd_is_success);
CREATE INDEX IF NOT EXISTS ruqijobshistory_cmd_cost ON ruqi_jobs_history (cmd_cost);
