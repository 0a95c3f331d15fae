-- The nodes sharing this database (`scheduler_nodes`, the dashboard's scheduler page): each node
-- writes its row every few seconds while it runs and marks it stopped when it shuts down
-- cleanly; rows not seen for 7 days are deleted. Times are epoch seconds. RuQi 1.x never reads it.
CREATE TABLE IF NOT EXISTS `ruqi_nodes` (
`name` varchar(255) NOT NULL COMMENT "节点 host:port:pid",
`version` varchar(32) NOT NULL COMMENT "RuQi 版本",
`started` double NOT NULL COMMENT "启动时间戳",
`seen` double NOT NULL COMMENT "最近一次心跳时间戳",
`stopped` double DEFAULT NULL COMMENT "正常停止的时间戳",
PRIMARY KEY (`name`),
KEY `ruqinodes_seen` (`seen`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='如期-调度节点';
