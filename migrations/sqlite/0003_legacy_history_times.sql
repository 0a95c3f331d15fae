-- The same version as MySQL's 0003: history rows flag whether `c_time` is a RuQi 1.x node's
-- local time (1) or UTC (0). SQLite files are only ever written by RuQi, so every row is UTC.
ALTER TABLE ruqi_jobs_history ADD COLUMN c_time_local INTEGER NOT NULL DEFAULT 0;
