CREATE TABLE `job_state` (
	`name` varchar(64) NOT NULL,
	`watermark` datetime(3),
	`owner` varchar(128),
	`started_at` datetime(3),
	`finished_at` datetime(3),
	`last_outcome` varchar(16),
	`last_error` varchar(1000),
	`last_duration_ms` int,
	`runs` bigint NOT NULL DEFAULT 0,
	CONSTRAINT `job_state_name` PRIMARY KEY(`name`)
);
--> statement-breakpoint
CREATE TABLE `metric_rollup_dirty` (
	`node_id` char(36) NOT NULL,
	`hour_start` datetime(3) NOT NULL,
	`marked_at` datetime(3) NOT NULL,
	CONSTRAINT `metric_rollup_dirty_pk` PRIMARY KEY(`node_id`,`hour_start`)
);
