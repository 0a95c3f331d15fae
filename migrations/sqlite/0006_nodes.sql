-- The nodes of this store (`scheduler_nodes`, the dashboard's scheduler page): each node writes
-- its row every few seconds while it runs and marks it stopped when it shuts down cleanly;
-- rows not seen for 7 days are deleted. Times are epoch seconds.
CREATE TABLE IF NOT EXISTS ruqi_nodes (
    name VARCHAR(255) NOT NULL PRIMARY KEY,  -- host:port:pid, as in history rows
    version VARCHAR(32) NOT NULL,            -- RuQi version
    started DOUBLE NOT NULL,                 -- when the node started
    seen DOUBLE NOT NULL,                    -- when it last wrote this row
    stopped DOUBLE DEFAULT NULL              -- when it shut down cleanly (NULL while running, or if it died)
);
CREATE INDEX IF NOT EXISTS ruqinodes_seen ON ruqi_nodes (seen);
