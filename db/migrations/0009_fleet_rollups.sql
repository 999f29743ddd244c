CREATE TABLE `metric_rollups_fleet_5m` (
	`bucket_start` datetime(3) NOT NULL,
	`samples` bigint NOT NULL,
	`pools` int NOT NULL,
	`cpu_sum` double NOT NULL,
	`memory_sum` double NOT NULL,
	`cpu_max` double NOT NULL,
	`cpu_max_node_id` char(36) NOT NULL,
	`cpu_max_pool_id` int NOT NULL,
	`memory_max` double NOT NULL,
	`memory_max_node_id` char(36) NOT NULL,
	`memory_max_pool_id` int NOT NULL,
	`instances` bigint NOT NULL,
	CONSTRAINT `metric_rollups_fleet_5m_bucket_start` PRIMARY KEY(`bucket_start`)
);
